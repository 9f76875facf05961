"""Network factories (MONAI DiffusionModelUNet presets; method-specific networks arrive with their bundles), and the
coordinate-channel / patchwise wrappers that run a patch-trained network on the full image."""

from monai_diffrecon.networks.coords import CoordinateChannels, PatchwiseNetwork, coordinate_grid
from monai_diffrecon.networks.dbcr import DBCRNet, StackedDBCR, dbcr_network
from monai_diffrecon.networks.dncnn import DnCNN, UNetDenoiser
from monai_diffrecon.networks.unet import PRESETS, diffusion_unet
from monai_diffrecon.networks.unfolding import UnfoldedDenoiser, unfolded_denoiser
from monai_diffrecon.networks.weights import load_verified, sha256_file

__all__ = ["diffusion_unet", "PRESETS", "load_verified", "sha256_file", "UnfoldedDenoiser", "unfolded_denoiser", "DBCRNet", "StackedDBCR", "dbcr_network", "DnCNN", "UNetDenoiser",
           "CoordinateChannels", "PatchwiseNetwork", "coordinate_grid"]
