"""The files a report page links to: mel spectrograms, poster frames, audio copies, and per-clip CLIP-Scores."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from v2a.core import storage

POSTER_SIZE = (320, 240)


def safe_name(text: str) -> str:
    """A file name that is the same on every OS and needs no escaping in a URL."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "x"


def mel_db(wave: np.ndarray, sample_rate: int, n_mels: int = 64) -> np.ndarray:
    """(n_mels, frames) log-mel power in dB, the top 80 dB of the clip (a silent clip gives a flat image)."""
    import torch
    import torchaudio

    wave = np.asarray(wave, dtype=np.float32)
    if wave.size < 1024:
        wave = np.pad(wave, (0, 1024 - wave.size))
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=1024, hop_length=max(1, sample_rate // 100),
                                               n_mels=n_mels, f_max=sample_rate / 2)
    with torch.no_grad():
        power = mel(torch.from_numpy(wave)).numpy()
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    return np.maximum(db, db.max() - 80.0)


def write_mel_png(wave: np.ndarray, sample_rate: int, path: Path) -> None:
    # Figure + Agg directly, not pyplot: no global state, safe inside worker threads.
    from matplotlib.figure import Figure

    db = mel_db(wave, sample_rate)
    seconds = len(wave) / sample_rate
    fig = Figure(figsize=(3.2, 1.4), dpi=100)
    ax = fig.add_subplot()
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, db.shape[0]),
              interpolation="nearest")
    ax.set_xlabel("time (s)", fontsize=7, labelpad=1)
    ax.set_ylabel("mel band", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=6, length=2, pad=1)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")


def write_poster_png(frame: np.ndarray, path: Path) -> None:
    from PIL import Image

    img = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    img.thumbnail(POSTER_SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", optimize=True)


def copy_file(uri: str, dest: Path) -> None:
    fs, path = storage.filesystem(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with fs.open(path, "rb") as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)


def clip_scores(extractor, waves: list[np.ndarray], sample_rate: int, clip_seconds: float,
                frames: list[np.ndarray]) -> list[float]:
    """CS of each (audio, frames) pair, scored exactly as the run's CS metric is, so they average to it."""
    from v2a.metrics import audio
    from v2a.metrics.scores import clip_score

    if not waves:
        return []
    batch = [audio.prepare(w, sample_rate, extractor.sample_rate, clip_seconds) for w in waves]
    emb = np.asarray(extractor.embed(batch))
    return [clip_score(emb[i:i + 1], [frames[i]]) for i in range(len(waves))]


def write_wave_file(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    from v2a.io.audio import write_wav

    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(str(path), wave, sample_rate)
