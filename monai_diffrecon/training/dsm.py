"""Denoising score matching on an ignite engine, with exact checkpoint/resume.

Loss (DDPM, Ho et al. 2020, by default): ``E_{x₀, t, ε} ‖ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t) − ε‖²`` with ``t`` uniform over
the scheduler's training steps; optional condition channels are concatenated to ``x_t`` (conditional priors, e.g.
DiffSPECT-3D's 2.5D neighbours + CT). The recipe is configuration (:class:`DSMConfig`): ``prediction`` (ε, x₀, v or
EDM preconditioning, :mod:`monai_diffrecon.diffusion.parameterization`), ``loss_weighting`` (``"uniform"``, EDM's
λ(σ) or min-SNR-γ) and ``t_sampling`` (``"uniform"`` integer steps, or ``"lognormal"``: EDM's ``ln σ ~ N(P_mean,
P_std²)`` mapped to continuous t and clamped to the schedule's range) and ``precision`` (``"bf16"``: autocast of the
forward pass, the CPU speed lever of benchmarks/results/training_speed.md). A prior built from the weights must be given
the same ``prediction`` and ``sigma_data`` (:meth:`DenoisingScoreTrainer.prior_kwargs`).

Reproducibility: every random draw (batch indices or on-the-fly simulation, t, ε) comes from one explicit
``torch.Generator``. A checkpoint holds the model, EMA model, optimizer, learning-rate scheduler, iteration, loss
history and the generator (and torch's global RNG) state, so a resumed run equals the uninterrupted run bit for bit
on the CPU. Checkpoints are written to a temporary file and renamed. SIGTERM/SIGINT: the current iteration
finishes, a final checkpoint is written, the run stops (``interrupted=True``). A NaN/Inf loss raises
:class:`~monai_diffrecon.errors.TrainingError` before the optimizer step, so the last checkpoint stays good.

DDP: if launched by ``torchrun`` (``WORLD_SIZE > 1``), the process group is initialised (gloo on CPU), the network
is wrapped in ``DistributedDataParallel``, each rank draws from ``seed + rank``, and rank 0 writes checkpoints.
"""

from __future__ import annotations

import copy
import os
import signal
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from monai_diffrecon.diffusion.parameterization import LOSS_WEIGHTINGS, Parameterization
from monai_diffrecon.errors import TrainingError
from monai_diffrecon.physics.functional.devices import rand, randint, randn

__all__ = ["DSMConfig", "DenoisingScoreTrainer", "TensorSampler", "load_checkpoint", "validation_loss", "parameters_sha256"]


@dataclass
class DSMConfig:
    """Training settings (all JSON-serialisable, stored in every checkpoint)."""

    max_iterations: int = 1000
    batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    warmup: int = 50
    checkpoint_every: int = 200
    seed: int = 0
    prediction: str = "epsilon"
    sigma_data: float = 0.5
    loss_weighting: str = "uniform"
    min_snr_gamma: float = 5.0
    t_sampling: str = "uniform"
    p_mean: float = -1.2
    p_std: float = 1.2
    precision: str = "fp32"


class TensorSampler:
    """Random mini-batches from in-memory tensors, drawn with the trainer's generator.

    Args:
        images: ``(N, C, …)`` training images. cond: optional ``(N, C_cond, …)`` aligned condition channels.
        augment: random flips along the last two axes (drawn from the same generator).
    """

    def __init__(self, images: torch.Tensor, cond: torch.Tensor | None = None, augment: bool = False) -> None:
        if cond is not None and cond.shape[0] != images.shape[0]:
            raise TrainingError("cond: must have as many items as images")
        self.images, self.cond, self.augment = images, cond, augment

    def __call__(self, generator: torch.Generator, batch_size: int) -> dict:
        idx = randint(0, self.images.shape[0], (batch_size,), generator)
        x = self.images[idx]
        c = None if self.cond is None else self.cond[idx]
        if self.augment:
            for dim in (-1, -2):
                flip = rand(batch_size, generator) < 0.5
                x = torch.where(flip.reshape(-1, *([1] * (x.ndim - 1))), x.flip(dim), x)
                if c is not None:
                    c = torch.where(flip.reshape(-1, *([1] * (c.ndim - 1))), c.flip(dim), c)
        return {"image": x, "cond": c}


