"""Flow: `clips` table → per-frame CLIP and per-clip CLAP embeddings as Parquet shards (one task per shard)."""

from __future__ import annotations

from prefect import flow

from tasks.embed import embed_shard, plan_embed_shards
from v2a import storage


@flow(name="embed", log_prints=True)
def embed_flow(out: str, profile: str = "paper", num_frames: int = 10, max_seconds: float = 10.0,
               shard_size: int = 256, batch_size: int = 64, device: str = "cpu") -> dict:
    clips_uri = storage.join(out, "clips.parquet")
    emb_uri, err_uri = storage.join(out, "embeddings"), storage.join(out, "errors")
    plans = plan_embed_shards(clips_uri, emb_uri, err_uri, profile, shard_size, num_frames, max_seconds, device)
    results = embed_shard.map(plans, clips_uri=clips_uri, profile=profile, num_frames=num_frames,
                              max_seconds=max_seconds, batch_size=batch_size, device=device).result()
    done = [r for r in results if not r["skipped"]]
    summary = {"shards": len(results), "skipped": len(results) - len(done),
               "rows": sum(r["rows"] for r in done), "errors": sum(r["errors"] for r in done)}
    print(f"embed: {summary['shards']} shards ({summary['skipped']} already done), "
          f"{summary['rows']} new rows, {summary['errors']} clips in the errors table")
    return summary
