"""Metrics (SPECT incl. the 17-segment polar map, cloud removal and the measurement-domain shift metric here; image metrics from MONAI / scikit-image where they exist)."""

from monai_diffrecon.metrics.closed_form_priors import GaussianMixturePrior, fit_gaussian, fit_gaussian_mixture, gaussian_kl, mixture_kl
from monai_diffrecon.metrics.alignment import aligned_image_metrics, best_shift, kernel_rmse
from monai_diffrecon.metrics.polar_map import aha17_labels, auc, polar_map, segment_scores, summed_score
from monai_diffrecon.metrics.satellite import cloud_removal_metrics, spectral_angle_deg
from monai_diffrecon.metrics.shift import ShiftEstimate, denoiser_from_prior, kl_from_denoisers
from monai_diffrecon.metrics.spect import defect_metrics, heart_mask, volume_metrics

__all__ = ["best_shift", "kernel_rmse", "aligned_image_metrics", "heart_mask", "volume_metrics", "defect_metrics", "aha17_labels", "polar_map", "segment_scores", "summed_score", "auc", "cloud_removal_metrics", "spectral_angle_deg", "kl_from_denoisers",
           "denoiser_from_prior", "ShiftEstimate", "GaussianMixturePrior", "fit_gaussian", "fit_gaussian_mixture", "gaussian_kl", "mixture_kl"]
