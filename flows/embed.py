"""Flow: `clips` table → per-frame CLIP and per-clip CLAP embeddings as Parquet shards (the embed stage's items:
`v2a.stages.embed.STAGE`), then the domain-gap pictures of the table."""

from __future__ import annotations

from prefect import flow

from flows.artifacts import markdown_artifact
from flows.errors import require_clips
from flows.naming import FLOW_OPTIONS, artifact_key, run_key, stage_run_name, tagged_run
from flows.runners import bounded_thread_runner, prepare_model_process
from flows.stage import run_stage
from tasks.caching import call
from tasks.domain_gap import domain_gap_report
from v2a.config import DEFAULT_PROFILE, EmbedConfig
from v2a.io.layout import RunLayout
from v2a.stages.domain_gap import GapReport
from v2a.stages.shape import StageRun


@flow(name="embed", task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("embed"), **FLOW_OPTIONS)
def embed_flow(out: str, profile: str = DEFAULT_PROFILE, embed: EmbedConfig = EmbedConfig()) -> dict:
    """embed.shards_per_task: shards one task embeds in turn (a shard of shard_size clips is what is stored
    and resumed; a task is what Prefect schedules: its fixed cost is paid per task, not per shard)."""
    require_clips(out)
    layout, key = RunLayout(out), run_key(out)
    with tagged_run("embed", profile=profile, clips=layout.clips):
        prepare_model_process()  # before any task thread (v2a.runtime.imports)
        # The bar reaches 100 only once the domain-gap plot is drawn too (on a large table, as long as a few shards).
        outcome = run_stage("embed", embed, StageRun(out, profile, embed.device), key,
                            then=lambda: call(domain_gap_report, layout.embeddings, layout.reports),
                            closing="drawing the domain-gap plot")
        gap = outcome.after
        if gap is not None:
            markdown_artifact(artifact_key("domain-gap", key), GapReport(**gap["report"]).markdown(),
                              "Cosine similarity of paired CLIP/CLAP embeddings and a 2-D projection of both "
                              f"(V2A-Mapper Fig. 3), {out}", result=gap)
        return {**outcome.summary, "domain_gap": gap}
