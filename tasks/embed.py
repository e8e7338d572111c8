"""Prefect tasks over v2a.embed: plan shards, then one task per shard (tagged `gpu`)."""

from __future__ import annotations

from prefect import task

from storage_schemas import clips as clips_schema
from v2a import embed, tables
from v2a.model_cache import get_model, model_lock


def _settings(num_frames: int, max_seconds: float) -> dict:
    return {"num_frames": num_frames, "max_seconds": max_seconds, "audio_rate": 16000}


@task(name="plan-embed-shards")
def plan_embed_shards(clips_uri: str, out_uri: str, errors_uri: str, profile: str, shard_size: int,
                      num_frames: int, max_seconds: float, device: str) -> list[embed.ShardPlan]:
    clips = tables.read_table(clips_uri, clips_schema.SCHEMA, "clips")
    clip_model = get_model(profile, "clip", device)
    clap_model = get_model(profile, "clap", device)
    plans = embed.plan_shards(clips.column("clip_id").to_pylist(), out_uri, errors_uri, shard_size,
                              clip_model.model_id, clap_model.model_id, _settings(num_frames, max_seconds))
    embed.remove_stale_shards(out_uri, plans)
    return plans


@task(name="embed-shard", tags=["gpu"], retries=1)
def embed_shard(plan: embed.ShardPlan, clips_uri: str, profile: str, num_frames: int, max_seconds: float,
                batch_size: int, device: str) -> dict:
    clips = tables.read_table(clips_uri, clips_schema.SCHEMA, "clips").to_pylist()
    by_id = {c["clip_id"]: c for c in clips if c["clip_id"] in set(plan.clip_ids)}
    with model_lock(profile, "encoders", device):
        return embed.run_shard(plan, by_id, get_model(profile, "clip", device), get_model(profile, "clap", device),
                               num_frames, max_seconds, batch_size)