def load_checkpoint(path: str | Path) -> dict:
    """Load a trainer checkpoint (``weights_only=True``: tensors, numbers, strings and containers only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise TrainingError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {str(e)[:200]})") from None


def renamed_batches(batches: Callable | None, sampler: Callable | None, owner: str) -> Callable:
    """The batch source ``batches(generator, batch_size) → dict`` of ``owner``; ``sampler`` is its old name (the word
    now means the posterior sampler only), accepted for one release with a :class:`DeprecationWarning`."""
    if sampler is not None:
        if batches is not None:
            raise TrainingError(f"{owner}: pass the batch source once, as batches (sampler is its deprecated name)")
        warnings.warn(f"{owner}(sampler=...) is deprecated: the batch source is now called `batches`",
                      DeprecationWarning, stacklevel=3)
        return sampler
    if batches is None:
        raise TrainingError(f"{owner}: batches (the batch source) is required")
    return batches


class DenoisingScoreTrainer:
    """ε-prediction trainer (see module doc).

    Args:
        network: ε-network with MONAI's ``(x, timesteps)`` signature.
        scheduler: MONAI scheduler (for ᾱ_t and the number of training steps); ``None`` for subclasses that train no
            diffusion model (:class:`~monai_diffrecon.training.GaussianDenoiserTrainer`, ``AutoencoderTrainer``).
        batches: the batch source ``batches(generator, batch_size) → {"image": x₀, "cond": c | None}`` (e.g.
            :class:`TensorSampler`, or a simulator drawing fresh data each step). ``sampler=`` is its deprecated name
            (accepted for one release, with a DeprecationWarning; "sampler" names the posterior sampler).
        out_dir: where ``checkpoint.pt``, ``model.pt`` (EMA weights) and ``loss.png`` go.
        config: :class:`DSMConfig`.
        progress: tqdm progress bar.
    """

    @property
    def loss_label(self) -> str:
        """The y-axis of loss.png and the ledger's loss name (subclasses with another loss set a class attribute)."""
        c = self.cfg
        if c.prediction == "epsilon" and c.loss_weighting == "uniform":
            return "ε-MSE"
        return f"{c.prediction} loss, {c.loss_weighting} weight, {c.t_sampling} t"

    def __init__(self, network: nn.Module, scheduler, batches: Callable | None = None,
                 out_dir: str | Path | None = None,
                 config: DSMConfig | None = None, progress: bool = True, device: str | torch.device = "cpu",
                 sampler: Callable | None = None) -> None:
        self.cfg = config or DSMConfig()
        if out_dir is None:
            raise TrainingError(f"{type(self).__name__}: out_dir is required")
        self.out_dir = Path(out_dir)
        self.scheduler, self.progress = scheduler, progress
        self.batches = renamed_batches(batches, sampler, type(self).__name__)
        self.device = torch.device(device)
        self.rank, self.world = self._init_distributed()
        self.network = network.to(self.device)
        self.ema = copy.deepcopy(self.network).requires_grad_(False)
        self.model = self.network
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.network, device_ids=ids)
        self.optimizer = torch.optim.AdamW(network.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda it: min(1.0, (it + 1) / max(1, self.cfg.warmup)))
        self.generator = torch.Generator().manual_seed(self.cfg.seed + self.rank)
        self.iteration = 0
        self.losses: list[float] = []
        self.interrupted = False
        self._stop = False
        # trainers of non-diffusion networks (denoisers, autoencoders) pass scheduler=None
        self.alphas_cumprod = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float32, device="cpu") if scheduler is not None else torch.ones(1, device="cpu")
        self.parameterization = Parameterization(self.cfg.prediction, self.cfg.sigma_data)
        if self.cfg.loss_weighting not in LOSS_WEIGHTINGS:
            raise TrainingError(f"loss_weighting: one of {LOSS_WEIGHTINGS}, got {self.cfg.loss_weighting!r}")
        if self.cfg.precision not in ("fp32", "bf16"):
            raise TrainingError(f"precision: 'fp32' or 'bf16', got {self.cfg.precision!r}")
        if self.cfg.t_sampling not in ("uniform", "lognormal"):
            raise TrainingError(f"t_sampling: 'uniform' or 'lognormal', got {self.cfg.t_sampling!r}")
        recipe = {k for k, v, d in (("prediction", self.cfg.prediction, "epsilon"), ("loss_weighting", self.cfg.loss_weighting, "uniform"),
                                     ("t_sampling", self.cfg.t_sampling, "uniform"), ("precision", self.cfg.precision, "fp32")) if v != d}
        own = type(self).loss is not DenoisingScoreTrainer.loss
        if own and recipe - set(self.supports_recipe):
            raise TrainingError(f"{type(self).__name__} has its own loss: {', '.join(sorted(recipe - set(self.supports_recipe)))} "
                                "apply to DenoisingScoreTrainer's diffusion loss only"
                                + (f" (this trainer reads {', '.join(self.supports_recipe)})" if self.supports_recipe else ""))

    #: the recipe keys a subclass with its own loss reads (the rest must stay at their defaults)
    supports_recipe: tuple = ()

    def autocast(self):
        """The forward pass's precision context: bf16 autocast for ``precision="bf16"`` (weights, optimiser state and
        the loss stay fp32; measured in benchmarks/results/training_speed.md), else a no-op."""
        import contextlib

        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prior_kwargs(self) -> dict:
        """What a :class:`~monai_diffrecon.diffusion.DiffusionPrior` over these weights needs besides the network."""
        return {"prediction": self.cfg.prediction, "sigma_data": self.cfg.sigma_data}

    def draw_t(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Training timesteps and their ᾱ (CPU): integer t uniform over the schedule, or EDM's log-normal σ as
        continuous t (``t_sampling``)."""
        T = self.alphas_cumprod.numel()
        if self.cfg.t_sampling == "uniform":
            t = randint(0, T, (batch,), generator)
            return t, self.alphas_cumprod[t]
        from monai_diffrecon.diffusion.schedule import alpha_bar_at, sigma_of_t, t_of_sigma

        lo, hi = float(sigma_of_t(self.alphas_cumprod, 0.0)), float(sigma_of_t(self.alphas_cumprod, T - 1))
        sigma = torch.exp(self.cfg.p_mean + self.cfg.p_std * randn((batch,), generator).double()).clamp(lo, hi)
        t = t_of_sigma(self.alphas_cumprod, sigma).clamp(0, T - 1)
        return t.float(), alpha_bar_at(self.alphas_cumprod, t).float()

    def diffusion_loss(self, pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The recipe's loss for network output ``pred`` at ``x_t = √ᾱ x₀ + √(1−ᾱ) ε`` (module doc); the DDPM ε-MSE
        for the default recipe."""
        p = self.parameterization
        target = p.target(x0, noise, a)
        if p.prediction == "epsilon" and self.cfg.loss_weighting == "uniform":
            return torch.nn.functional.mse_loss(pred, target)
        w = p.loss_weight(a, self.cfg.loss_weighting, self.cfg.min_snr_gamma)
        return (w * (pred - target) ** 2).mean()

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _init_distributed() -> tuple[int, int]:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def ema_decay_at(self, iteration: int) -> float:
        """EMA decay for the update after ``iteration`` steps: ``min(ema_decay, (1 + i)/(10 + i))``. Without the
        warm-up a constant 0.999 keeps 0.999ⁿ of the *initial* weights in the average (23 % after 1470 iterations):
        the DB-CR weights trained that way had 30× the x̂₀ error of their bias-corrected average."""
        return min(self.cfg.ema_decay, (1 + iteration) / (10 + iteration))

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    @staticmethod
    def _cpu(sd: dict) -> dict:
        """Tensors moved to the CPU, so weights trained on a GPU load on a machine without one."""
        return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in sd.items()}

    def state_dict(self) -> dict:
        return {
            "model": self._cpu(self.network.state_dict()),
            "ema": self._cpu(self.ema.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "iteration": self.iteration,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "losses": list(self.losses),
            "config": asdict(self.cfg),
        }

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("config", {}).get("batch_size") not in (None, self.cfg.batch_size):
            raise TrainingError("checkpoint was trained with a different batch size; refusing to resume")
        self.network.load_state_dict(sd["model"])
        self.ema.load_state_dict(sd["ema"])
        self.optimizer.load_state_dict(sd["optimizer"])
        self.lr_scheduler.load_state_dict(sd["lr_scheduler"])
        self.iteration = int(sd["iteration"])
        self.generator.set_state(sd["generator"])
        torch.set_rng_state(sd["torch_rng"])
        self.losses = list(sd["losses"])

    def save(self) -> None:
        if self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".pt.tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.checkpoint_path)
        tmp = self.out_dir / "model.pt.tmp"
        torch.save(self._cpu(self.ema.state_dict()), tmp)
        os.replace(tmp, self.out_dir / "model.pt")
        self.plot_losses()

    def plot_losses(self) -> None:
        if not self.losses:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        loss = torch.tensor(self.losses, device="cpu")
        k = max(1, len(self.losses) // 50)
        smooth = torch.nn.functional.avg_pool1d(loss[None, None], k, stride=1)[0, 0] if len(loss) >= k else loss
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.semilogy(loss.numpy(), alpha=0.3, label="loss")
        ax.semilogy(torch.arange(len(smooth), device="cpu").numpy() + k - 1, smooth.numpy(), label=f"moving mean ({k})")
        ax.set_xlabel("iteration")
        ax.set_ylabel(self.loss_label)
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out_dir / "loss.png", dpi=90)
        plt.close(fig)

    # ------------------------------------------------------------------ training
    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """The training loss for one batch (denoising score matching, ε-MSE). Subclasses (MSM, SelfDB) override this
        and inherit the optimiser, EMA, checkpointing, resume, signal handling and DDP plumbing."""
        g = generator
        x0, cond = batch["image"].float(), batch.get("cond")
        B = x0.shape[0]
        t, a = self.draw_t(B, g)
        noise = randn(x0.shape, g)  # drawn on the CPU so the stream does not depend on the device
        a = a.reshape(B, *([1] * (x0.ndim - 1)))
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        inp = self.parameterization.network_input(x_t, a).to(self.device)
        inp = inp if cond is None else torch.cat([inp, cond.float().to(self.device)], dim=1)
        with self.autocast():
            pred = self.model(inp, t.to(self.device))
        return self.diffusion_loss(pred.float(), x0.to(self.device), noise.to(self.device), a.to(self.device))

    @property
    def sampler(self) -> Callable:
        """Deprecated name of :attr:`batches` (the batch source), kept for one release."""
        warnings.warn("trainer.sampler is deprecated: the batch source is trainer.batches", DeprecationWarning, stacklevel=2)
        return self.batches

    @torch.no_grad()
    def errors(self, network: nn.Module, batch: dict, generator: torch.Generator) -> dict:
        """Errors of ``network`` (read with this trainer's parameterisation) on one batch at t uniform over the
        schedule: ``eps_mse``, ``x0_mse`` (comparable across prediction types) and the recipe's ``loss``."""
        p, ab = self.parameterization, self.alphas_cumprod
        x0 = batch["image"].float()
        t = randint(0, ab.numel(), (x0.shape[0],), generator)
        n = randn(x0.shape, generator)
        a = ab[t].reshape(-1, *([1] * (x0.ndim - 1)))
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * n
        inp = p.network_input(x_t, a)
        inp = inp if batch.get("cond") is None else torch.cat([inp, batch["cond"].float()], 1)
        with self.autocast():
            pred = network(inp.to(self.device), t.to(self.device)).float().cpu()
        return {"eps_mse": float(torch.nn.functional.mse_loss(p.to_eps(pred, x_t, a), n)),
                "x0_mse": float(torch.nn.functional.mse_loss(p.to_x0(pred, x_t, a), x0)),
                "loss": float(self.diffusion_loss(pred, x0, n, a))}

    def step(self, engine=None, _=None) -> float:
        """One optimisation step (the ignite process function)."""
        batch = self.batches(self.generator, self.cfg.batch_size)
        self.model.train()
        loss = self.loss(batch, self.generator)
        if not bool(torch.isfinite(loss)):
            raise TrainingError(f"loss is {float(loss.detach())} at iteration {self.iteration + 1}; stopping (last checkpoint kept)")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.lr_scheduler.step()
        with torch.no_grad():
            d = self.ema_decay_at(self.iteration)
            for pe, p in zip(self.ema.parameters(), self.network.parameters()):
                pe.mul_(d).add_(p.detach(), alpha=1 - d)
            for be, b in zip(self.ema.buffers(), self.network.buffers()):
                be.copy_(b)
        value = float(loss.detach().cpu())
        if self.world > 1:
            tl = torch.tensor([value], device=self.device)  # NCCL reduces CUDA tensors only
            torch.distributed.all_reduce(tl)
            value = float(tl) / self.world
        self.iteration += 1
        self.losses.append(value)
        return value

    def run(self, resume: bool = True, max_iterations: int | None = None) -> dict:
        """Train up to ``max_iterations`` (default: the config's), resuming from ``checkpoint.pt`` if present."""
        from ignite.engine import Engine, Events
        from tqdm.auto import tqdm

        total = max_iterations or self.cfg.max_iterations
        if resume and self.checkpoint_path.exists():
            self.load_state_dict(load_checkpoint(self.checkpoint_path))
        remaining = total - self.iteration
        if remaining <= 0:
            return {"iteration": self.iteration, "loss": self.losses[-1] if self.losses else None, "interrupted": False}
        engine = Engine(self.step)
        bar = tqdm(total=total, initial=self.iteration, desc="training", disable=not self.progress or self.rank != 0)

        @engine.on(Events.ITERATION_COMPLETED)
        def _after(e):
            bar.update(1)
            bar.set_postfix(loss=f"{self.losses[-1]:.4f}")
            if self.iteration % self.cfg.checkpoint_every == 0:
                self.save()
            if self._stop:
                self.interrupted = True
                self.save()
                e.terminate()

        previous = {}

        def request_stop(signum, frame):
            self._stop = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                previous[sig] = signal.signal(sig, request_stop)
            except ValueError:  # not the main thread
                pass
        try:
            engine.run(range(remaining), max_epochs=1)
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)
            bar.close()
        if not self.interrupted:
            self.save()
        out = {"iteration": self.iteration, "loss": self.losses[-1], "interrupted": self.interrupted}
        if self.world > 1:  # DDP keeps the replicas identical; print each rank's digest so launchers and tests can check
            out["parameters_sha256"] = parameters_sha256(self.network)
            print(f"[rank {self.rank}/{self.world}] iteration {self.iteration} parameters sha256 {out['parameters_sha256']}", flush=True)
        return out


