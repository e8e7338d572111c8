"""Flow: VGGSound CSV + videos, or an image folder → `clips` table."""

from __future__ import annotations

from prefect import flow

from tasks.caching import call
from tasks.ingest import ingest_task
from v2a import storage


@flow(name="ingest", log_prints=True)
def ingest_flow(out: str, csv: str | None = None, videos: str | None = None, images: str | None = None,
                dataset: str = "vggsound") -> dict:
    summary = call(ingest_task, storage.join(out, "clips.parquet"), csv, videos, images, dataset,
                   storage.join(out, "errors"))
    print(f"ingest: {summary['n_clips']} clips {summary['by_split']}, {summary['n_errors']} bad rows or files"
          + (f" (reasons: v2a status --out {out})" if summary['n_errors'] else ""))
    return summary
