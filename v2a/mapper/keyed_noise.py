"""Gaussian noise that is a pure function of (seed, row, sample, step), on any device.

A sampler drawing from one generator per batch gives results that depend on how rows were
batched. Hashing a counter instead makes each row's noise its own, so mapping a test set in
batches of 64 or 1024 gives the same embeddings, at no cost on the GPU (a few integer ops per
element, no per-row generator objects).
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    # (x * c) mod 2**32 in int64 without overflow: split x into 16-bit halves so every
    # partial product stays below 2**49.
    lo = x & 0xFFFF
    hi = x >> 16
    return (lo * c + (((hi * c) & 0xFFFF) << 16)) & _MASK32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    # "lowbias32" integer finaliser (C. Wellons): good avalanche for consecutive counters.
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _fold(key: torch.Tensor, value) -> torch.Tensor:
    return _hash32(key ^ (value & _MASK32 if isinstance(value, torch.Tensor) else int(value) & _MASK32))


def keyed_normal(seed: int, rows: torch.Tensor, samples: torch.Tensor, step: int, dim: int) -> torch.Tensor:
    """Standard normal (len(rows), dim) float32 noise; row i depends only on (seed, rows[i], samples[i], step)."""
    device = rows.device
    rows = rows.to(torch.int64)
    samples = samples.to(device=device, dtype=torch.int64)
    key = torch.full_like(rows, _hash32(torch.tensor(seed & _MASK32)).item())
    key = _fold(key, seed >> 32)
    key = _fold(key, rows)
    key = _fold(key, rows >> 32)
    key = _fold(key, samples)
    key = _fold(key, step)
    counter = torch.arange(2 * dim, device=device, dtype=torch.int64)
    bits = _hash32(key[:, None] ^ _hash32(counter + 0x9E3779B9)[None, :])
    # 24 high bits -> uniform in (0, 1), exactly representable in float32.
    u = ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))
    u1, u2 = u[:, :dim], u[:, dim:]
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
