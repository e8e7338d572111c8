"""Audio files of a run (generated WAVs, report assets): one writer and one reader for every stage."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from v2a.core import storage


def write_wav(uri: str, wave: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM, written atomically (a killed write leaves no half file under the final name)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(wave, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    with storage.atomic_write(uri) as handle:
        handle.write(buf.getvalue())


def read_wave(uri: str) -> tuple[np.ndarray, int]:
    """(mono wave as the channel mean, sample rate) of an audio file at any fsspec location."""
    wave, sr = read_channels(uri)
    return wave.mean(axis=0), sr


def read_channels(uri: str) -> tuple[np.ndarray, int]:
    """((channels, samples) float32 as stored, sample rate): for readers whose reference keeps the channels."""
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        wave, sr = sf.read(handle, dtype="float32", always_2d=True)
    return np.ascontiguousarray(wave.T), sr
