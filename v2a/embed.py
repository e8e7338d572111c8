"""Stage 2: decode clips and cache per-frame CLIP and per-clip CLAP embeddings as Parquet shards.

A shard's file name carries a hash of everything that determines its rows (clip ids, model ids,
preprocessing settings), so a re-run skips finished shards and a changed setting re-embeds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from storage_schemas import embeddings as embeddings_schema
from storage_schemas import errors as errors_schema
from v2a import storage, tables
from v2a.media import MediaError, read_clip


@dataclass(frozen=True)
class ShardPlan:
    index: int
    key: str
    clip_ids: tuple[str, ...]
    uri: str
    errors_uri: str


def shard_key(clip_ids, clip_model_id: str, clap_model_id: str, settings: dict) -> str:
    payload = json.dumps({"ids": list(clip_ids), "clip": clip_model_id, "clap": clap_model_id,
                          "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan_shards(clip_ids, out_uri: str, errors_uri: str, shard_size: int, clip_model_id: str,
                clap_model_id: str, settings: dict) -> list[ShardPlan]:
    ids = list(clip_ids)
    plans = []
    for index, start in enumerate(range(0, len(ids), shard_size)):
        chunk = tuple(ids[start:start + shard_size])
        key = shard_key(chunk, clip_model_id, clap_model_id, settings)
        plans.append(ShardPlan(index, key, chunk, storage.join(out_uri, f"shard-{index:05d}-{key}.parquet"),
                               storage.join(errors_uri, f"embed-{index:05d}-{key}.parquet")))
    return plans


def remove_stale_shards(out_uri: str, plans: list[ShardPlan]) -> list[str]:
    """Shards left by an earlier configuration would mix two model spaces in one table: drop them."""
    keep = {p.uri.rsplit("/", 1)[-1] for p in plans}
    removed = []
    for uri in storage.list_files(out_uri, ".parquet"):
        name = uri.rsplit("/", 1)[-1]
        if name.startswith("shard-") and name not in keep:
            fs, path = storage.filesystem(uri)
            fs.rm(path)
            removed.append(uri)
    return removed


def embed_clips(clips: list[dict], clip_encoder, clap_encoder, num_frames: int = 10, max_seconds: float = 10.0,
                batch_size: int = 64, progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Embed a list of clip rows; return (embedding rows, error rows). Bad media never raises."""
    decoded, errors = [], []
    for clip in tqdm(clips, desc="decode", disable=not progress, leave=False):
        try:
            d = read_clip(clip["uri"], num_frames=num_frames, sample_rate=clap_encoder.sample_rate,
                          max_seconds=max_seconds)
        except MediaError as err:
            errors.append({"clip_id": clip["clip_id"], "stage": "embed", "uri": clip["uri"], "reason": str(err)})
            continue
        except Exception as err:  # a decoder bug must not stop the other clips
            errors.append({"clip_id": clip["clip_id"], "stage": "embed", "uri": clip["uri"],
                           "reason": f"could not decode: {type(err).__name__}: {err}"})
            continue
        decoded.append((clip, d))

    # CLIP runs on frames batched across clips; frames of one size are stacked together.
    frame_embs: list[np.ndarray | None] = [None] * len(decoded)
    by_shape: dict[tuple, list[int]] = {}
    for i, (_, d) in enumerate(decoded):
        by_shape.setdefault(d.frames.shape[1:], []).append(i)
    for idxs in by_shape.values():
        stacked = np.concatenate([decoded[i][1].frames for i in idxs])
        embs = clip_encoder.encode_images(stacked, batch_size=batch_size)
        offset = 0
        for i in idxs:
            n = decoded[i][1].frames.shape[0]
            frame_embs[i] = embs[offset:offset + n]
            offset += n

    with_audio = [i for i, (_, d) in enumerate(decoded) if d.audio is not None and d.audio.size > 0]
    audio_embs: dict[int, np.ndarray] = {}
    for start in range(0, len(with_audio), batch_size):
        idxs = with_audio[start:start + batch_size]
        embs = clap_encoder.encode_audio([decoded[i][1].audio for i in idxs], decoded[idxs[0]][1].sample_rate)
        audio_embs.update(zip(idxs, embs))

    rows = []
    for i, (clip, d) in enumerate(decoded):
        audio = audio_embs.get(i)
        rows.append({
            "clip_id": clip["clip_id"], "split": clip["split"], "label": clip.get("label"), "kind": clip["kind"],
            "image_frames": [f.astype(np.float32).tolist() for f in frame_embs[i]],
            "frame_times": d.frame_times.astype(np.float32).tolist(),
            "audio_emb": audio.astype(np.float32).tolist() if audio is not None else None,
            "clip_model_id": clip_encoder.model_id, "clap_model_id": clap_encoder.model_id,
        })
    return rows, errors


def run_shard(plan: ShardPlan, clips_by_id: dict[str, dict], clip_encoder, clap_encoder, num_frames: int,
              max_seconds: float, batch_size: int, progress: bool = False) -> dict:
    """Embed one shard unless its output already exists. Errors are written before the shard,
    so a shard file on disk always means its errors are recorded too."""
    if storage.exists(plan.uri):
        return {"shard": plan.index, "skipped": True, "rows": None, "errors": None}
    rows, errors = embed_clips([clips_by_id[c] for c in plan.clip_ids], clip_encoder, clap_encoder,
                               num_frames, max_seconds, batch_size, progress)
    if errors:
        tables.write_table(errors, plan.errors_uri, errors_schema.SCHEMA, "errors")
    tables.write_table(rows, plan.uri, embeddings_schema.SCHEMA, "embeddings")
    return {"shard": plan.index, "skipped": False, "rows": len(rows), "errors": len(errors)}


def read_embeddings(uri: str, split: str | None = None):
    """The embeddings table (one file or a folder of shards) as a pandas DataFrame."""
    if not storage.list_files(uri, ".parquet"):
        raise FileNotFoundError(f"no embeddings table at {uri} (a Parquet file or a folder of shards)")
    table = tables.read_table(uri, embeddings_schema.SCHEMA, "embeddings")
    df = table.to_pandas()
    if split is not None:
        df = df[df["split"] == split].reset_index(drop=True)
    return df
