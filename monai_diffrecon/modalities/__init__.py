"""Per-modality preprocessing shared by the samplers and the trainers, one module per modality.

A network sees the same inputs in training and at inference only if both build them with the same code. That code
lives here, below :mod:`monai_diffrecon.samplers`, :mod:`monai_diffrecon.training` and
:mod:`monai_diffrecon.workflows` (which import it) and above :mod:`monai_diffrecon.physics` and
:mod:`monai_diffrecon.diffusion` (which it imports), so no sampler imports a trainer
(``tests/test_layering.py`` checks it):

* :mod:`~monai_diffrecon.modalities.mri` — ACS block and the data-only intensity scale (:func:`acs_scale`), MSM's
  x̂₀ from a diffused partial measurement, SelfDB's prediction and its prior (:class:`SelfDBPrior`);
* :mod:`~monai_diffrecon.modalities.spect` — the intensity scale and condition channels of the 2.5D SPECT prior;
* :mod:`~monai_diffrecon.modalities.satellite` — SEN12MS-CR normalisation and the DB-CR prior (:class:`DBCRPrior`).
"""

from monai_diffrecon.modalities.mri import SelfDBPrior, acs_block, acs_lines, acs_scale, msm_x0, selfdb_predict
from monai_diffrecon.modalities.satellite import DBCRPrior, sen12ms_normalize
from monai_diffrecon.modalities.spect import MU_REF, spect_condition, spect_scale

__all__ = ["acs_block", "acs_lines", "acs_scale", "msm_x0", "selfdb_predict", "SelfDBPrior", "MU_REF", "spect_scale",
           "spect_condition", "sen12ms_normalize", "DBCRPrior"]