def parameters_sha256(network: nn.Module) -> str:
    """sha256 of a network's parameters and buffers (names, dtypes and bytes, in ``state_dict`` order)."""
    import hashlib

    h = hashlib.sha256()
    for k, v in network.state_dict().items():
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class validation_loss:  # noqa: N801 - used as a config component (``_target_``)
    """Validation errors of the trainer's EMA network on a held-out cohort (fixed draws, t uniform over the schedule),
    written to ``validation.json``: ``validation_eps_mse`` (ε̂ error), ``validation_x0_mse`` (x̂₀ error, comparable
    across prediction types) and ``validation_loss`` (the training recipe's own loss).

    Args:
        trainer: the :class:`DenoisingScoreTrainer`. cohort: ``{"target": (N, C, …), "cond": (N, C_cond, …) | None}``.
        n_batches, batch_size, seed: the fixed evaluation draws.
    """

    def __init__(self, trainer: DenoisingScoreTrainer, cohort: dict, n_batches: int = 20, batch_size: int = 16, seed: int = 123) -> None:
        self.trainer, self.cohort, self.n_batches, self.batch_size, self.seed = trainer, cohort, n_batches, batch_size, seed

    @torch.no_grad()
    def report(self) -> dict:
        import json

        tr = self.trainer
        p = tr.parameterization
        g = torch.Generator().manual_seed(self.seed)
        tr.ema.eval()
        smp = TensorSampler(self.cohort["target"], self.cohort.get("cond"))
        errs = [tr.errors(tr.ema, smp(g, self.batch_size), g) for _ in range(self.n_batches)]
        eps_l, x0_l, loss_l = ([e[k] for e in errs] for k in ("eps_mse", "x0_mse", "loss"))
        mean = lambda v: sum(v) / len(v)  # noqa: E731
        out = {"validation_eps_mse": mean(eps_l), "validation_x0_mse": mean(x0_l), "validation_loss": mean(loss_l),
               "prediction": p.prediction, "iteration": tr.iteration,
               "train_loss_last100": sum(tr.losses[-100:]) / max(1, len(tr.losses[-100:]))}
        if tr.rank == 0:
            tr.out_dir.mkdir(parents=True, exist_ok=True)
            (tr.out_dir / "validation.json").write_text(json.dumps(out, indent=2))
        return out
