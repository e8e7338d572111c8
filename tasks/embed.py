"""Prefect tasks over v2a.stages.embed: plan shards, then one task per shard (a `gpu` slot while encoding on CUDA)."""

from __future__ import annotations

import dataclasses
import sys

from prefect import task

from tasks.caching import stage_cache
from v2a.stages import embed
from v2a.core import storage
from v2a.io import clips as clips_io
from v2a.core.fingerprint import fingerprints
from tasks.operations import RESULTS, RETRIES, model_slot
from tasks.progress import reporter
from v2a.runtime import trace
from v2a.runtime.model_cache import get_model, model_lock
from v2a.core import devices
from v2a.core.rates import DECODE_SAMPLE_RATE


def shard_settings(num_frames: int, max_seconds: float, frame_rate: float | None = None) -> dict:
    # The decoder is left out: every backend gives the same frames and audio (tests/media/test_decoders.py).
    settings = {"num_frames": num_frames, "max_seconds": max_seconds, "audio_rate": DECODE_SAMPLE_RATE}
    if frame_rate is not None:  # only when set, so the keys of shards embedded by frame count stay as they were
        settings["frame_rate"] = frame_rate
    return settings


# Planning builds both encoders for their model ids: cached, an unchanged re-run loads no model.
# Plans travel as plain mappings: the task results are JSON (tasks/operations.py).
def plan_from(plan: dict | embed.ShardPlan) -> embed.ShardPlan:
    if isinstance(plan, embed.ShardPlan):
        return plan
    return embed.ShardPlan(**{**plan, "clip_ids": tuple(plan["clip_ids"])})


def plan_dict(plan: embed.ShardPlan) -> dict:
    return {**dataclasses.asdict(plan), "clip_ids": list(plan.clip_ids)}


@task(name="plan-embed-shards", cache_policy=stage_cache(reads=("clips_uri",), profile="profile"), **RETRIES, **RESULTS)
def plan_embed_shards(clips_uri: str, out_uri: str, errors_uri: str, profile: str, shard_size: int,
                      num_frames: int, max_seconds: float, device: str,
                      frame_rate: float | None = None) -> list[dict]:
    clips = clips_io.read_clips(clips_uri, columns=["clip_id"])
    with model_slot(device):
        clip_model = get_model(profile, "clip", device)
        clap_model = get_model(profile, "clap", device)
    plans = embed.plan_shards(clips.column("clip_id").to_pylist(), out_uri, errors_uri, shard_size,
                              clip_model.model_id, clap_model.model_id,
                              shard_settings(num_frames, max_seconds, frame_rate))
    return [plan_dict(p) for p in plans]


# Not cached, nothing persisted: another configuration may have written shards since this plan was made.
@task(name="remove-stale-shards", persist_result=False, **RETRIES)
def remove_stale_shards(out_uri: str, plans: list[dict]) -> list[str]:
    return embed.remove_stale_shards(out_uri, [plan_from(p) for p in plans])


# A task runs a few shards one after the other: a shard is the unit of storage and resumption, a task
# the unit of scheduling, whose fixed cost (~0.1 s in Prefect) would otherwise be paid ~800 times for
# VGGSound. Each plan carries its shard's clip ids and a key of the model ids and settings.
@task(name="embed-shards", task_run_name="embed-shards-{plans[0][index]}", cache_policy=stage_cache(profile="profile"),
      **RETRIES, **RESULTS)
def embed_shards(plans: list[dict], clips_uri: str, profile: str, num_frames: int, max_seconds: float,
                 batch_size: int, device: str, frame_rate: float | None = None, decoder: str = "auto",
                 workers: int = 0, pool: str = "auto") -> dict:
    with trace.span("embed", plans[0]["index"]):
        return _embed_shards([plan_from(p) for p in plans], clips_uri, profile, num_frames, max_seconds, batch_size,
                             device, frame_rate, decoder, workers, pool)


def _embed_shards(plans, clips_uri, profile, num_frames, max_seconds, batch_size, device, frame_rate, decoder,
                  workers, pool) -> dict:
    report = reporter(plans[0].index)  # the flow's progress artifact counts this task's shards and clips
    summaries = []
    for plan in plans:
        if storage.exists(plan.uri):  # done by an earlier run: no need to build the encoders
            summaries.append({"shard": plan.index, "skipped": True, "rows": None, "errors": None})
            report.add(shards=1, clips=len(plan.clip_ids))
            continue
        by_id = clips_io.clip_rows(clips_uri, plan.clip_ids)  # only this shard's rows are decoded
        with model_slot(device), model_lock(profile, "encoders", device):
            summaries.append(embed.run_shard(
                plan, by_id, get_model(profile, "clip", device), get_model(profile, "clap", device), num_frames,
                max_seconds, batch_size, progress=sys.stderr.isatty(), frame_rate=frame_rate, decoder=decoder,
                workers=workers, pool=pool, on_clip=lambda n: report.add(clips=n),
                provenance=devices.provenance(device)))
        report.add(shards=1)
    return {"shards": summaries, "outputs": fingerprints([p.uri for p in plans])}
