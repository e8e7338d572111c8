"""Reading the results table back and printing it next to the paper's numbers."""

from __future__ import annotations

import pandas as pd

from storage_schemas import results as results_schema
from v2a import storage, tables


def read_results(out: str, run_id: str | None = None) -> pd.DataFrame:
    df = tables.read_table(storage.join(out, "results"), results_schema.SCHEMA, "results").to_pandas()
    if run_id is not None:
        df = df[df["run_id"] == run_id]
    return df.sort_values(["created_at", "metric"]).reset_index(drop=True)


def format_results(out: str, run_id: str | None = None) -> str:
    df = read_results(out, run_id)
    if df.empty:
        return f"no results in {storage.join(out, 'results')}" + (f" for run {run_id}" if run_id else "")
    cols = ["run_id", "split", "n_clips", "metric", "value", "extractor", "sample_rate", "clip_seconds",
            "mapper_kind", "generator_id"]
    lines = [f"results ({storage.join(out, 'results')}):", df[cols].to_string(index=False)]
    try:
        from v2a.metrics.paper import paper_table1_text
    except ImportError:
        return "\n".join(lines)
    lines += ["", paper_table1_text()]
    return "\n".join(lines)
