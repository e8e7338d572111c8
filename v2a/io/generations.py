"""The `generations` table of one run: one row per generated file, in content-keyed part files.

While a shard generates, each finished batch is written as its own part (a kill loses at most one
batch); when the shard ends its rows are merged into one part named by the run and the shard's clip
ids, and the batch parts are removed, so a run of N clips holds about N / shard-size files. A re-run
rewrites the same names instead of adding copies. Reads that name clip ids open only the parts whose
footer range holds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from storage_schemas import generations as generations_schema
from v2a.core import storage
from v2a.io import parquet
from v2a.io.layout import GenerationLayout


def _layout(gen_dir) -> GenerationLayout:
    return gen_dir if isinstance(gen_dir, GenerationLayout) else GenerationLayout(str(gen_dir))


def read_generations(gen_dir, ids=None, columns: list[str] | None = None) -> pd.DataFrame:
    """The run's rows (only those of `ids` when given); a (clip, sample) written twice keeps its last row."""
    table = parquet.read_table(_layout(gen_dir).table, generations_schema.SCHEMA, "generations", columns=columns,
                               ids=ids)
    df = table.to_pandas()
    if {"clip_id", "sample"} <= set(df.columns):
        df = df.drop_duplicates(["clip_id", "sample"], keep="last").reset_index(drop=True)
    return df


def _batch_prefix(shard_key: str) -> str:
    return f"batch-{shard_key}-"


def write_batch(gen_dir, rows: list[dict], shard_key: str) -> str:
    """One finished batch of a shard, named by the shard and the (clip, sample) pairs it holds."""
    pairs = sorted((r["clip_id"], int(r["sample"])) for r in rows)
    name = _batch_prefix(shard_key) + parquet.part_name(*pairs).removeprefix("part-")
    uri = storage.join(_layout(gen_dir).table, name)
    parquet.write_table(rows, uri, generations_schema.SCHEMA, "generations", sort_by="clip_id")
    return uri


def batch_parts(gen_dir, shard_key: str) -> list[str]:
    """The batch parts of a shard still waiting to be merged (this run's or a killed run's)."""
    prefix = _batch_prefix(shard_key)
    return [u for u in parquet.table_files(_layout(gen_dir).table) if u.rsplit("/", 1)[-1].startswith(prefix)]


def merge_shard(gen_dir, shard_key: str, rows: pd.DataFrame | list[dict]) -> str | None:
    """Write the shard's rows as one part, then drop its batch parts (the merged part first: a kill
    in between leaves duplicate rows, which reads collapse, never a lost one)."""
    uri = None
    parts = batch_parts(gen_dir, shard_key)
    if len(rows):
        uri = parquet.write_part(_layout(gen_dir).table, rows, generations_schema.SCHEMA, "generations",
                                 "generate-shard", shard_key, sort_by="clip_id")
    for part in parts:
        if part != uri:
            storage.remove(part)
    return uri


def shard_key(run_id: str, clip_ids, samples: int) -> str:
    from v2a.core.fingerprint import short_digest

    return short_digest("\n".join([run_id, str(samples), *sorted(map(str, clip_ids))]), 16)


# --------------------------------------------------------------------------- the plan of a set

@dataclass(frozen=True)
class Progress:
    """How much of a generation set is done: the planned clips that have every planned sample in the table."""

    run_id: str
    generated: int
    planned: int

    @property
    def complete(self) -> bool:
        return self.generated >= self.planned

    def line(self) -> str:
        return f"{self.run_id}: {self.generated} of {self.planned} clips generated; run generate again"


def write_plan(gen_dir, clip_ids: list[str], samples: int) -> None:
    """Record what the run sets out to generate, before it starts: a half-finished set is then told from a
    finished one without knowing the configuration that made it."""
    uri, plan = _layout(gen_dir).plan, {"clip_ids": sorted(clip_ids), "samples": int(samples)}
    if _read_plan(uri) == plan:
        return  # unchanged: left as it is, so the set's fingerprint (the evaluation's cache key) stays too
    with storage.atomic_write(uri, "w") as f:
        json.dump(plan, f)


def _read_plan(uri: str) -> dict | None:
    if not storage.exists(uri):
        return None
    fs, path = storage.filesystem(uri)
    with fs.open(path, "r") as f:
        return json.load(f)


def progress(gen_dir) -> Progress | None:
    """The set's progress against its plan; None for a set without one (written before plans were recorded,
    or not by the generate stage), whose intended size is unknown."""
    layout = _layout(gen_dir)
    plan = _read_plan(layout.plan)
    if plan is None:
        return None
    samples = int(plan["samples"])
    have: dict[str, set[int]] = {}
    if storage.exists(layout.table):
        df = read_generations(layout, columns=["clip_id", "sample"])
        for c, s in zip(df["clip_id"], df["sample"]):
            have.setdefault(c, set()).add(int(s))
    done = sum(1 for c in plan["clip_ids"] if len(have.get(c, ())) >= samples)
    return Progress(layout.run_id, done, len(plan["clip_ids"]))
