"""The regression objective (paper Eq. 1): MSE between the mapper's output and the CLAP target.

Inputs and targets are scaled to norm sqrt(dim), as in the diffusion mapper: a freshly
initialised output layer then already produces vectors of about the target's size, and the two
mapper kinds train on losses of the same scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from v2a.mapper.diffusion import l2norm


class RegressionObjective:
    kind = "regression"

    def __init__(self, dim: int, embed_scale: float | None = None):
        self.dim = dim
        self.embed_scale = float(embed_scale if embed_scale is not None else math.sqrt(dim))

    def settings(self) -> dict:
        return {"embed_scale": self.embed_scale}

    def draw(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> dict:
        return {}  # nothing random in a regression step

    def loss_given(self, net: nn.Module, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = net(l2norm(cond) * self.embed_scale).float()
        return F.mse_loss(pred, l2norm(target) * self.embed_scale)

    def loss(self, net: nn.Module, cond: torch.Tensor, target: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        return self.loss_given(net, cond, target)

    @torch.no_grad()
    def generate(self, net: nn.Module, cond: torch.Tensor, rows=None, samples=None, seed: int = 0, steps=None,
                 guidance_scale=None, eta=None, autocast=None) -> torch.Tensor:
        """Unit-norm predictions; the keyword arguments of the diffusion sampler are ignored
        (a regression mapper is deterministic)."""
        if autocast is not None:
            with autocast:
                pred = net(l2norm(cond.float()) * self.embed_scale)
        else:
            pred = net(l2norm(cond.float()) * self.embed_scale)
        return l2norm(pred.float())
