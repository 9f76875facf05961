"""MONAI Label app serving monai_diffrecon reconstructions.

    monailabel start_server --app apps/monailabel --studies /path/to/studies --host 127.0.0.1 --port 8000 \
        --conf diffrecon_bin /path/to/project/.venv/bin/diffrecon [--conf bundles spect_cardiac_diffusion,mri_multicoil_msm]

``POST /infer/<bundle>?image=<study path>&output=image`` returns the reconstructed NIfTI (float32), ``output=json``
the metrics and the paths of the derived DICOM series and posterior std (see lib/infer.py). Runs in MONAI Label's own
environment (``make monailabel-env``); the reconstruction itself runs in the project environment.
"""

from __future__ import annotations

import json
import logging
import subprocess

from lib.infer import ReconstructionInfer, diffrecon_bin
from monailabel.interfaces.app import MONAILabelApp

logger = logging.getLogger(__name__)


class DiffReconApp(MONAILabelApp):
    def __init__(self, app_dir, studies, conf):
        self.executable = diffrecon_bin(conf)
        wanted = [b for b in conf.get("bundles", "").split(",") if b]
        listing = subprocess.run([self.executable, "list"], capture_output=True, text=True, check=True).stdout
        self.bundles = {}
        for line in listing.splitlines():
            if line and not line.startswith(" "):
                name, _, weights, *task = line.split(None, 3)
                if weights == "weights" and (not wanted or name in wanted):
                    self.bundles[name] = task[0] if task else name
        logger.info("monai_diffrecon bundles served: %s", json.dumps(list(self.bundles)))
        super().__init__(app_dir=app_dir, studies=studies, conf=conf, name="monai_diffrecon",
                         description="Diffusion-model reconstruction (SPECT, multi-coil MRI) from monai_diffrecon bundles")

    def init_infers(self):
        return {name: ReconstructionInfer(name, task, self.executable) for name, task in self.bundles.items()}
