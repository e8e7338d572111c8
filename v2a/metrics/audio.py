"""The one place where evaluation audio changes rate or length.

Every extractor receives mono float32 audio at its own sample rate, cut or padded to the
protocol's clip length, so a metric row can state exactly what was measured.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from v2a.media.resample import resample as shared_resample


def to_mono(wave: np.ndarray) -> np.ndarray:
    """Average the channels of a 1-D or 2-D waveform.

    A 2-D array is read as (channels, samples) when its first axis is the shorter one and as
    (samples, channels) otherwise (soundfile's layout), because a clip always has more samples
    than channels.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        return wave
    if wave.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D waveform, got shape {wave.shape}")
    axis = 0 if wave.shape[0] <= wave.shape[1] else 1
    return wave.mean(axis=axis).astype(np.float32)


def channel_rule_mono(wave: np.ndarray, rule: str = "mean") -> np.ndarray:
    """One mono waveform from a (channels, samples) or 1-D array under a protocol's channel rule.

    mean: channels averaged (v2a); channel0-minus-mean: channel 0 with its mean removed (audioldm_eval
    0.0.3 `datasets/load_mel.py`); av-benchmark: channels averaged, then the mean removed
    (av-benchmark `AudioDataset.read_from_file`). See `v2a.metrics.protocols`."""
    from v2a.metrics.protocols import CHANNEL_RULES

    if rule not in CHANNEL_RULES:
        raise ValueError(f"unknown channel rule {rule!r}; accepted: {', '.join(CHANNEL_RULES)}")
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        wave = wave[None, :]
    if wave.ndim != 2:
        raise ValueError(f"expected a (channels, samples) waveform, got shape {wave.shape}")
    mono = wave[0] if rule == "channel0-minus-mean" else wave.mean(axis=0)
    if rule != "mean":
        mono = mono - mono.mean()
    return np.ascontiguousarray(mono, dtype=np.float32)


def resample(wave: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited (sinc) resampling with torchaudio's default filter (through `v2a.media.resample`, the
    decoders' resampler too); a no-op when the rates match."""
    wave = np.asarray(wave, dtype=np.float32)
    sr_from, sr_to = int(sr_from), int(sr_to)
    if sr_from <= 0 or sr_to <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_from} -> {sr_to}")
    if sr_from == sr_to:
        return wave
    out = shared_resample(torch.from_numpy(np.ascontiguousarray(wave)), sr_from, sr_to)
    return out.numpy().astype(np.float32, copy=False)


def fit_length(wave: np.ndarray, num_samples: int) -> np.ndarray:
    """Keep the first `num_samples` samples, zero-padding at the end when the clip is shorter.

    Zero padding (not repetition) keeps a short generated clip from being scored on content it
    does not have; the reference protocols crop their 10 s clips the same way.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    if wave.shape[-1] >= num_samples:
        return wave[..., :num_samples]
    pad = [(0, 0)] * (wave.ndim - 1) + [(0, num_samples - wave.shape[-1])]
    return np.pad(wave, pad)


def prepare(wave: np.ndarray, sr_from: int, sr_to: int, clip_seconds: float | None, pad: bool = True) -> np.ndarray:
    """Mono, resampled to `sr_to`, and fitted to `clip_seconds` (left as is when None).

    pad=False only cuts (av-benchmark keeps the first `audio_length` seconds and pads nothing)."""
    out = resample(to_mono(wave), sr_from, sr_to)
    if clip_seconds is not None:
        n = int(round(clip_seconds * sr_to))
        out = fit_length(out, n) if pad else out[:n]
    return np.ascontiguousarray(out, dtype=np.float32)


def prepare_many(waves: Iterable[np.ndarray], sr_from: int, sr_to: int,
                 clip_seconds: float | None) -> list[np.ndarray]:
    return [prepare(w, sr_from, sr_to, clip_seconds) for w in waves]
