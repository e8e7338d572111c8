"""Flow: `clips` table → per-frame CLIP and per-clip CLAP embeddings as Parquet shards (one task per shard)."""

from __future__ import annotations

from prefect import flow

from flows.runners import bounded_thread_runner
from flows.errors import require_clips
from tasks.caching import call, map_calls
from tasks.domain_gap import domain_gap_report
from tasks.embed import embed_shards, plan_embed_shards, remove_stale_shards
from v2a import embed
from v2a.io.layout import RunLayout


@flow(name="embed", log_prints=True, task_runner=bounded_thread_runner())
def embed_flow(out: str, profile: str = "paper", num_frames: int = 10, max_seconds: float = 10.0,
               shard_size: int = 256, batch_size: int = 64, device: str = "cpu", frame_rate: float | None = None,
               decoder: str = "auto", workers: int = 0, pool: str = "auto", shards_per_task: int = 8) -> dict:
    """shards_per_task: shards one task embeds in turn (a shard of shard_size clips is what is stored
    and resumed; a task is what Prefect schedules)."""
    require_clips(out)
    layout = RunLayout(out)
    clips_uri, emb_uri, err_uri = layout.clips, layout.embeddings, layout.errors
    plans = plan_embed_shards(clips_uri, emb_uri, err_uri, profile, shard_size, num_frames, max_seconds, device,
                              frame_rate=frame_rate)
    remove_stale_shards(emb_uri, plans)
    groups = [plans[i:i + shards_per_task] for i in range(0, len(plans), max(1, shards_per_task))]
    results = map_calls(embed_shards, groups, desc="embed shards", clips_uri=clips_uri, profile=profile,
                        num_frames=num_frames, max_seconds=max_seconds, batch_size=batch_size, device=device,
                        frame_rate=frame_rate, decoder=decoder, workers=workers, pool=pool)
    results = [s for r in results for s in r["shards"]]
    done = [r for r in results if not r["skipped"]]
    summary = {"shards": len(results), "skipped": len(results) - len(done),
               "rows": sum(r["rows"] for r in done), "errors": sum(r["errors"] for r in done),
               "errors_total": embed.count_errors(plans)}
    print(f"embed: {summary['shards']} shards ({summary['skipped']} already done), "
          f"{summary['rows']} new rows, {summary['errors']} new clips in the errors table "
          f"({summary['errors_total']} in all, see {err_uri})")
    summary["domain_gap"] = call(domain_gap_report, emb_uri, layout.reports)
    return summary
