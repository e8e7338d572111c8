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


TABLES = ("long", "mmaudio")


def format_results(out: str, run_id: str | None = None, table: str = "long") -> str:
    df = read_results(out, run_id)
    if df.empty:
        return f"no results in {RunLayout(out).results}" + (f" for run {run_id}" if run_id else "")
    if table == "mmaudio":
        return mmaudio_table_text(df)
    if table != "long":
        raise ValueError(f"unknown table {table!r}; accepted: {', '.join(TABLES)}")
    df = df.assign(**{"95% CI": [interval_text(lo, hi) for lo, hi in zip(df["ci_low"], df["ci_high"])]})
    cols = ["run_id", "split", "n_clips", "metric", "value", "95% CI", "extractor", "sample_rate", "clip_seconds",
            "protocol", "channel_rule", "mapper_kind", "generator_id"]
    lines = [f"results ({RunLayout(out).results}):", df[cols].to_string(index=False)]
    if df["ci_low"].notna().any():
        lines.append(INTERVAL_NOTE)
    lines += ["", paper_table1_text()]
    return "\n".join(lines)


INTERVAL_NOTE = ("95% CI: percentile bootstrap over clips (a clip resampled with all its samples; seeded; resamples "
                 "in the ci_resamples column); '-': none (a Fréchet row without --bootstrap N, or not a metric)")


def _missing(v) -> bool:
    return v is None or pd.isna(v)


def interval_text(low, high, digits: int = 4) -> str:
    """`[low, high]` to `digits` significant digits; '-' without an interval."""
    if _missing(low) or _missing(high):
        return "-"
    return f"[{float(low):.{digits}g}, {float(high):.{digits}g}]"


def with_interval(value, low, high, digits: int = 4) -> str:
    """`4.52 [4.31, 4.77]`: a value with its interval (the value alone without one; '-' without a value)."""
    if _missing(value):
        return "-"
    text = f"{float(value):.{digits}g}"
    return text if _missing(low) or _missing(high) else f"{text} {interval_text(low, high, digits)}"


def paper_table1_text() -> str:
    from v2a.metrics.paper import PROTOCOL, table_rows

    paper = pd.DataFrame(table_rows("table1"))[["method", "fd", "fad", "cs", "imagehear_cs", "seconds_per_sample",
                                                "trainable_params_m"]]
    note = (f"Quoted from the paper (Table 1; {PROTOCOL['dataset']} {PROTOCOL['split']}, {PROTOCOL['n_clips']} clips "
            "of 10 s, real CLIP/CLAP/AudioLDM weights). Rows above come from this run's own models, clips, clip "
            "length and extractor weights, so they compare with these only when the protocol matches.")
    return "\n".join(["paper, Table 1 (quoted):", paper.to_string(index=False), note])


def mmaudio_rows(df: pd.DataFrame) -> list[dict]:
    """One row per (run, protocol, clip length) in MMAudio's columns (NaN where the run has no such metric)."""
    from v2a.metrics.mmaudio import COLUMNS

    scored = df[df["metric"].isin([m for _, m in COLUMNS if m])].copy()
    scored["protocol"] = scored["protocol"].fillna("v2a-mapper")  # rows written before protocols existed
    out = []
    for (run, proto, secs), part in scored.groupby(["run_id", "protocol", "clip_seconds"], dropna=False, sort=False):
        # The newest row of each metric whole (groupby().last() would fill a null interval from an older row).
        latest = part.sort_values("created_at").drop_duplicates("metric", keep="last").set_index("metric")
        out.append({"run": run, "protocol": proto, "seconds": secs,
                    **{title: (latest["value"].get(m, float("nan")) if m else float("nan")) for title, m in COLUMNS},
                    "intervals": {title: (latest["ci_low"].get(m), latest["ci_high"].get(m))
                                  for title, m in COLUMNS if m and m in latest.index}})
    return out


def _mmaudio_lines(rows: list[dict]) -> str:
    """One line per run in MMAudio's columns, and under it a line of the 95 % intervals it has."""
    from v2a.metrics.mmaudio import COLUMNS

    titles = [t for t, _ in COLUMNS]
    table = []
    for r in rows:
        table.append({"run": r["run"], "protocol": r["protocol"],
                      "seconds": "-" if _missing(r["seconds"]) else f"{float(r['seconds']):g}",
                      **{t: "-" if _missing(r[t]) else f"{float(r[t]):.4g}" for t in titles}})
        cis = {t: interval_text(*r["intervals"].get(t, (None, None))) for t in titles}
        if any(v != "-" for v in cis.values()):
            table.append({"run": "", "protocol": "", "seconds": "95% CI", **cis})
    return pd.DataFrame(table).to_string(index=False)


def mmaudio_table_text(df: pd.DataFrame) -> str:
    from v2a.metrics.mmaudio import NOT_VERIFIED_NOTE, SOURCE, VERIFIED, quoted_rows

    rows = mmaudio_rows(df)
    lines = ["results in MMAudio's columns:",
             _mmaudio_lines(rows) if rows else "(no rows of these metrics)", "",
             f"published, quoted from {SOURCE}" + ("" if VERIFIED else f" -- {NOT_VERIFIED_NOTE}") + ":",
             pd.DataFrame(quoted_rows()).to_string(index=False),
             "Rows of protocol v2a-mapper (10-s clips, no PaSST / IB) do not compare with these; av-benchmark rows "
             "compare only with the real weights on the same VGGSound test clips."]
    return "\n".join(lines)
