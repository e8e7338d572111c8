"""The Transformer mapper as DALLE2-pytorch's diffusion prior builds it (the default block).

lucidrains/DALLE2-pytorch ``dalle2_pytorch.py``: ``DiffusionPriorNetwork`` over a ``CausalTransformer``.
Built here in our own code with the same module tree, so state dicts load into one another in both
directions (tests/peers/test_dalle2_prior.py checks outputs on identical weights). Per layer:

- attention: pre-LayerNorm (gain only), 12 query heads of 64 and one shared key/value head,
  rotary embeddings on the first ``min(32, head_dim)`` features of queries and keys, a learned
  null key/value prepended to the keys, cosine-similarity attention with scale 16, a T5-style
  relative position bias, a causal mask, output projection followed by a LayerNorm;
- feed-forward: LayerNorm, SwiGLU (dim -> 2 * 4 * dim -> dim, no biases), with a LayerNorm after
  the activation (``normformer``);
then a "stable" LayerNorm (divided by its max first) and a final projection. The prediction is the
output at a learned query token.

Tokens (diffusion): [null text encodings (``text_len``, 77), visual condition, time embedding, noisy audio x_t,
query]. DALLE2 always fills its text-encoding slots with learned null tokens when, as here, no
text encodings are given; a dropped condition is replaced by ``null_text_embeds`` and a dropped x_t
by ``null_image_embed`` (DALLE2's ``text_cond_drop_prob`` / ``image_cond_drop_prob``), so the
unconditional prediction of guidance does not depend on x_t. The objective does the replacing
(``null_cond`` / ``null_x``, v2a.mapper.diffusion).

Regression: DALLE2 has no regressor; ours is the same network without the time token, its x_t
slot holding the learned null image embedding. With DALLE2-pytorch's example prior configuration
(``configs/train_prior_config.example.json``: ``max_text_len`` 77, ``normformer`` true, dropout
0.05) at width 512, 12 heads of 64, the trainable parameters are 48.833 M (diffusion, depth 12) and
48.321 M (regression), the paper's 48.83 / 48.32; depths 3 / 6 / 8 give 12.82 / 24.82 / 32.83 and
12.31 / 24.31 / 32.32 (paper 32.31). That match is the evidence the paper used this network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BLOCK = "dalle2-prior"
# DALLE2-pytorch's example prior configuration, the one whose parameter counts the paper reports.
MAX_TEXT_LEN = 77
NORMFORMER = True
DROPOUT = 0.05
COSINE_SIM_SCALE = 16


class PriorLayerNorm(nn.Module):
    """DALLE2's LayerNorm: gain only, eps 1e-5 in float32 and 1e-3 otherwise; ``stable`` divides by
    the (detached) max first."""

    def __init__(self, dim: int, stable: bool = False):
        super().__init__()
        self.stable = stable
        self.g = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        if self.stable:
            x = x / x.amax(dim=-1, keepdim=True).detach()
        var = torch.var(x, dim=-1, unbiased=False, keepdim=True)
        mean = torch.mean(x, dim=-1, keepdim=True)
        return (x - mean) * (var + eps).rsqrt() * self.g


class RelPosBias(nn.Module):
    """T5 relative position buckets (32 buckets, max distance 128), one bias per head."""

    def __init__(self, heads: int, num_buckets: int = 32, max_distance: int = 128):
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def _bucket(self, relative_position: torch.Tensor) -> torch.Tensor:
        n = (-relative_position).clamp(min=0)
        max_exact = self.num_buckets // 2
        is_small = n < max_exact
        large = max_exact + (torch.log(n.float().clamp(min=1) / max_exact) / math.log(self.max_distance / max_exact)
                             * (self.num_buckets - max_exact)).long()
        large = large.clamp(max=self.num_buckets - 1)
        return torch.where(is_small, n, large)

    def forward(self, i: int, j: int, device) -> torch.Tensor:
        q_pos = torch.arange(i, dtype=torch.long, device=device)
        k_pos = torch.arange(j, dtype=torch.long, device=device)
        bucket = self._bucket(k_pos[None, :] - q_pos[:, None])
        return self.relative_attention_bias(bucket).permute(2, 0, 1)  # (heads, i, j)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding on the first ``dim`` features, adjacent pairs rotated together
    (rotary-embedding-torch's layout). ``freqs`` is a fixed buffer under the same key as there."""

    def __init__(self, dim: int, theta: float = 10000.0):
        super().__init__()
        self.dim = dim
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.register_buffer("freqs", freqs)

    def rotate(self, t: torch.Tensor) -> torch.Tensor:
        """Rotate (..., n, d) by position along the second-to-last axis."""
        n = t.shape[-2]
        pos = torch.arange(n, device=t.device, dtype=self.freqs.dtype)
        angles = (pos[:, None] * self.freqs[None, :]).repeat_interleave(2, dim=-1)  # (n, dim)
        head, tail = t[..., : self.dim], t[..., self.dim:]
        pairs = head.unflatten(-1, (-1, 2))
        rotated_half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        head = head * angles.cos() + rotated_half * angles.sin()
        return torch.cat((head, tail), dim=-1).type(t.dtype)


