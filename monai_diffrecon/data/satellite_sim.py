"""Synthetic optical + SAR satellite scenes with clouds and shadows (cloudy / clear / SAR triplets).

A scene of ``size²`` pixels is built from smooth random fields (sums of random-phase cosines over a band of
spatial frequencies, i.e. fractal-like texture):

* **land cover** — water, vegetation, bare soil, urban — by thresholding two fields (water where the "elevation"
  field is low; urban / soil / vegetation from a second field);
* **optical** reflectance in 4 bands (B2 blue, B3 green, B4 red, B8 NIR) from typical class spectra (water dark and
  NIR-absorbing, vegetation with the red edge: low red, high NIR, soil brighter in red, urban flat and bright),
  modulated by texture; stored as Sentinel-2 L1C-style digital numbers 0–10000 (reflectance × 10000);
* **SAR** VV/VH backscatter (σ⁰ in dB) per class (water ≈ −22/−28 dB specular, vegetation ≈ −11/−17 dB volume,
  soil ≈ −14/−22 dB, urban ≈ −4/−10 dB double bounce) plus texture, with multiplicative Gamma speckle of
  ``looks`` looks — consistent with the same land cover;
* **clouds** — a thickness field ``τ ∈ [0, 1]`` (thresholded, softened field); cloudy reflectance
  ``(1 − τ)·clear + τ·cloud_spectrum`` (bright, flat, slightly lower NIR); **shadows** — the cloud field shifted
  along the sun direction darkens the ground by up to 60 %.

``cloud_model="v2"`` (DB-CR v2: clouds the optical bands alone cannot invert, so SAR has something to add):

* **opaque cores** — the thickness ramps up with a gain drawn from ``U(3, 8)`` (v1: 2.5), so the inner part of most
  clouds has τ = 1 (no ground signal at all in the optical bands);
* **random per-cloud spectra** — each connected cloud gets its own brightness (0.75–1.1 × the v1 spectrum) and a
  ±10 % per-band jitter, so a linear unmixing with one known spectrum no longer inverts the blend;
* **shadows** at a random sun azimuth and distance (4–10 % of the scene), darkening 50–80 % where the projected cloud
  is opaque;
* **haze** — with probability 0.7 a thin smooth layer (peak opacity up to 0.35) with a Rayleigh-like blue-heavy
  spectrum over the whole scene;
* **SAR tied to the terrain** — the elevation field becomes relief (0–300 m over 10 m pixels), the radar looks along
  +x at 35° incidence: land backscatter scales with ``cos²`` of the local incidence angle (foreslopes bright,
  backslopes dark, radar shadow beyond grazing), water stays flat; the same Gamma speckle.

:func:`~monai_diffrecon.modalities.satellite.sen12ms_normalize` (re-exported here) applies the SEN12MS-CR preprocessing (optical clipped to [0, 10000] then /10000;
VV clipped to [−25, 0] dB, VH to [−32.5, 0] dB, then mapped to [0, 1]), so real SEN12MS-CR triplets and these
scenes go through the same transforms.
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.modalities.satellite import sen12ms_normalize
from monai_diffrecon.physics.functional.devices import rand

__all__ = ["satellite_scene", "sen12ms_normalize", "BANDS", "LAND_COVER"]

_HAZE = (0.32, 0.26, 0.20, 0.10)  # Rayleigh-like: scattering falls with wavelength

BANDS = ("B2", "B3", "B4", "B8")
LAND_COVER = ("water", "vegetation", "soil", "urban")
# reflectance (B2, B3, B4, B8) and SAR σ⁰ (VV, VH) dB per class
_SPECTRA = {
    "water": ((0.06, 0.05, 0.03, 0.01), (-22.0, -28.0)),
    "vegetation": ((0.03, 0.07, 0.04, 0.40), (-11.0, -17.0)),
    "soil": ((0.10, 0.14, 0.20, 0.28), (-14.0, -22.0)),
    "urban": ((0.18, 0.19, 0.21, 0.25), (-4.0, -10.0)),
}
_CLOUD = (0.75, 0.74, 0.73, 0.68)


def _field(size: int, g: torch.Generator, fmin: float, fmax: float, n: int = 48) -> torch.Tensor:
    """Smooth random field in [0, 1]: sum of ``n`` random cosines with frequencies in [fmin, fmax] cycles/image
    and amplitude ∝ 1/f."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64, device="cpu") / size, torch.arange(size, dtype=torch.float64, device="cpu") / size, indexing="ij")
    f = torch.zeros(size, size, dtype=torch.float64, device="cpu")
    for _ in range(n):
        r = rand(3, g, dtype=torch.float64)
        freq = fmin * (fmax / fmin) ** float(r[0])
        th = 2 * math.pi * float(r[1])
        f = f + torch.cos(2 * math.pi * freq * (math.cos(th) * xx + math.sin(th) * yy) + 2 * math.pi * float(r[2])) / freq
    return (f - f.min()) / (f.max() - f.min() + 1e-12)


