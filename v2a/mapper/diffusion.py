"""Diffusion over audio embeddings (the paper's diffusion mapper, DALLE2-prior style).

The maths lives here, apart from the networks, which only map (t, x_t, cond) -> x0:
- cosine noise schedule (Nichol & Dhariwal), 1000 training steps;
- the network predicts x0, the clean audio embedding (paper; DALLE2 `predict_x_start`);
- condition dropout 0.1 to a learned null condition, for classifier-free guidance; networks with a
  learned null x_t (``net.null_x``, DALLE2's prior) also drop x_t with ``x_drop_prob`` in training
  (DALLE2's ``image_cond_drop_prob``) and their unconditional branch replaces x_t too, as DALLE2's
  ``forward_with_cond_scale`` does;
- sampling with DDIM (eta) on 200 of the 1000 steps by default, on DALLE2-pytorch's time grid and
  step coefficients (``p_sample_loop_ddim``, ``timestep_spacing="dalle2"``) or on evenly spread
  steps (``"even"``, what checkpoints written before the DALLE2 grid sample with).

Embeddings live on the sphere of radius sqrt(dim) while diffusing (DALLE2
`image_embed_scale`): a unit CLAP vector has per-element scale 1/sqrt(dim), far below the unit
noise, so without the scale almost every timestep would be pure noise.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2a.core.stopping import raise_if_stopped
from v2a.mapper.keyed_noise import keyed_normal
from v2a.core.names import MAPPER_GUIDANCE, MAPPER_STEPS

SCHEDULES = ("cosine",)
# DDIM time grids: "dalle2" is DALLE2-pytorch's p_sample_loop_ddim (the paper's prior), "even" ours before it.
SPACINGS = ("dalle2", "even")


def cosine_alphas_cumprod(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """alpha_bar_t for t = 0..T-1 (float64), from the clipped betas of the cosine schedule."""
    def f(t):
        return math.cos((t / num_timesteps + s) / (1 + s) * math.pi / 2) ** 2

    betas = np.array([min(1 - f(i + 1) / f(i), max_beta) for i in range(num_timesteps)], dtype=np.float64)
    return np.cumprod(1.0 - betas)


def respaced_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """`steps` training timesteps, evenly spread over [0, T-1], in sampling (descending) order."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps={steps} is not accepted; accepted: 1..{num_timesteps}")
    if steps == 1:
        return [num_timesteps - 1]
    ts = np.round(np.linspace(0, num_timesteps - 1, steps)).astype(int)
    return sorted({int(t) for t in ts}, reverse=True)


