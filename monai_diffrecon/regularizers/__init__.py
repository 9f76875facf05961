"""Regularisers: closed-form and exact TV proximal operators."""

from monai_diffrecon.regularizers.tv import tv_norm, tv_prox, tv_prox_exact

__all__ = ["tv_prox", "tv_prox_exact", "tv_norm"]
