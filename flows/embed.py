"""Flow: `clips` table → per-frame CLIP and per-clip CLAP embeddings as Parquet shards (one task per shard)."""

from __future__ import annotations

from prefect import flow

from flows.errors import require_clips
from tasks.caching import call, map_calls
from tasks.domain_gap import domain_gap_report
from tasks.embed import embed_shard, plan_embed_shards, remove_stale_shards
from v2a import embed, storage


@flow(name="embed", log_prints=True)
def embed_flow(out: str, profile: str = "paper", num_frames: int = 10, max_seconds: float = 10.0,
               shard_size: int = 256, batch_size: int = 64, device: str = "cpu", frame_rate: float | None = None,
               decoder: str = "auto", workers: int = 0, pool: str = "auto") -> dict:
    require_clips(out)
    clips_uri = storage.join(out, "clips.parquet")
    emb_uri, err_uri = storage.join(out, "embeddings"), storage.join(out, "errors")
    plans = plan_embed_shards(clips_uri, emb_uri, err_uri, profile, shard_size, num_frames, max_seconds, device,
                              frame_rate=frame_rate)
    remove_stale_shards(emb_uri, plans)
    results = map_calls(embed_shard, plans, desc="embed shards", clips_uri=clips_uri, profile=profile,
                        num_frames=num_frames, max_seconds=max_seconds, batch_size=batch_size, device=device,
                        frame_rate=frame_rate, decoder=decoder, workers=workers, pool=pool)
    done = [r for r in results if not r["skipped"]]
    summary = {"shards": len(results), "skipped": len(results) - len(done),
               "rows": sum(r["rows"] for r in done), "errors": sum(r["errors"] for r in done),
               "errors_total": embed.count_errors(plans)}
    print(f"embed: {summary['shards']} shards ({summary['skipped']} already done), "
          f"{summary['rows']} new rows, {summary['errors']} new clips in the errors table "
          f"({summary['errors_total']} in all, see {err_uri})")
    summary["domain_gap"] = call(domain_gap_report, emb_uri, storage.join(out, "reports"))
    return summary
