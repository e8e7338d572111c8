"""Prefect tasks over v2a.stages.generate: one task per shard of clips (a `gpu` slot while generating on CUDA)."""

from __future__ import annotations

import sys

from prefect import task

from tasks.caching import stage_cache
from tasks.operations import RESULTS, RETRIES, model_slot
from tasks.progress import reporter
from v2a.config import GenerateConfig
from v2a.stages import generate
from v2a.core.fingerprint import fingerprints
from v2a.runtime import trace
from v2a.runtime.model_cache import empty_text_embedding, get_mapper, get_model, model_lock
from v2a.core import devices


@task(name="plan-generation", cache_policy=stage_cache(reads=("embeddings_uri", "clips_uri")), **RETRIES, **RESULTS)
def plan_generation(embeddings_uri: str, split: str, shard_size: int, max_clips: int | None,
                    clips_uri: str | None = None) -> list[list[str]]:
    from v2a.io.embeddings import split_ids

    # Split from the clips table, ids from one column of the embeddings: no vector is read here.
    ids = split_ids(embeddings_uri, split, clips_uri)
    ids = ids[:max_clips] if max_clips else ids
    if not ids:
        raise ValueError(f"{embeddings_uri}: no clips in split {split!r} to generate for")
    return [ids[i:i + shard_size] for i in range(0, len(ids), shard_size)]


def _shard_done(gen_dir: str, clip_ids: list[str], samples: int) -> bool:
    """Every (clip, sample) of the shard has a table row and a valid file; only the shard's own files are opened."""
    want = {(c, s) for c in clip_ids for s in range(samples)}
    return want <= generate.done_samples(gen_dir, clip_ids)


# `shard` is (index, clip ids): the index names the task run, the ids are the work.
@task(name="generate-shard", task_run_name="generate-shard-{shard[0]}", **RETRIES,
      **RESULTS, cache_policy=stage_cache(reads=("embeddings_uri", "checkpoint", "clips_uri"), profile="profile"))
def generate_shard(shard: tuple[int, list[str]], embeddings_uri: str, gen_dir: str, run_id: str, profile: str,
                   checkpoint: str | None, settings: GenerateConfig, clips_uri: str | None = None) -> dict:
    with trace.span("generate", shard[0]):
        return _generate_shard(shard, embeddings_uri, gen_dir, run_id, profile, checkpoint, settings, clips_uri)


def _generate_shard(shard, embeddings_uri, gen_dir, run_id, profile, checkpoint, settings, clips_uri) -> dict:
    g, device, samples = settings, settings.device, settings.samples
    clip_ids = list(shard[1])
    report = reporter(shard[0])  # the flow's progress artifact counts this shard's samples
    wanted_files = [generate.audio_uri(gen_dir, c, s) for c in clip_ids for s in range(samples)]
    if _shard_done(gen_dir, clip_ids, samples):
        # Done by an earlier run: no need to build the generator or the mapper.
        report.add(samples=len(wanted_files), clips=len(clip_ids))
        return {"generated": 0, "skipped": len(wanted_files), "outputs": fingerprints(wanted_files)}
    rows = generate.conditioning_rows(embeddings_uri, clip_ids, clips_uri)
    with model_slot(device):  # loading the models onto the GPU is GPU work too
        generator = get_model(profile, "generator", device)
        mapper = get_mapper(checkpoint, device) if g.conditioning == "mapper" else None
        conditioner = generate.Conditioner(g.conditioning, generator, mapper, mapper_guidance=g.mapper_guidance,
                                           mapper_steps=g.mapper_steps, run_seed=g.seed)
        with model_lock(profile, "generator", device):
            summary = generate.generate_clips(
                rows, gen_dir, run_id, conditioner, generator, empty_text_embedding(profile, device), samples=samples,
                seconds=g.seconds, steps=g.steps, generator_guidance=g.generator_guidance, scheduler=g.scheduler,
                batch_size=g.batch_size, run_seed=g.seed, progress=sys.stderr.isatty(),
                mapper_checkpoint_id=mapper.checkpoint_id if mapper else None,
                mapper_kind=mapper.config.get("name") if mapper else None,
                on_samples=lambda n: report.add(samples=n, clips=n / samples),
                provenance=devices.provenance(device))
    return {**summary, "outputs": fingerprints(wanted_files)}
