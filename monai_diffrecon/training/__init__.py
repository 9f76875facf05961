"""Trainers (ignite engines with exact checkpoint/resume): denoising score matching, and the self-supervised MRI
losses (MSM, SelfDB) that learn from undersampled k-space only; batch sources, including random crops with
coordinate channels for patch training (:class:`PatchSampler`)."""

from monai_diffrecon.training.align import AlignConfig, align_prior
from monai_diffrecon.training.autoencoder import AutoencoderTrainer, LatentSampler, latent_scale
from monai_diffrecon.training.dbcr import BridgeTrainer, SceneSampler
from monai_diffrecon.training.denoiser import GaussianDenoiserTrainer
from monai_diffrecon.training.dsm import DenoisingScoreTrainer, DSMConfig, TensorSampler, load_checkpoint, validation_loss
from monai_diffrecon.training.msm import KSpaceSampler, MSMTrainer
from monai_diffrecon.training.patches import PatchSampler
from monai_diffrecon.training.selfdb import SelfDBTrainer
from monai_diffrecon.training.unfolding import BlurOperatorSampler, MRIOperatorSampler, UnfoldingTrainer

__all__ = ["AlignConfig", "align_prior", "DenoisingScoreTrainer", "DSMConfig", "TensorSampler", "PatchSampler", "load_checkpoint", "validation_loss", "KSpaceSampler", "MSMTrainer",
           "SelfDBTrainer", "UnfoldingTrainer", "MRIOperatorSampler", "BlurOperatorSampler",
           "BridgeTrainer", "SceneSampler", "GaussianDenoiserTrainer", "AutoencoderTrainer", "LatentSampler", "latent_scale"]
