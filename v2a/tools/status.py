"""What a pipeline output location holds: stages done, row counts, errors per stage and their reasons, and its runs.

Everything is read from the tables themselves (Parquet footers for the row counts, so a large
embeddings table is not loaded), which makes the answer the same whichever process wrote them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from storage_schemas import errors as errors_schema
from storage_schemas import provenance as provenance_schema
from storage_schemas import results as results_schema
from v2a import __version__
from v2a.core import storage
from v2a.core.checkpoints import CONFIG_NAME
from v2a.io import parquet
from v2a.io.layout import GenerationLayout, RunLayout
from v2a.stages.reevaluate import generation_sets


def count_rows(uri: str) -> tuple[int, int]:
    """(rows, files) of a Parquet file or folder, from the file footers."""
    return parquet.count_rows(uri)


def _mappers(out: str) -> list[dict]:
    found = []
    for config_uri in storage.glob(storage.join(RunLayout(out).mapper("*"), CONFIG_NAME)):
        fs, path = storage.filesystem(config_uri)
        with fs.open(path, "r") as handle:
            try:
                config = json.load(handle)
            except ValueError:
                config = None
        if not isinstance(config, dict):  # a hand-edited or damaged file: shown, not fatal
            config = {"name": "unreadable config.json"}
        training = config.get("training") or {}
        found.append({"name": config_uri.rstrip("/").rsplit("/", 2)[-2], "kind": config.get("name"),
                      "epochs": training.get("epochs_completed"),
                      "trainable_params": config.get("trainable_params")})
    return found


def out_status(out: str) -> dict:
    """{"out", "stages": [{stage, done, rows, errors, location, detail}], "runs": [...]} for one output."""
    layout = RunLayout(out)
    errors = parquet.read_table(layout.errors, errors_schema.SCHEMA, "errors", columns=["stage", "reason"]).to_pandas()
    errors_by_stage = errors.groupby("stage").size().to_dict() if not errors.empty else {}
    reasons = error_reasons(errors)
    results = parquet.read_table(layout.results, results_schema.SCHEMA, "results",
                                 columns=["run_id", "v2a_version", "metric"]).to_pandas()
    sets = [s for s in generation_sets(out) if s.out.rstrip("/") == _absolute(out)]

    stages = []
    clips_uri = layout.clips
    n_clips, _ = count_rows(clips_uri)
    by_split = ""
    if n_clips:
        clips = parquet.read_table(clips_uri, columns=["split"]).to_pandas()
        by_split = ", ".join(f"{k} {v}" for k, v in clips["split"].value_counts().sort_index().items())
    stages.append(_stage("ingest", n_clips > 0, n_clips, errors_by_stage, clips_uri, by_split))
    emb_uri = layout.embeddings
    n_emb, n_shards = count_rows(emb_uri)
    stages.append(_stage("embed", n_shards > 0, n_emb, errors_by_stage, emb_uri, f"{n_shards} shard(s)"))
    mappers = _mappers(out)
    stages.append(_stage("train", bool(mappers), len(mappers), errors_by_stage, layout.mappers,
                         ", ".join(f"{m['name']}: {m['epochs']} epochs" if m["epochs"] is not None
                                   else f"{m['name']}: {m['kind'] or 'no training record'}" for m in mappers)))
    runs = []
    for s in sets:
        n_gen, _ = count_rows(GenerationLayout(s.gen_dir).table)
        mine = results[results["run_id"] == s.run_id]
        current = mine[mine["v2a_version"] == __version__]
        runs.append({"run_id": s.run_id, "generated": n_gen, "results": len(mine),
                     "evaluated": not current.empty, "metrics": " ".join(sorted(set(current["metric"]))),
                     "location": s.gen_dir})
    stages.append(_stage("generate", bool(runs), sum(r["generated"] for r in runs), errors_by_stage,
                         layout.generations_root, f"{len(runs)} run(s)"))
    stages.append(_stage("evaluate", not results.empty, len(results), errors_by_stage, layout.results,
                         f"{sum(r['evaluated'] for r in runs)} of {len(runs)} run(s) scored by v{__version__}"))
    made_on = [*_spread("embed", emb_uri), *[row for s in sets for row in _spread("generate", GenerationLayout(
        s.gen_dir).table)], *_spread("evaluate", layout.results)]
    return {"out": str(out), "stages": stages, "runs": runs, "error_reasons": reasons, "made_on": made_on}


UNKNOWN = "unknown"  # rows written before the host and device columns existed


def _spread(stage: str, uri: str) -> list[dict]:
    """[{stage, host, device, rows}] of a table: how its rows spread over the hosts and devices that made them
    (two string columns read per file; files from before those columns count as unknown)."""
    counts: dict[tuple, int] = {}
    for table in parquet.iter_tables(uri, None, stage, columns_if_present=["clip_id", *provenance_schema.NAMES]):
        values = [table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
                  for c in provenance_schema.NAMES]
        for where in zip(*values):
            key = tuple(v or UNKNOWN for v in where)
            counts[key] = counts.get(key, 0) + 1
    return [{"stage": stage, "host": h, "device": d, "rows": n} for (h, d), n in sorted(counts.items())]


# What makes two reasons the same kind: the line number, quoted values and numbers of one clip or row.
_ROW_DETAIL = re.compile(r"^line \d+: |'[^']*'|\b\d+(\.\d+)?\b")


def error_reasons(errors, limit: int = 10) -> list[dict]:
    """[{stage, count, reason}] per stage and kind of reason, most frequent first (at most ``limit`` per
    stage); ``reason`` is the first row's own words, so a person sees one real example of each kind."""
    if errors.empty:
        return []
    kinds = errors.assign(kind=errors["reason"].fillna("").map(lambda r: _ROW_DETAIL.sub("…", r)))
    found = []
    for (stage, _), group in kinds.groupby(["stage", "kind"], sort=False):
        found.append({"stage": stage, "count": len(group), "reason": str(group["reason"].iloc[0])})
    found.sort(key=lambda r: (r["stage"], -r["count"]))
    kept, per_stage = [], {}
    for r in found:
        per_stage[r["stage"]] = per_stage.get(r["stage"], 0) + 1
        if per_stage[r["stage"]] <= limit:
            kept.append(r)
    return kept