def dalle2_time_pairs(num_timesteps: int, steps: int) -> list[tuple[int, int]]:
    """DALLE2-pytorch's DDIM grid: (t, t_next) pairs from int(linspace(-1, T, steps + 1)[:-1]), descending;
    the last pair's t_next is -1 (return the x0 estimate). 200 of 1000: 994, 989, ..., 4."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps={steps} is not accepted; accepted: 1..{num_timesteps}")
    times = list(reversed(torch.linspace(-1.0, num_timesteps, steps=steps + 1)[:-1].int().tolist()))
    return list(zip(times[:-1], times[1:]))


def l2norm(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


class EmbeddingDiffusion:
    """Training loss and sampler for a diffusion mapper network.

    Guidance convention (DALLE2-pytorch's `cond_scale`, which the paper's prior follows):
        x0 = x0_uncond + g * (x0_cond - x0_uncond)
    g = 1 is the plain conditional prediction, g = 0 the unconditional one; the paper's best
    g = 0.9 leans slightly towards the unconditional mean.
    """

    kind = "diffusion"

    def __init__(self, dim: int, num_timesteps: int = 1000, schedule: str = "cosine",
                 cond_drop_prob: float = 0.1, embed_scale: float | None = None, sampling_steps: int = MAPPER_STEPS,
                 guidance_scale: float = MAPPER_GUIDANCE, eta: float = 1.0, sampling_clamp_l2norm: bool = True,
                 x_drop_prob: float = 0.0, timestep_spacing: str = "dalle2"):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule={schedule!r} is not accepted; accepted: {', '.join(SCHEDULES)}")
        if not 0.0 <= cond_drop_prob < 1.0:
            raise ValueError(f"cond_drop_prob={cond_drop_prob} is not accepted; accepted: 0 <= p < 1")
        if not 0.0 <= x_drop_prob < 1.0:
            raise ValueError(f"x_drop_prob={x_drop_prob} is not accepted; accepted: 0 <= p < 1")
        respaced_timesteps(num_timesteps, sampling_steps)  # validates sampling_steps
        if timestep_spacing not in SPACINGS:
            raise ValueError(f"timestep_spacing={timestep_spacing!r} is not accepted; accepted: {', '.join(SPACINGS)}")
        self.timestep_spacing = timestep_spacing
        self.dim = dim
        self.num_timesteps = num_timesteps
        self.schedule = schedule
        self.cond_drop_prob = cond_drop_prob
        self.x_drop_prob = float(x_drop_prob)
        self.embed_scale = float(embed_scale if embed_scale is not None else math.sqrt(dim))
        self.sampling_steps = sampling_steps
        self.guidance_scale = float(guidance_scale)
        self.eta = float(eta)
        # The target lies on the sphere, so each step's x0 estimate is projected back onto it
        # (DALLE2 `sampling_clamp_l2norm`); it keeps early, noisy estimates from shrinking.
        self.sampling_clamp_l2norm = bool(sampling_clamp_l2norm)
        self.alphas_cumprod = cosine_alphas_cumprod(num_timesteps)
        self._ab_cache: dict[str, torch.Tensor] = {}

    def settings(self) -> dict:
        return {
            "num_timesteps": self.num_timesteps, "schedule": self.schedule, "prediction": "x0",
            "cond_drop_prob": self.cond_drop_prob, "x_drop_prob": self.x_drop_prob, "embed_scale": self.embed_scale,
            "sampling_steps": self.sampling_steps, "guidance_scale": self.guidance_scale, "eta": self.eta,
            "sampling_clamp_l2norm": self.sampling_clamp_l2norm, "sampler": "ddim",
            "timestep_spacing": self.timestep_spacing,
            "guidance_convention": "x0 = uncond + g * (cond - uncond)",
        }

    def _ab(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._ab_cache:
            self._ab_cache[key] = torch.tensor(self.alphas_cumprod, dtype=torch.float32, device=device)
        return self._ab_cache[key]

    # ---- training -------------------------------------------------------------------------
    def draw(self, batch: int, device: torch.device, generator: torch.Generator | None = None,
             cond_drop_prob: float | None = None) -> dict[str, torch.Tensor]:
        """The randomness of one training batch: timesteps, noise, which conditions to drop.

        Drawn apart from the loss so a CUDA-graph training step can take it as static input.
        """
        p_drop = self.cond_drop_prob if cond_drop_prob is None else cond_drop_prob
        t = torch.randint(0, self.num_timesteps, (batch,), device=device, generator=generator)
        noise = torch.randn((batch, self.dim), device=device, generator=generator)
        drop = torch.rand(batch, device=device, generator=generator) < p_drop
        rand = {"t": t, "noise": noise, "drop": drop}
        if self.x_drop_prob > 0:  # drawn last, so the other draws are those of a run without it
            rand["drop_x"] = torch.rand(batch, device=device, generator=generator) < self.x_drop_prob
        return rand

    def loss_given(self, net: nn.Module, cond: torch.Tensor, target: torch.Tensor, t: torch.Tensor,
                   noise: torch.Tensor, drop: torch.Tensor, drop_x: torch.Tensor | None = None) -> torch.Tensor:
        x0 = l2norm(target) * self.embed_scale
        c = l2norm(cond) * self.embed_scale
        c = torch.where(drop[:, None], net.null_cond.to(c.dtype).expand_as(c), c)
        ab = self._ab(target.device)[t][:, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        if drop_x is not None:
            x_t = torch.where(drop_x[:, None], net.null_x.to(x_t.dtype).expand_as(x_t), x_t)
        pred = net(t, x_t, c).float()
        return F.mse_loss(pred, x0)

    def loss(self, net: nn.Module, cond: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None,
             cond_drop_prob: float | None = None) -> torch.Tensor:
        """MSE between the predicted and the true x0 at a random timestep (paper Eq. 2).

        cond, target: unit-norm (B, dim) visual and audio embeddings.
        """
        rand = self.draw(target.shape[0], target.device, generator, cond_drop_prob)
        return self.loss_given(net, cond, target, **rand)

    # ---- sampling -------------------------------------------------------------------------
    def _guided_x0(self, net, t: torch.Tensor, x: torch.Tensor, c: torch.Tensor, g: float) -> torch.Tensor:
        if g == 1.0:
            return net(t, x, c).float()
        null = net.null_cond.to(c.dtype).expand_as(c)
        null_x = getattr(net, "null_x", None)
        x_uncond = x if null_x is None else null_x.to(x.dtype).expand_as(x)
        both = net(torch.cat([t, t]), torch.cat([x, x_uncond]), torch.cat([c, null])).float()
        cond_x0, uncond_x0 = both.chunk(2)
        return uncond_x0 + g * (cond_x0 - uncond_x0)

    def _time_pairs(self, steps: int) -> list[tuple[int, int]]:
        if self.timestep_spacing == "dalle2":
            return dalle2_time_pairs(self.num_timesteps, steps)
        ts = respaced_timesteps(self.num_timesteps, steps)
        return list(zip(ts, [*ts[1:], -1]))

    def _step_alphas(self, t: int, t_next: int) -> tuple[float, float]:
        """alpha_bar at the two ends of a DDIM step. DALLE2 reads them from alphas_cumprod_prev (the value
        one step earlier, 1 before step 0) while its noise estimate uses alphas_cumprod[t]; kept as there."""
        ab = self.alphas_cumprod
        if self.timestep_spacing == "dalle2":
            return (1.0 if t == 0 else float(ab[t - 1])), (1.0 if t_next == 0 else float(ab[t_next - 1]))
        return float(ab[t]), float(ab[t_next])

    @torch.no_grad()
    def generate(self, net: nn.Module, cond: torch.Tensor, rows: torch.Tensor, samples: torch.Tensor, seed: int = 0,
                 steps: int | None = None, guidance_scale: float | None = None, eta: float | None = None,
                 autocast=None) -> torch.Tensor:
        """Sample unit-norm audio embeddings (B, dim) for unit-norm visual embeddings `cond`.

        rows/samples: (B,) int indices that key each output's noise (see keyed_noise), so a
        row's result does not depend on the batch it was computed in.
        """
        steps = self.sampling_steps if steps is None else steps
        g = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        eta = self.eta if eta is None else float(eta)
        device = cond.device
        c = l2norm(cond.float()) * self.embed_scale
        ctx = autocast if autocast is not None else nullcontext()

        def noise(i: int) -> torch.Tensor:
            return keyed_normal(seed, rows, samples, i, self.dim).to(device)

        x = noise(0)
        for i, (t, t_next) in enumerate(self._time_pairs(steps)):
            raise_if_stopped()
            t_batch = torch.full((c.shape[0],), t, device=device, dtype=torch.long)
            with ctx:
                x0 = self._guided_x0(net, t_batch, x, c, g)
            if self.sampling_clamp_l2norm:
                x0 = l2norm(x0) * self.embed_scale
            if t_next < 0:
                x = x0
                break
            ab = float(self.alphas_cumprod[t])
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
            a, a_next = self._step_alphas(t, t_next)
            sigma = eta * math.sqrt(max(0.0, (1 - a / a_next) * (1 - a_next) / (1 - a)))
            x = math.sqrt(a_next) * x0 + math.sqrt(max(0.0, 1 - a_next - sigma**2)) * eps
            if sigma > 0 and (t_next > 0 or self.timestep_spacing == "even"):
                x = x + sigma * noise(i + 1)
        return l2norm(x)
