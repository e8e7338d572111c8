"""Reading the results table back and printing it next to the paper's numbers."""

from __future__ import annotations

import pandas as pd

from storage_schemas import results as results_schema
from v2a.io import parquet
from v2a.io.layout import RunLayout


def read_results(out: str, run_id: str | None = None) -> pd.DataFrame:
    filters = [("run_id", "==", run_id)] if run_id is not None else None
    df = parquet.read_table(RunLayout(out).results, results_schema.SCHEMA, "results", filters=filters).to_pandas()
    return df.sort_values(["created_at", "metric"]).reset_index(drop=True)


def format_results(out: str, run_id: str | None = None) -> str:
    df = read_results(out, run_id)
    if df.empty:
        return f"no results in {RunLayout(out).results}" + (f" for run {run_id}" if run_id else "")
    cols = ["run_id", "split", "n_clips", "metric", "value", "extractor", "sample_rate", "clip_seconds",
            "mapper_kind", "generator_id"]
    lines = [f"results ({RunLayout(out).results}):", df[cols].to_string(index=False)]
    lines += ["", paper_table1_text()]
    return "\n".join(lines)


def paper_table1_text() -> str:
    from v2a.metrics.paper import PROTOCOL, table_rows

    paper = pd.DataFrame(table_rows("table1"))[["method", "fd", "fad", "cs", "imagehear_cs", "seconds_per_sample",
                                                "trainable_params_m"]]
    note = (f"Quoted from the paper (Table 1; {PROTOCOL['dataset']} {PROTOCOL['split']}, {PROTOCOL['n_clips']} clips "
            "of 10 s, real CLIP/CLAP/AudioLDM weights). Rows above come from this run's own models, clips, clip "
            "length and extractor weights, so they compare with these only when the protocol matches.")
    return "\n".join(["paper, Table 1 (quoted):", paper.to_string(index=False), note])
