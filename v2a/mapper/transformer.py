"""The ``query-slots`` Transformer block (an option; the default is ``dalle2-prior``, prior_transformer.py).

A few 512-d tokens in, the output at a learned query token out.

The paper gives 12 heads of 64, feed-forward expansion 4 and a learned query token, and reports
about 4.00 M parameters per layer at width 512. A standard block would have 3.15 M, so the
layout here follows the DALLE2 prior's transformer, which matches the count: multi-query
attention (12 query heads, one key/value head shared by all) and a SwiGLU feed-forward
(512 -> 2 * 2048 -> 512), pre-LayerNorm, no biases. Tokens:
regression [visual, query]; diffusion [time embedding, noisy audio x_t, visual, query].

Position: DALLE2 tells its tokens apart with a causal mask and rotary embeddings. With only
2 or 4 tokens a learned per-slot embedding does the same job more simply (1-2 k parameters),
so attention here is full (bidirectional). Unlike DALLE2, the unconditional branch of guidance
keeps x_t (only the visual condition is replaced by ``null_cond``). 3.15 + 0.85 M per layer gives
within 2 % of the paper's counts, not its exact numbers (docs/deviations.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiQueryAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 12, head_dim: int = 64):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        # One projection for q (all heads) and the single shared k and v: fewer kernel launches.
        self.to_qkv = nn.Linear(dim, heads * head_dim + 2 * head_dim, bias=False)
        self.to_out = nn.Linear(heads * head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h, d = self.heads, self.head_dim
        q, k, v = self.to_qkv(x).split([h * d, d, d], dim=-1)
        q = q.view(b, n, h, d).transpose(1, 2)  # (b, h, n, d)
        k = k.unsqueeze(1)  # (b, 1, n, d): broadcast over the query heads
        v = v.unsqueeze(1)
        scores = (q @ k.transpose(-1, -2)) * d**-0.5
        attn = scores.float().softmax(dim=-1).to(q.dtype)
        out = (attn @ v).transpose(1, 2).reshape(b, n, h * d)
        return self.to_out(out)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        self.proj_in = nn.Linear(dim, 2 * inner, bias=False)
        self.proj_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(a * F.silu(gate))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, ff_mult: int):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim, bias=False)
        self.attn = MultiQueryAttention(dim, heads, head_dim)
        self.ff_norm = nn.LayerNorm(dim, bias=False)
        self.ff = SwiGLU(dim, ff_mult)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.ff(self.ff_norm(x))


class _QueryTransformer(nn.Module):
    """Shared trunk: slot embeddings, blocks, final norm, projection of the query token."""

    arch = "transformer"
    block = "query-slots"

    def __init__(self, dim: int, depth: int, num_tokens: int, heads: int, head_dim: int, expansion: int):
        super().__init__()
        self.dim, self.depth, self.expansion = dim, depth, expansion
        self.heads, self.head_dim = heads, head_dim
        self.query = nn.Parameter(torch.randn(dim))
        self.slot_embed = nn.Parameter(torch.randn(num_tokens, dim) * 0.1)
        self.blocks = nn.ModuleList(Block(dim, heads, head_dim, expansion) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim, bias=False)
        self.project_out = nn.Linear(dim, dim, bias=False)

    def _run(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        query = self.query.to(tokens[0].dtype).expand(tokens[0].shape[0], -1)
        x = torch.stack([*tokens, query], dim=1) + self.slot_embed.to(tokens[0].dtype)
        for block in self.blocks:
            x = block(x)
        return self.project_out(self.norm_out(x[:, -1]))


class RegressionTransformer(_QueryTransformer):
    kind = "regression"

    def __init__(self, dim: int, depth: int = 8, expansion: int = 4, heads: int = 12, head_dim: int = 64):
        super().__init__(dim, depth, 2, heads, head_dim, expansion)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self._run([cond])


class DiffusionTransformer(_QueryTransformer):
    kind = "diffusion"

    def __init__(self, dim: int, depth: int = 12, expansion: int = 4, heads: int = 12, head_dim: int = 64,
                 num_timesteps: int = 1000):
        super().__init__(dim, depth, 4, heads, head_dim, expansion)
        self.num_timesteps = num_timesteps
        self.time_embed = nn.Embedding(num_timesteps, dim)
        # Learned stand-in for a dropped visual condition (classifier-free guidance), as in DALLE2.
        self.null_cond = nn.Parameter(torch.randn(dim) / dim**0.5)

    def forward(self, t: torch.Tensor, x_t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self._run([self.time_embed(t).to(x_t.dtype), x_t, cond])