def satellite_scene(size: int = 128, generator: torch.Generator | None = None, cloud_cover: float | None = None, looks: int = 4,
                    cloud_model: str = "v1") -> dict[str, torch.Tensor]:
    """One scene. Returns float32 tensors:

    ``clear`` (4, H, W) and ``cloudy`` (4, H, W) in DN (0–10000), ``sar`` (2, H, W) σ⁰ in dB (VV, VH, speckled),
    ``cloud`` (1, H, W) thickness τ, ``shadow`` (1, H, W) darkening factor ∈ [0, 0.6], ``land_cover`` (H, W) class
    index into :data:`LAND_COVER`.

    Args:
        cloud_cover: target cloudy fraction (τ > 0.1); ``None`` draws it in [0.1, 0.8].
        looks: number of looks of the Gamma speckle (higher = less speckle).
        cloud_model: ``"v1"`` (the module doc's first model) or ``"v2"`` (opaque cores, per-cloud spectra, haze,
            terrain-tied SAR); v2 scenes also return ``haze`` (1, H, W).
    """
    if cloud_model not in ("v1", "v2"):
        raise InvalidValueError(f"cloud_model: 'v1' or 'v2', got {cloud_model!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    elev = _field(size, g, 1.0, 8.0)
    use = _field(size, g, 2.0, 16.0)
    lc = torch.full((size, size), 1, dtype=torch.long, device="cpu")  # vegetation
    lc[use > 0.62] = 2  # soil
    lc[use > 0.8] = 3  # urban
    lc[elev < 0.22] = 0  # water
    tex = 0.85 + 0.3 * _field(size, g, 12.0, 64.0)
    clear = torch.zeros(4, size, size, dtype=torch.float64, device="cpu")
    sar_db = torch.zeros(2, size, size, dtype=torch.float64, device="cpu")
    for k, name in enumerate(LAND_COVER):
        m = lc == k
        refl, (vv, vh) = _SPECTRA[name]
        for b in range(4):
            clear[b][m] = refl[b]
        sar_db[0][m], sar_db[1][m] = vv, vh
    clear = clear * tex
    sar_db = sar_db + 2.0 * (_field(size, g, 8.0, 48.0) - 0.5)
    if cloud_model == "v2":
        sar_db = sar_db + _terrain_db(elev, lc, g)
    # Gamma speckle with mean 1 on intensity
    shape = torch.full((2, size, size), float(looks), dtype=torch.float64, device="cpu")
    gamma = torch._standard_gamma(shape, generator=g) / looks
    sar = 10 * torch.log10((10 ** (sar_db / 10)) * gamma)

    cover = float(0.1 + 0.7 * rand((), g, dtype=torch.float64)) if cloud_cover is None else float(cloud_cover)
    if cloud_model == "v2":
        return _clouds_v2(clear, sar, lc, cover, g)
    cf = _field(size, g, 1.5, 24.0)
    thr = torch.quantile(cf.flatten(), 1 - cover)
    tau = ((cf - thr) / (1 - thr + 1e-9) * 2.5).clamp(0, 1)
    th = 2 * math.pi * float(rand((), g))
    shift = (int(round(0.06 * size * math.sin(th))), int(round(0.06 * size * math.cos(th))))
    shadow = 0.6 * torch.roll(tau, shifts=shift, dims=(0, 1)) * (1 - tau)
    cloud_spec = torch.tensor(_CLOUD, dtype=torch.float64, device="cpu")[:, None, None]
    cloudy = ((1 - tau) * clear * (1 - shadow) + tau * cloud_spec)
    dn = lambda r: (r * 10000).clamp(0, 10000).float()  # noqa: E731
    return {
        "clear": dn(clear),
        "cloudy": dn(cloudy),
        "sar": sar.float(),
        "cloud": tau[None].float(),
        "shadow": shadow[None].float(),
        "land_cover": lc,
    }


def _terrain_db(elev: torch.Tensor, lc: torch.Tensor, g: torch.Generator, pixel_m: float = 10.0, incidence_deg: float = 35.0) -> torch.Tensor:
    """Backscatter change (dB) from the local incidence angle: relief ``U(0, 300)`` m × ``elev``, radar looking along
    +x; ``σ⁰ ∝ cos²θ_loc / cos²θ₀`` on land, radar shadow (−15 dB) where the slope faces away beyond grazing."""
    relief = 300.0 * float(rand((), g, dtype=torch.float64))
    height = relief * elev
    slope = torch.atan(torch.gradient(height, dim=1)[0] / pixel_m)  # rise along the range direction
    th0 = math.radians(incidence_deg)
    local = th0 - slope  # facing the radar → smaller local incidence
    ratio = torch.cos(local).clamp_min(0) ** 2 / math.cos(th0) ** 2
    db = torch.where(local < math.pi / 2, 10 * torch.log10(ratio.clamp_min(10 ** -1.5)), torch.full_like(ratio, -15.0))
    return torch.where(lc == 0, torch.zeros_like(db), db)  # water is flat


def _clouds_v2(clear: torch.Tensor, sar: torch.Tensor, lc: torch.Tensor, cover: float, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The v2 cloud, shadow and haze layers over ``clear`` (module doc)."""
    from scipy import ndimage

    size = clear.shape[-1]
    cf = _field(size, g, 1.5, 24.0)
    thr = torch.quantile(cf.flatten(), 1 - cover)
    gain = 3.0 + 5.0 * float(rand((), g, dtype=torch.float64))
    tau = ((cf - thr) / (1 - thr + 1e-9) * gain).clamp(0, 1)
    labels, n = ndimage.label((tau > 0).numpy())
    labels = torch.from_numpy(labels)
    spec = torch.tensor(_CLOUD, dtype=torch.float64, device="cpu")[:, None, None].expand(4, size, size).clone()
    for c in range(1, n + 1):
        r = rand(5, g, dtype=torch.float64)
        s_c = torch.tensor(_CLOUD, dtype=torch.float64, device="cpu") * (0.75 + 0.35 * float(r[0])) * (0.9 + 0.2 * r[1:])
        spec[:, labels == c] = s_c[:, None]
    th = 2 * math.pi * float(rand((), g))
    dist = (0.04 + 0.06 * float(rand((), g))) * size
    shift = (int(round(dist * math.sin(th))), int(round(dist * math.cos(th))))
    dark = 0.5 + 0.3 * float(rand((), g))
    shadow = dark * torch.roll(tau, shifts=shift, dims=(0, 1)) * (1 - tau)
    x = (1 - tau) * clear * (1 - shadow) + tau * spec
    haze = torch.zeros(size, size, dtype=torch.float64, device="cpu")
    r = rand(2, g, dtype=torch.float64)
    if float(r[0]) < 0.7:
        haze = 0.35 * float(r[1]) * _field(size, g, 0.5, 4.0)
        hz = torch.tensor(_HAZE, dtype=torch.float64, device="cpu")[:, None, None] * (0.8 + 0.4 * float(rand((), g)))
        x = (1 - haze) * x + haze * hz
    dn = lambda v: (v * 10000).clamp(0, 10000).float()  # noqa: E731
    return {"clear": dn(clear), "cloudy": dn(x), "sar": sar.float(), "cloud": tau[None].float(), "shadow": shadow[None].float(),
            "haze": haze[None].float(), "land_cover": lc}
