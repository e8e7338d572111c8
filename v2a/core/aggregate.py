"""Aggregators sigma that turn per-frame CLIP embeddings into one clip vector (paper Table 5).

They run on the stored per-frame embeddings, so an aggregator ablation needs no re-encoding.
"""

from __future__ import annotations

import hashlib

import numpy as np

AGGREGATORS = ("mean", "middle", "random")


def _clip_seed(clip_id: str, seed: int) -> int:
    # The 'random' frame must be the same for a clip whatever order or batch it is read in.
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def frames_array(frames) -> np.ndarray:
    """Per-frame embeddings as stored in Parquet (a list of lists, or an array of arrays) → (F, D) float32."""
    return np.asarray([np.asarray(f, dtype=np.float32) for f in frames], dtype=np.float32)


def aggregate_frames(frames: np.ndarray, how: str = "mean", clip_id: str = "", seed: int = 0) -> np.ndarray:
    """Reduce an (F, D) array of frame embeddings to one L2-normalised (D,) vector."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[0] == 0:
        raise ValueError(f"expected a non-empty (frames, dim) array, got shape {frames.shape}")
    if how == "mean":
        vec = frames.mean(axis=0)
    elif how == "middle":
        vec = frames[(frames.shape[0] - 1) // 2]
    elif how == "random":
        vec = frames[np.random.default_rng(_clip_seed(clip_id, seed)).integers(frames.shape[0])]
    else:
        raise ValueError(f"unknown aggregator {how!r}; accepted: {', '.join(AGGREGATORS)}")
    norm = float(np.linalg.norm(vec))
    return (vec / norm if norm > 0 else vec).astype(np.float32)


def aggregate_many(frame_lists, how: str = "mean", clip_ids=None, seed: int = 0) -> np.ndarray:
    """Aggregate a sequence of per-clip frame arrays into an (N, D) matrix."""
    clip_ids = list(clip_ids) if clip_ids is not None else [""] * len(frame_lists)
    rows = [aggregate_frames(frames_array(f), how, cid, seed) for f, cid in zip(frame_lists, clip_ids)]
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def aggregate_block(frames: np.ndarray, offsets: np.ndarray, how: str = "mean", clip_ids=None,
                    seed: int = 0) -> np.ndarray:
    """Aggregate many clips at once: clip i's frames are frames[offsets[i]:offsets[i+1]] → (N, D) float32.

    Gives what aggregate_frames gives clip by clip (to float32 rounding), without a Python loop for
    mean and middle."""
    frames = np.asarray(frames, dtype=np.float32)
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    n = len(counts)
    if n == 0:
        return np.zeros((0, frames.shape[1] if frames.ndim == 2 else 0), np.float32)
    if (counts <= 0).any():
        raise ValueError("every clip needs at least one frame embedding")
    if how == "mean" and (counts == counts[0]).all():  # the usual case: every clip has num_frames frames
        vec = frames[offsets[0]:offsets[-1]].reshape(n, int(counts[0]), -1).mean(axis=1)
    elif how == "mean":
        vec = np.add.reduceat(frames, offsets[:-1], axis=0) / counts[:, None]
    elif how == "middle":
        vec = frames[offsets[:-1] + (counts - 1) // 2]
    elif how == "random":
        ids = list(clip_ids) if clip_ids is not None else [""] * n
        picks = [np.random.default_rng(_clip_seed(cid, seed)).integers(c) for cid, c in zip(ids, counts)]
        vec = frames[offsets[:-1] + np.asarray(picks, dtype=np.int64)]
    else:
        raise ValueError(f"unknown aggregator {how!r}; accepted: {', '.join(AGGREGATORS)}")
    vec = np.asarray(vec, dtype=np.float32)
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    return np.divide(vec, norms, out=vec.copy(), where=norms > 0).astype(np.float32, copy=False)
