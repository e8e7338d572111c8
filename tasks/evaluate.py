"""Prefect task over v2a.evaluate."""

from __future__ import annotations

import sys

from prefect import task

from tasks.caching import stage_cache
from v2a import evaluate, storage
from v2a.fingerprint import fingerprints
from v2a.io.layout import RunLayout
from v2a.model_cache import get_model

EXTRACTORS = {"fd": "panns", "kl": "panns", "is": "panns", "fad": "vggish", "cs": "wav2clip"}


@task(name="evaluate-run", tags=["gpu"], persist_result=True,
      cache_policy=stage_cache(reads=("gen_dir", "out/clips.parquet", "out/embeddings"), profile="profile"))
def evaluate_task(gen_dir: str, out: str, profile: str, split: str, dataset: str, metrics: list[str],
                  device: str) -> dict:
    """{"rows": the rows appended to OUT/results, "outputs": the part file holding them}."""
    results = RunLayout(out).results
    before = fingerprints(storage.list_files(results, ".parquet"))
    names = sorted({EXTRACTORS[m] for m in metrics})
    extractors = {n: get_model(profile, f"extractor:{n}", device) for n in names}
    rows = evaluate.evaluate_run(gen_dir, out, extractors, split=split, dataset=dataset, metrics=metrics,
                                 progress=sys.stderr.isatty())
    # Parts are named by what they hold, so a re-run replaces its own file: changed files count as written.
    written = sorted(u for u, fp in fingerprints(storage.list_files(results, ".parquet")).items() if before.get(u) != fp)
    return {"rows": rows, "outputs": fingerprints(written)}


@task(name="evaluate-folder", tags=["gpu"])
def evaluate_folder_task(generated_dir: str, results_uri: str, profile: str, reference_dir: str | None,
                         run_dir: str | None, split: str, dataset: str, metrics: list[str], device: str,
                         run_id: str | None = None) -> list[dict]:
    names = sorted({EXTRACTORS[m] for m in metrics})
    extractors = {n: get_model(profile, f"extractor:{n}", device) for n in names}
    return evaluate.evaluate_folder(generated_dir, results_uri, extractors, reference_dir=reference_dir,
                                    run_dir=run_dir, split=split, run_id=run_id, dataset=dataset, metrics=metrics)
