"""Trainers (ignite engines with exact checkpoint/resume)."""

from monai_diffrecon.training.dsm import DenoisingScoreTrainer, DSMConfig, TensorSampler, load_checkpoint, validation_loss

__all__ = ["DenoisingScoreTrainer", "DSMConfig", "TensorSampler", "load_checkpoint", "validation_loss"]
