"""Where an evaluation's rows go in the results table: one part per (run, protocol, channel rule).

The part's name comes from that key alone, so every path that scores a run (the pipeline, `v2a
evaluate` on the run folder, `v2a reevaluate`, a deployment, a folder given `--run-id`) writes the
same file, whatever else it was given (dataset name, metric list, extractors). A re-score replaces the
rows of the metrics it computed and keeps the key's other metrics; rows of the same key and metric in
any other part (one written under an older naming, for instance) are removed from it, so the table
holds one row per (run, metric, protocol, channel rule).
"""

from __future__ import annotations

import logging
import posixpath

from storage_schemas import results as results_schema
from storage_schemas import scores as scores_schema
from v2a.core import storage
from v2a.io import parquet
from v2a.metrics.protocols import DEFAULT_PROTOCOL

log = logging.getLogger(__name__)

# Rows written before these columns existed were scored this way (v2a's historical reading).
_UNSET = {"protocol": DEFAULT_PROTOCOL, "channel_rule": "mean"}


def part_key(row: dict) -> tuple[str, str, str]:
    """(run id, protocol, channel rule) of a results row."""
    return (str(row["run_id"]), row.get("protocol") or _UNSET["protocol"],
            row.get("channel_rule") or _UNSET["channel_rule"])


def part_uri(results_uri: str, key: tuple[str, str, str]) -> str:
    return storage.join(results_uri, parquet.part_name("results", *key))


def write_results(results_uri: str, rows: list[dict]) -> str:
    """Write one evaluation's rows (all of one key) as the key's part; returns its location."""
    keys = {part_key(r) for r in rows}
    if len(keys) != 1:
        raise ValueError(f"one evaluation writes rows of one (run, protocol, channel rule), got {sorted(keys)}")
    key = keys.pop()
    uri = part_uri(results_uri, key)
    metrics = {r["metric"] for r in rows}
    earlier = [r for r in _rows(uri) if r["metric"] not in metrics]
    parquet.write_table(earlier + list(rows), uri, results_schema.SCHEMA, "results")
    name = posixpath.basename(str(uri).replace("\\", "/"))
    for other in storage.list_files(results_uri, ".parquet"):
        if posixpath.basename(other.replace("\\", "/")) != name:
            _drop_rows(other, key, metrics)
    return uri


def _rows(uri: str) -> list[dict]:
    if not storage.exists(uri):
        return []
    return parquet.read_table(uri, results_schema.SCHEMA, "results").to_pylist()


def _drop_rows(uri: str, key: tuple[str, str, str], metrics: set[str]) -> None:
    """Remove from another part the rows that the key's part now holds (the part goes when emptied)."""
    runs = parquet.read_table(uri, results_schema.SCHEMA, "results", columns=["run_id"]).column("run_id")
    if key[0] not in set(runs.to_pylist()):
        return
    rows = _rows(uri)
    kept = [r for r in rows if not (part_key(r) == key and r["metric"] in metrics)]
    if len(kept) == len(rows):
        return
    log.info("results: %d row(s) of %s re-scored, removed from %s", len(rows) - len(kept), key, uri)
    if kept:
        parquet.write_table(kept, uri, results_schema.SCHEMA, "results")
    else:
        storage.remove(uri)


def write_scores(scores_uri: str, key: tuple[str, str, str], metrics, rows: list[dict]) -> str | None:
    """Write an evaluation's per-sample values as the key's part of the scores table, replacing the values of
    the metrics it computed (`metrics`, including those without per-sample values, whose older values would
    otherwise outlive a re-score); None when there is nothing to write."""
    uri = storage.join(scores_uri, parquet.part_name("scores", *key))
    scored = set(metrics) | {r["metric"] for r in rows}
    earlier = []
    if storage.exists(uri):
        earlier = [r for r in parquet.read_table(uri, scores_schema.SCHEMA, "scores").to_pylist()
                   if r["metric"] not in scored]
    if not earlier and not rows:
        if storage.exists(uri):
            storage.remove(uri)
        return None
    parquet.write_table(earlier + list(rows), uri, scores_schema.SCHEMA, "scores", sort_by="metric")
    return uri
