"""Samplers: one reverse-diffusion loop (``engine.py``) and short presets over it, plus score-based PnP."""

from monai_diffrecon.samplers.base import Sampler, SamplerOutput
from monai_diffrecon.samplers.consistency import (
    ConsistencyStep,
    GradientConsistency,
    PoissonMLEMConsistency,
    ClampX0,
    ProxConsistency,
    RangeNullSpace,
    TVProx,
)
from monai_diffrecon.samplers.diffusion_samplers import DDNM, DPS, Conditional, DiffPIR, DiffusionSampler, Unconditional
from monai_diffrecon.samplers.blind_dps import BlindDPS
from monai_diffrecon.samplers.blind_pnpdm import BlindPnPDM
from monai_diffrecon.samplers.bridge import bridge_times, run_bridge
from monai_diffrecon.samplers.dbcr import DBCR
from monai_diffrecon.samplers.engine import DiffusionLoop, ddim_noise, diffpir_noise, dps_guidance
from monai_diffrecon.samplers.msm import MSMSampler
from monai_diffrecon.samplers.pnp_dm import PnPDM
from monai_diffrecon.samplers.reld import RELD
from monai_diffrecon.samplers.score_pnp import ScorePnP
from monai_diffrecon.samplers.selfdb import SelfDBSampler
from monai_diffrecon.samplers.spect25d import SPECT25D
from monai_diffrecon.samplers.unfolding import DiffUnfolding, UnfoldingPrior

__all__ = [
    "Sampler",
    "SamplerOutput",
    "DiffusionLoop",
    "DiffusionSampler",
    "Unconditional",
    "Conditional",
    "DPS",
    "DDNM",
    "DiffPIR",
    "PnPDM",
    "BlindPnPDM",
    "BlindDPS",
    "RELD",
    "ScorePnP",
    "SPECT25D",
    "MSMSampler",
    "SelfDBSampler",
    "DiffUnfolding",
    "DBCR",
    "UnfoldingPrior",
    "run_bridge",
    "bridge_times",
    "ConsistencyStep",
    "ClampX0",
    "ProxConsistency",
    "GradientConsistency",
    "RangeNullSpace",
    "PoissonMLEMConsistency",
    "TVProx",
    "ddim_noise",
    "diffpir_noise",
    "dps_guidance",
]
