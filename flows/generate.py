"""Flow: embeddings of a split (+ mapper checkpoint) → 16 kHz audio files and the `generations` table."""

from __future__ import annotations

from prefect import flow

from flows.runners import bounded_thread_runner
from tasks.caching import map_calls
from tasks.generate import generate_shard, plan_generation
from v2a.io.layout import RunLayout


@flow(name="generate", log_prints=True, task_runner=bounded_thread_runner())
def generate_flow(embeddings: str, out: str, run_id: str, profile: str = "paper", checkpoint: str | None = None,
                  split: str = "test", conditioning: str = "mapper", samples: int = 1, seconds: float = 10.0,
                  steps: int = 200, guidance_scale: float = 2.5, scheduler: str = "ddim", mapper_guidance: float = 0.9,
                  mapper_steps: int = 200, batch_size: int = 8, seed: int = 0, max_clips: int | None = None,
                  device: str = "cpu", shard_size: int = 64) -> dict:
    layout = RunLayout(out)
    gen_dir = layout.generations(run_id).root
    shards = plan_generation(embeddings, split, shard_size, max_clips, clips_uri=layout.clips)
    results = map_calls(
        generate_shard, shards, desc="generate shards", embeddings_uri=embeddings, gen_dir=gen_dir, run_id=run_id,
        profile=profile, checkpoint=checkpoint, conditioning=conditioning, samples=samples, seconds=seconds,
        steps=steps, guidance_scale=guidance_scale, scheduler=scheduler, mapper_guidance=mapper_guidance,
        mapper_steps=mapper_steps, batch_size=batch_size, seed=seed, device=device, clips_uri=layout.clips)
    summary = {"gen_dir": gen_dir, "generated": sum(r["generated"] for r in results),
               "skipped": sum(r["skipped"] for r in results)}
    print(f"generate: {summary['generated']} files written, {summary['skipped']} already there → {gen_dir}")
    return summary
