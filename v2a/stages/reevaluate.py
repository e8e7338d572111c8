"""Generation sets that have no results for the current metric version: what a re-evaluation must score.

A generation set is a folder OUT/generations/RUN_ID holding a `table/`, where OUT is a pipeline
output (clips.parquet, embeddings/, results/). Its results are the rows of OUT/results with its
run_id; they count only when written by this version of v2a (`v2a_version`), so a release that
changes a metric marks every earlier set as pending.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage_schemas import results as results_schema
from v2a import __version__
from v2a.core import storage
from v2a.io import parquet
from v2a.io.layout import RunLayout


@dataclass(frozen=True)
class GenerationSet:
    out: str       # the pipeline output holding it (and its results table)
    run_id: str
    gen_dir: str


def generation_sets(location: str) -> list[GenerationSet]:
    """Every generation set of the pipeline output at `location`, or of those one folder below it."""
    found = []
    for pattern in (RunLayout(location).generations("*").table,
                    RunLayout(storage.join(location, "*")).generations("*").table):
        for table in storage.glob(pattern):
            gen_dir = table.rstrip("/").rsplit("/", 1)[0]
            out = gen_dir.rsplit("/", 2)[0]
            found.append(GenerationSet(out, gen_dir.rsplit("/", 1)[1], gen_dir))
    return sorted(set(found), key=lambda s: (s.out, s.run_id))


def evaluated_run_ids(out: str, version: str = __version__) -> set[str]:
    results = parquet.read_table(RunLayout(out).results, results_schema.SCHEMA, "results",
                                 columns=["run_id", "v2a_version"])
    runs, versions = results.column("run_id").to_pylist(), results.column("v2a_version").to_pylist()
    return {r for r, v in zip(runs, versions) if v == version}


def unfinished(sets: list[GenerationSet]) -> tuple[list[GenerationSet], list]:
    """(the finished sets, the Progress of each unfinished one): a set whose generation stopped halfway is
    not scored by a re-evaluation, since its rows would pass for the run's. A set without a recorded plan
    counts as finished."""
    from v2a.io.generations import progress

    ready, skipped = [], []
    for s in sets:
        done = progress(s.gen_dir)
        (skipped.append(done) if done is not None and not done.complete else ready.append(s))
    return ready, skipped


def pending_evaluation(location: str, version: str = __version__) -> list[GenerationSet]:
    """The generation sets under `location` whose run_id has no results rows of `version`."""
    sets = generation_sets(location)
    done = {out: evaluated_run_ids(out, version) for out in {s.out for s in sets}}
    return [s for s in sets if s.run_id not in done[s.out]]
