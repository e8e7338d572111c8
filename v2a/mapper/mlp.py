"""MLP mappers of the paper: stacks of Linear -> SiLU -> LayerNorm, depth D, expansion E.

Layout (it reproduces every entry of the paper's two MLP parameter tables within 1 %):
D hidden blocks, the first one widening the input to ``dim * E``, the others ``dim*E -> dim*E``,
each Linear -> SiLU -> LayerNorm, then one Linear back to ``dim``. The diffusion MLP reads the
concatenation [time embedding, noisy audio embedding, visual embedding] (3 * dim wide); its time
embedding is a learned table with one row per training step.
"""

from __future__ import annotations

import torch
from torch import nn


def _hidden_stack(in_dim: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU(), nn.LayerNorm(hidden)]
        width = hidden
    return nn.Sequential(*layers)


class RegressionMLP(nn.Module):
    """Visual embedding -> audio embedding in one pass (paper Eq. 1)."""

    kind = "regression"
    arch = "mlp"

    def __init__(self, dim: int, depth: int = 1, expansion: int = 4):
        super().__init__()
        self.dim, self.depth, self.expansion = dim, depth, expansion
        hidden = dim * expansion
        self.body = _hidden_stack(dim, hidden, depth)
        self.out = nn.Linear(hidden, dim)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(cond))


class DiffusionMLP(nn.Module):
    """(t, x_t, visual condition) -> predicted clean audio embedding x0."""

    kind = "diffusion"
    arch = "mlp"

    def __init__(self, dim: int, depth: int = 1, expansion: int = 4, num_timesteps: int = 1000):
        super().__init__()
        self.dim, self.depth, self.expansion, self.num_timesteps = dim, depth, expansion, num_timesteps
        hidden = dim * expansion
        self.time_embed = nn.Embedding(num_timesteps, dim)
        # Stands in for the visual condition when it is dropped (classifier-free guidance);
        # learned, as DALLE2's prior does, rather than a zero vector.
        self.null_cond = nn.Parameter(torch.randn(dim) / dim**0.5)
        self.body = _hidden_stack(3 * dim, hidden, depth)
        self.out = nn.Linear(hidden, dim)

    def forward(self, t: torch.Tensor, x_t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.time_embed(t).to(x_t.dtype), x_t, cond], dim=-1)
        return self.out(self.body(h))
