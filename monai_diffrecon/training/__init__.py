"""Trainers (ignite engines with exact checkpoint/resume)."""

from monai_diffrecon.training.dsm import DenoisingScoreTrainer, DSMConfig, TensorSampler, load_checkpoint

__all__ = ["DenoisingScoreTrainer", "DSMConfig", "TensorSampler", "load_checkpoint"]