def _absolute(out: str) -> str:
    # generation_sets reports local locations as absolute paths.
    return str(out).rstrip("/") if "://" in str(out) else str(Path(out).resolve())


def _stage(name: str, done: bool, rows: int, errors_by_stage: dict, location: str, detail: str) -> dict:
    return {"stage": name, "done": done, "rows": int(rows), "errors": int(errors_by_stage.get(name, 0)),
            "location": location, "detail": detail}


def format_status(status: dict) -> str:
    stages = pd.DataFrame(status["stages"])
    stages["done"] = stages["done"].map({True: "yes", False: "no"})
    lines = [f"v2a status of {status['out']}", "", stages.to_string(index=False), ""]
    if status["runs"]:
        runs = pd.DataFrame(status["runs"])
        runs["evaluated"] = runs["evaluated"].map({True: "yes", False: "no"})
        lines += ["runs:", runs.to_string(index=False)]
    else:
        lines.append("runs: none yet")
    if status.get("made_on"):
        lines += ["", "where the rows were made (host, device):", pd.DataFrame(status["made_on"]).to_string(index=False)]
    if status.get("error_reasons"):
        lines += ["", "errors by reason (one example of each kind; all rows: the errors table):"]
        for r in status["error_reasons"]:
            reason = r["reason"] if len(r["reason"]) <= 160 else r["reason"][:157] + "..."
            lines.append(f"  {r['stage']:<8} {r['count']:>6}  {reason}")
    return "\n".join(lines)
