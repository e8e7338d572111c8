"""Aggregated (CLIP, CLAP) pairs as contiguous float32 arrays, streamed from the embeddings table.

Each shard is read, aggregated and copied into preallocated arrays, so the peak is the arrays plus
one shard; the row count comes from the footers. Splits come from the clips table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from v2a.core import storage
from v2a.core.aggregate import aggregate_block
from v2a.io import embeddings as embeddings_io
from v2a.io import parquet


@dataclass
class Pairs:
    clip_ids: list[str]
    clip: np.ndarray            # (N, D) aggregated, L2-normalised CLIP vectors
    clap: np.ndarray            # (N, D) CLAP audio embeddings (zeros where has_audio is False)
    has_audio: np.ndarray       # (N,) bool
    splits: np.ndarray          # (N,) object: the clip's split in the clips table
    model_ids: set[str] = field(default_factory=set)
    clip_model_id: str | None = None
    clap_model_id: str | None = None


def _split_lookup(embeddings_uri: str, clips_uri: str | None):
    import pandas as pd

    from v2a.io import clips as clips_io

    clips = clips_uri or embeddings_io.sibling_clips(embeddings_uri)
    if storage.exists(clips):
        table = clips_io.read_clips(clips, columns=["clip_id", "split"])
    else:
        table = None
    if table is None:
        legacy = embeddings_io.splits_of(embeddings_uri, None, clips_uri)  # warns, or says what is missing
        return pd.Index(list(legacy)), np.asarray(list(legacy.values()), dtype=object)
    return (pd.Index(table.column("clip_id").to_numpy(zero_copy_only=False)),
            table.column("split").to_numpy(zero_copy_only=False).astype(object))


def load_pairs(embeddings_uri: str, aggregator: str = "mean", seed: int = 0, split: str | None = None,
               audio_only: bool = False, clips_uri: str | None = None, progress: bool = False) -> Pairs:
    """Every clip of the table (or of `split`; with `audio_only`, only clips with an audio embedding)."""
    from tqdm.auto import tqdm

    total, files = parquet.count_rows(embeddings_uri)
    if not files:
        raise FileNotFoundError(f"no embeddings table at {embeddings_uri} (a Parquet file or a folder of shards)")
    index, split_values = _split_lookup(embeddings_uri, clips_uri)
    clip = clap = None
    has_audio = np.zeros(total, bool)
    splits = np.empty(total, dtype=object)
    ids: list[str] = []
    clip_models, clap_models = set(), set()
    n = 0
    bar = tqdm(total=total, desc="read embeddings", unit="clip", disable=not progress, leave=False)
    for block in embeddings_io.iter_blocks(embeddings_uri, with_audio=True):
        bar.update(len(block))
        pos = index.get_indexer(block.clip_ids)
        block_splits = np.where(pos >= 0, split_values[np.maximum(pos, 0)], None)
        keep = np.ones(len(block), bool)
        if split is not None:
            keep &= block_splits == split
        if audio_only:
            keep &= block.has_audio
        if not keep.any():
            continue
        if keep.all():
            vec = aggregate_block(block.frames, block.offsets, aggregator, block.clip_ids, seed)
        else:
            sub = block.take(np.flatnonzero(keep))
            vec = aggregate_block(sub.frames, sub.offsets, aggregator, sub.clip_ids, seed)
        if clip is None:
            clip = np.empty((total, vec.shape[1]), np.float32)
            clap = np.zeros((total, vec.shape[1]), np.float32)
        k = len(vec)
        rows = slice(None) if keep.all() else np.flatnonzero(keep)  # a view, not a copy, for whole shards
        clip[n:n + k] = vec
        if block.audio.shape[1]:
            clap[n:n + k] = block.audio[rows]
        has_audio[n:n + k] = block.has_audio[rows]
        splits[n:n + k] = block_splits[rows]
        if isinstance(rows, slice):
            ids.extend(block.clip_ids)
            clip_models.update(block.clip_model_ids)
            clap_models.update(block.clap_model_ids)
        else:
            ids.extend(block.clip_ids[i] for i in rows)
            clip_models.update(block.clip_model_ids[i] for i in rows)
            clap_models.update(block.clap_model_ids[i] for i in rows)
        n += k
    bar.close()
    if clip is None:
        clip, clap = np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    pairs = Pairs(ids, clip[:n], clap[:n], has_audio[:n], splits[:n], clip_models | clap_models,
                  min(clip_models) if clip_models else None, min(clap_models) if clap_models else None)
    return _sorted(pairs)


def _sorted(p: Pairs) -> Pairs:
    """Rows in clip-id order (the current layout already is; tables of the earlier layout may not be)."""
    ids = p.clip_ids
    if all(a <= b for a, b in zip(ids, ids[1:])):
        return p
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    return Pairs([ids[i] for i in order], p.clip[order], p.clap[order], p.has_audio[order], p.splits[order],
                 p.model_ids, p.clip_model_id, p.clap_model_id)


def compact(arr: np.ndarray, keep: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """arr[keep] written over arr's own memory (rows move only towards the front), as a view."""
    dst = 0
    for start in range(0, len(arr), chunk):
        rows = arr[start:start + chunk][keep[start:start + chunk]]
        arr[dst:dst + len(rows)] = rows
        dst += len(rows)
    return arr[:dst]