class PriorAttention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, rotary: RotaryEmbedding, dropout: float = DROPOUT):
        super().__init__()
        self.heads = heads
        self.norm = PriorLayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.null_kv = nn.Parameter(torch.randn(2, head_dim))
        self.to_q = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * head_dim, bias=False)
        self.rotary_emb = rotary  # one module shared by every layer, as in DALLE2
        self.to_out = nn.Sequential(nn.Linear(heads * head_dim, dim, bias=False), PriorLayerNorm(dim))

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        q = self.to_q(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (b, h, n, d)
        k, v = self.to_kv(x).chunk(2, dim=-1)  # (b, n, d) each, shared by the heads
        q, k = self.rotary_emb.rotate(q), self.rotary_emb.rotate(k)
        null_k, null_v = (t.expand(b, 1, -1).to(k.dtype) for t in self.null_kv[:, None, :].unbind(0))
        k, v = torch.cat((null_k, k), dim=1), torch.cat((null_v, v), dim=1)
        sim = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1)[:, None].transpose(-1, -2)) * COSINE_SIM_SCALE
        sim = sim + attn_bias
        i, j = sim.shape[-2:]
        causal = torch.ones((i, j), dtype=torch.bool, device=x.device).triu(j - i + 1)
        sim = sim.masked_fill(causal, -torch.finfo(sim.dtype).max)
        attn = self.dropout(sim.softmax(dim=-1, dtype=torch.float32).type(sim.dtype))
        out = (attn @ v[:, None]).transpose(1, 2).flatten(2)
        return self.to_out(out)


class _SwiGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return x * F.silu(gate)


def _feed_forward(dim: int, mult: int, dropout: float = DROPOUT, normformer: bool = NORMFORMER) -> nn.Sequential:
    inner = int(mult * dim)
    return nn.Sequential(PriorLayerNorm(dim), nn.Linear(dim, 2 * inner, bias=False), _SwiGLU(),
                         PriorLayerNorm(inner) if normformer else nn.Identity(), nn.Dropout(dropout),
                         nn.Linear(inner, dim, bias=False))


class CausalTransformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, ff_mult: int):
        super().__init__()
        self.init_norm = nn.Identity()
        self.rel_pos_bias = RelPosBias(heads)
        rotary = RotaryEmbedding(min(32, head_dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PriorAttention(dim, heads, head_dim, rotary), _feed_forward(dim, ff_mult)])
            for _ in range(depth))
        self.norm = PriorLayerNorm(dim, stable=True)
        self.project_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        x = self.init_norm(x)
        bias = self.rel_pos_bias(n, n + 1, x.device)
        for attn, ff in self.layers:
            x = attn(x, attn_bias=bias) + x
            x = ff(x) + x
        return self.project_out(self.norm(x))


class _PriorNetwork(nn.Module):
    """Parameters in DiffusionPriorNetwork's names; subclasses choose the tokens."""

    arch = "transformer"
    block = BLOCK

    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, expansion: int, text_len: int):
        super().__init__()
        self.dim, self.depth, self.expansion, self.heads, self.head_dim = dim, depth, expansion, heads, head_dim
        self.text_len = text_len
        self.learned_query = nn.Parameter(torch.randn(dim))
        self.causal_transformer = CausalTransformer(dim, depth, heads, head_dim, expansion)
        # DALLE2's max_text_len: as many learned null text-encoding tokens lead every sequence
        self.null_text_encodings = nn.Parameter(torch.randn(1, text_len, dim))
        self.null_text_embeds = nn.Parameter(torch.randn(1, 1, dim))
        self.null_image_embed = nn.Parameter(torch.randn(1, dim))

    @property
    def null_cond(self) -> torch.Tensor:
        """Stands in for a dropped visual condition (DALLE2's null text embedding)."""
        return self.null_text_embeds.view(self.dim)

    @property
    def null_x(self) -> torch.Tensor:
        """Stands in for a dropped noisy embedding (DALLE2's null image embedding)."""
        return self.null_image_embed.view(self.dim)

    def _run(self, middle: list[torch.Tensor]) -> torch.Tensor:
        b, dtype = middle[0].shape[0], middle[0].dtype
        tokens = torch.cat([self.null_text_encodings.to(dtype).expand(b, -1, -1),
                            *(t[:, None, :] for t in middle),
                            self.learned_query.to(dtype).expand(b, 1, -1)], dim=1)
        return self.causal_transformer(tokens)[:, -1]


class DiffusionPriorTransformer(_PriorNetwork):
    """(t, x_t, visual condition) -> predicted clean audio embedding x0; DiffusionPriorNetwork's layout."""

    kind = "diffusion"

    def __init__(self, dim: int, depth: int = 12, expansion: int = 4, heads: int = 12, head_dim: int = 64,
                 num_timesteps: int = 1000, text_len: int = MAX_TEXT_LEN):
        super().__init__(dim, depth, heads, head_dim, expansion, text_len)
        self.num_timesteps = num_timesteps
        self.to_time_embeds = nn.Sequential(nn.Embedding(num_timesteps, dim))

    def forward(self, t: torch.Tensor, x_t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self._run([cond, self.to_time_embeds(t).to(x_t.dtype), x_t])


class RegressionPriorTransformer(_PriorNetwork):
    """Visual condition -> audio embedding: the prior network without its time token (module docstring)."""

    kind = "regression"

    def __init__(self, dim: int, depth: int = 8, expansion: int = 4, heads: int = 12, head_dim: int = 64,
                 text_len: int = MAX_TEXT_LEN):
        super().__init__(dim, depth, heads, head_dim, expansion, text_len)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self._run([cond, self.null_x.to(cond.dtype).expand_as(cond)])
