"""``monai_diffrecon.workflows`` imports each modality's workflow on first use (PEP 562), keeping every public name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from pydoc import locate

import pytest

import monai_diffrecon.workflows as wf

ROOT = Path(__file__).resolve().parents[2]
MODULES = {"base", "spect", "mri", "natural", "satellite"}


def _loaded_after(code: str) -> set[str]:
    """Names of the ``monai_diffrecon.workflows.*`` submodules loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('monai_diffrecon.workflows.'))))"
    out = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_package_import_loads_no_workflow():
    assert _loaded_after("import monai_diffrecon.workflows") == set()


def test_spect_name_loads_only_spect():
    assert _loaded_after("from monai_diffrecon.workflows import SPECTReconstruction, spect_datalist") == {"base", "spect"}


@pytest.mark.parametrize("name", sorted(wf.__all__))
def test_every_public_name_is_the_submodule_object(name):
    assert set(wf.__all__) == set(wf._LAZY)
    import importlib

    value = getattr(wf, name)
    assert value is getattr(importlib.import_module(f"monai_diffrecon.workflows.{wf._LAZY[name]}"), name)
    assert name in dir(wf)


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        wf.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from monai_diffrecon.workflows import no_such_name", {})  # noqa: S102 - the statement itself is what is tested


def test_bundle_targets_resolve():
    """Every ``monai_diffrecon.workflows.<name>`` ``_target_`` in the shipped bundle configs resolves (as MONAI does, pydoc.locate)."""
    targets = set()
    for cfg in (ROOT / "bundles").glob("*/configs/*.json"):
        text = cfg.read_text()
        targets |= set(_targets(json.loads(text)))
    targets = {t for t in targets if t.startswith("monai_diffrecon.workflows.")}
    assert {"monai_diffrecon.workflows.SPECTReconstruction", "monai_diffrecon.workflows.spect_datalist"} <= targets
    for t in sorted(targets):
        assert callable(locate(t)), t


def _targets(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["_target_"]] if isinstance(node.get("_target_"), str) else []) + [t for v in node.values() for t in _targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in _targets(v)]
    return []
