"""Flow: `clips` table → per-frame CLIP and per-clip CLAP embeddings as Parquet shards (one task per shard)."""

from __future__ import annotations

from prefect import flow

from flows.artifacts import markdown_artifact
from flows.errors import require_clips
from flows.naming import FLOW_OPTIONS, artifact_key, run_key, stage_run_name, tagged_run
from flows.runners import bounded_thread_runner, model_resources, prepare_model_process
from tasks.caching import call, map_calls
from tasks.domain_gap import domain_gap_report
from tasks.embed import embed_shards, plan_embed_shards, plan_from, remove_stale_shards
from tasks.progress import stage_progress
from v2a.stages import embed as embed_lib
from v2a.config import DEFAULT_PROFILE, EmbedConfig
from v2a.stages.domain_gap import GapReport
from v2a.io import parquet
from v2a.io.layout import RunLayout


@flow(name="embed", task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("embed"), **FLOW_OPTIONS)
def embed_flow(out: str, profile: str = DEFAULT_PROFILE, embed: EmbedConfig = EmbedConfig()) -> dict:
    """embed.shards_per_task: shards one task embeds in turn (a shard of shard_size clips is what is stored
    and resumed; a task is what Prefect schedules: its fixed cost is paid per task, not per shard)."""
    require_clips(out)
    e, layout, key = embed, RunLayout(out), run_key(out)
    with tagged_run("embed", profile=profile, clips=layout.clips):
        prepare_model_process()  # before any task thread (v2a.runtime.imports)
        clips_uri, emb_uri, err_uri = layout.clips, layout.embeddings, layout.errors
        plans = plan_embed_shards(clips_uri, emb_uri, err_uri, profile, e.shard_size, e.num_frames, e.max_seconds,
                                  e.device, frame_rate=e.frame_rate)
        remove_stale_shards(emb_uri, plans)
        groups = [plans[i:i + e.shards_per_task] for i in range(0, len(plans), e.shards_per_task)]
        # A unit of progress is a task: its first shard's index names it (tasks/embed.py reports under it).
        units = {g[0]["index"]: {"clips": sum(len(p["clip_ids"]) for p in g), "shards": len(g)} for g in groups}
        # The bar reaches 100 only once the domain-gap plot is drawn too (on a large table, as long as a few shards).
        with stage_progress(artifact_key("embed-progress", key), "embed", units,
                            closing="drawing the domain-gap plot") as progress:
            with model_resources(e.device):
                grouped = map_calls(embed_shards, groups, desc="embed shards", clips_uri=clips_uri, profile=profile,
                                    num_frames=e.num_frames, max_seconds=e.max_seconds, batch_size=e.batch_size,
                                    device=e.device, frame_rate=e.frame_rate, decoder=e.decoder, workers=e.workers,
                                    pool=e.pool, on_done=lambda i: progress.finish(groups[i][0]["index"]))
            gap = call(domain_gap_report, emb_uri, layout.reports)
            progress.closing_done()
        results = [{**s, "cached": g.get("cached", False)} for g in grouped for s in g["shards"]]
        # Shards from the task cache or found on disk were done by an earlier run: only the rest is new.
        new = [r for r in results if not r["skipped"] and not r["cached"]]
        summary = {"shards": len(results), "skipped": len(results) - len(new),
                   "rows": sum(r["rows"] for r in new), "errors": sum(r["errors"] for r in new),
                   "errors_total": embed_lib.count_errors([plan_from(p) for p in plans]),
                   "rows_total": parquet.count_rows(emb_uri)[0]}  # from the shards' footers: new and earlier rows
        print(f"embed: {summary['shards']} shards ({summary['skipped']} already done), "
              f"{summary['rows']} new rows, {summary['errors']} new clips in the errors table "
              f"({summary['errors_total']} in all, see {err_uri})")
        if gap is not None:
            markdown_artifact(artifact_key("domain-gap", key), GapReport(**gap["report"]).markdown(),
                              "Cosine similarity of paired CLIP/CLAP embeddings and a 2-D projection of both "
                              f"(V2A-Mapper Fig. 3), {out}", result=gap)
        summary["domain_gap"] = gap
        return summary
