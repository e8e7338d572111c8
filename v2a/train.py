"""Stage 3 glue: embeddings table → aggregated (CLIP, CLAP) pairs → a trained mapper checkpoint."""

from __future__ import annotations

import hashlib

import numpy as np

from v2a.aggregate import aggregate_frames
from v2a.embed import read_embeddings


def _frames(value) -> np.ndarray:
    return np.asarray([np.asarray(f, dtype=np.float32) for f in value], dtype=np.float32)


def load_pairs(embeddings_uri: str, aggregator: str = "mean", seed: int = 0, val_fraction: float = 0.1):
    """Training and validation pairs: split `val` where present, else a seeded hold-out of `train`.

    Returns (train_clip, train_clap, val_clip, val_clap, info) with float32 (N, D) arrays.
    """
    df = read_embeddings(embeddings_uri)
    df = df[df["audio_emb"].notna()]
    if df.empty:
        raise ValueError(f"{embeddings_uri}: no rows with an audio embedding to train on")
    train = df[df["split"] == "train"].sort_values("clip_id").reset_index(drop=True)
    val = df[df["split"] == "val"].sort_values("clip_id").reset_index(drop=True)
    if train.empty:
        raise ValueError(f"{embeddings_uri}: no rows in split 'train'")
    if val.empty:
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = max(1, int(round(len(train) * val_fraction))) if len(train) > 1 else 0
        val, train = train.iloc[order[:n_val]].reset_index(drop=True), train.iloc[order[n_val:]].reset_index(drop=True)

    def arrays(part):
        clip = np.stack([aggregate_frames(_frames(f), aggregator, cid, seed)
                         for f, cid in zip(part["image_frames"], part["clip_id"])]) if len(part) else None
        clap = np.stack([np.asarray(a, dtype=np.float32) for a in part["audio_emb"]]) if len(part) else None
        return clip, clap

    tc, ta = arrays(train)
    vc, va = arrays(val)
    ids = sorted(train["clip_id"]) + sorted(val["clip_id"])
    models = sorted(set(df["clip_model_id"]) | set(df["clap_model_id"]))
    fingerprint = hashlib.sha256("\n".join(ids + models + [aggregator]).encode()).hexdigest()[:16]
    info = {"aggregator": aggregator, "data_fingerprint": fingerprint, "n_train": len(train), "n_val": len(val),
            "clip_model_id": str(df["clip_model_id"].iloc[0]), "clap_model_id": str(df["clap_model_id"].iloc[0]),
            "embeddings": str(embeddings_uri)}
    return tc, ta, vc, va, info


def train_stage(embeddings_uri: str, out_dir: str, mapper: str = "diff-transformer", aggregator: str = "mean",
                options: dict | None = None, progress: bool = True) -> dict:
    from v2a.mapper.train import TrainConfig, train_mapper

    options = dict(options or {})
    config = TrainConfig(mapper=mapper, **options)
    tc, ta, vc, va, info = load_pairs(embeddings_uri, aggregator, seed=config.seed)
    metrics = train_mapper(tc, ta, vc, va, config, out_dir, metadata=info, progress=progress)
    return {**info, **metrics, "out_dir": str(out_dir)}
