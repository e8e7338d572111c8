"""Windowed-sinc resampling, the same numbers as ``torchaudio.transforms.Resample`` (its defaults).

AudioLDM loads audio with ``torchaudio.functional.resample`` and its CLAP resamples 16 → 48 kHz the
same way; this is that algorithm (Hann-windowed sinc, 6 zero crossings, roll-off 0.99, one
polyphase ``conv1d``) in plain torch, so the embedding stage needs no torchaudio build matching
the installed torch (tests/media/test_resample.py checks it against torchaudio where installed).
Kernels are cached per rate pair and shared by threads.
"""

from __future__ import annotations

import math
import threading

import torch

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


class SincResampler(torch.nn.Module):
    """(..., T) at ``orig`` Hz → (..., ceil(T * new / orig)) at ``new`` Hz."""

    def __init__(self, orig: int, new: int):
        super().__init__()
        if int(orig) != orig or int(new) != new or orig <= 0 or new <= 0:
            raise ValueError(f"sample rates must be positive integers, got {orig} and {new}")
        self.orig, self.new = int(orig), int(new)
        gcd = math.gcd(self.orig, self.new)
        self.stride, self.phases = self.orig // gcd, self.new // gcd
        kernel, self.width = _kernel(self.stride, self.phases)
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.orig == self.new:
            return waveform
        shape = waveform.shape
        wave = waveform.reshape(-1, shape[-1])
        length = wave.shape[-1]
        wave = torch.nn.functional.pad(wave, (self.width, self.width + self.stride))
        out = torch.nn.functional.conv1d(wave[:, None], self.kernel.to(wave.dtype), stride=self.stride)
        out = out.transpose(1, 2).reshape(wave.shape[0], -1)
        out = out[..., : math.ceil(self.phases * length / self.stride)]
        return out.reshape(*shape[:-1], out.shape[-1])


def _kernel(orig: int, new: int) -> tuple[torch.Tensor, int]:
    """torchaudio's ``_get_sinc_resample_kernel`` (sinc_interp_hann), for rates already divided by their gcd."""
    base = min(orig, new) * ROLLOFF  # anti-aliasing: cut just below the lower Nyquist frequency
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1)[:, None, None] / new + idx
    t *= base
    t = t.clamp_(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t *= math.pi
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * (base / orig)
    return kernels.to(torch.float32), width


_CACHE: dict[tuple[int, int], SincResampler] = {}
_LOCK = threading.Lock()


def resampler(orig: int, new: int) -> SincResampler:
    """The shared resampler for a rate pair (its kernel is computed once per process)."""
    key = (int(orig), int(new))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = SincResampler(*key)
        return _CACHE[key]


def resample(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    with torch.inference_mode():
        return resampler(orig, new)(waveform)
