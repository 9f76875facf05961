"""Network factories (MONAI DiffusionModelUNet presets; method-specific networks arrive with their bundles)."""

from monai_diffrecon.networks.diffusion_unet import PRESETS, diffusion_unet

__all__ = ["diffusion_unet", "PRESETS"]
