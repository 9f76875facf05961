"""Tiny DSM training used by the SIGTERM and torchrun tests: python train_script.py OUT_DIR MAX_ITERS."""

import sys

import torch

from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.training import DenoisingScoreTrainer, DSMConfig, TensorSampler

torch.set_num_threads(1)
torch.manual_seed(0)
imgs = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(1))
net = diffusion_unet(2, 1, size="tiny")
tr = DenoisingScoreTrainer(net, make_scheduler(), TensorSampler(imgs), sys.argv[1],
                           DSMConfig(max_iterations=int(sys.argv[2]), batch_size=4, checkpoint_every=5), progress=False)
print("started", flush=True)
out = tr.run()
digest = float(sum(p.double().sum() for p in net.parameters()))
print(f"rank {tr.rank} iteration {out['iteration']} interrupted {out['interrupted']} digest {digest:.10f}", flush=True)
