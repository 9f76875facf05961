"""Stand-in for ``monailabel.interfaces.tasks.infer_v2`` (same constructor, ``info`` and ``__call__`` contract), used
when the app code is tested in the project environment, where monailabel does not import (pydicom 3)."""

from __future__ import annotations

from enum import Enum


class InferType(str, Enum):
    OTHERS = "others"


class InferTask:
    def __init__(self, type, labels, dimension, description, config=None):
        self.type, self.dimension, self.description = type, dimension, description
        self.labels = [] if labels is None else [labels] if isinstance(labels, str) else labels
        self._config = dict(config or {})

    def info(self):
        return {"type": self.type, "labels": self.labels, "dimension": self.dimension, "description": self.description,
                "config": self._config}

    def config(self):
        return self._config
