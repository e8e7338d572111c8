"""Flow: embeddings of a split (+ mapper checkpoint) → 16 kHz audio files and the `generations` table."""

from __future__ import annotations

from prefect import flow

from flows.naming import FLOW_OPTIONS, artifact_key, run_key, run_name, tagged_run
from flows.runners import bounded_thread_runner, model_resources, prepare_model_process
from tasks.caching import map_calls
from tasks.generate import generate_shard, plan_generation
from tasks.progress import stage_progress
from v2a.config import DEFAULT_PROFILE, GenerateConfig
from v2a.io.layout import RunLayout
from v2a.io.generations import write_plan


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    return run_name("generate", run_key(params["out"], params.get("run_id")) if params.get("out") else None)


@flow(name="generate", task_runner=bounded_thread_runner(), flow_run_name=_run_name, **FLOW_OPTIONS)
def generate_flow(embeddings: str, out: str, run_id: str, profile: str = DEFAULT_PROFILE,
                  checkpoint: str | None = None, generate: GenerateConfig = GenerateConfig()) -> dict:
    g, layout = generate, RunLayout(out)
    with tagged_run("generate", profile=profile, clips=layout.clips):
        prepare_model_process()  # before any task thread (v2a.runtime.imports)
        gen_dir = layout.generations(run_id).root
        shards = plan_generation(embeddings, g.split, g.shard_size, g.max_clips, clips_uri=layout.clips)
        # Written before any shard starts: evaluation tells a half-finished set from a finished one by it.
        write_plan(gen_dir, [c for ids in shards for c in ids], g.samples)
        units = {i: {"samples": len(ids) * g.samples, "clips": len(ids)} for i, ids in enumerate(shards)}
        with stage_progress(artifact_key("generate-progress", run_key(out, run_id)), "generate", units) as progress, \
                model_resources(g.device):
            results = map_calls(
                generate_shard, list(enumerate(shards)), desc="generate shards", on_done=progress.finish,
                embeddings_uri=embeddings, gen_dir=gen_dir, run_id=run_id, profile=profile, checkpoint=checkpoint,
                settings=g, clips_uri=layout.clips)
        new = [r for r in results if not r["cached"]]
        summary = {"gen_dir": gen_dir, "generated": sum(r["generated"] for r in new),
                   "skipped": sum(r["skipped"] for r in new) + sum(r["generated"] + r["skipped"] for r in results
                                                                   if r["cached"])}
        print(f"generate: {summary['generated']} files written, {summary['skipped']} already there → {gen_dir}")
        return summary
