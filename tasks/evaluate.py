"""Prefect tasks over v2a.stages.evaluate (a `gpu` slot while the extractors run on CUDA)."""

from __future__ import annotations

import sys

from prefect import task

from tasks.caching import stage_cache
from tasks.operations import RESULTS, RETRIES, jsonable, made_by, model_slot
from v2a.stages import evaluate
from v2a.core import storage
from v2a.core.fingerprint import fingerprints
from v2a.io.layout import RunLayout
from v2a.runtime import trace
from v2a.runtime.model_cache import get_model
from v2a.core import devices

from v2a.metrics.specs import extractor_of  # noqa: E402  (the metric table says which model)


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return flow_run.id


def _provenance(given: dict | None, device: str) -> dict:
    """The caller's provenance, with the flow run and where the extractors run (host, device)."""
    return {**(given or {}), "flow_run_id": _flow_run_id(), **devices.provenance(device)}


def _plain_rows(rows: list[dict]) -> list[dict]:
    return jsonable(rows)  # task results are JSON


def scoring_of(evaluate) -> dict:
    """The protocol settings of an EvaluateConfig, as the evaluation functions take them."""
    return {"protocol": evaluate.protocol, "channel_rule": evaluate.channel_rule, "clip_seconds": evaluate.clip_seconds}


def _extractors(profile: str, metrics: list[str], device: str) -> dict:
    return {n: get_model(profile, f"extractor:{n}", device) for n in sorted({extractor_of(m) for m in metrics})}


def plan_evaluation(gen_dir: str, profile: str, metrics: list[str]) -> dict:
    """{"units": the metric groups, one task each; "reference_rate": the run's decode rate of the real audio},
    read from the profile without building a model."""
    from v2a.metrics.extractors import sample_rate_of
    from v2a.models.profile import load_profile

    sections = load_profile(profile).get("extractors") or {}
    rates = [sample_rate_of(n, sections.get(n)) for n in sorted({extractor_of(m) for m in metrics})]
    return {"units": evaluate.evaluation_units(metrics), "reference_rate": evaluate.reference_rate(rates, gen_dir)}


_READS = ("gen_dir", "out/clips.parquet", "out/embeddings")


# One per extractor of the run (its metrics, `unit`): the units of a run run side by side.
@task(name="evaluate-unit", task_run_name="evaluate-unit-{unit[0]}", **RETRIES, **RESULTS,
      cache_policy=stage_cache(reads=_READS, profile="profile"))
def evaluate_unit_task(unit: list[str], gen_dir: str, out: str, profile: str, split: str, device: str,
                       reference_rate: int, scoring: dict | None = None, bootstrap: int = 0) -> dict:
    with trace.span("evaluate", unit[0]), model_slot(device):
        scored = evaluate.score_unit(gen_dir, out, _extractors(profile, unit, device), unit, split=split,
                                     reference_rate=reference_rate, progress=sys.stderr.isatty(),
                                     bootstrap=bootstrap, **(scoring or {}))
    return jsonable(scored)  # task results are JSON


# The flow run id is not part of the key (the cache would never hit), so a cached result names the run that
# computed it: the rows' flow_run_id says which run wrote them.
@task(name="evaluate-run", **RETRIES, **RESULTS, cache_policy=stage_cache(reads=_READS))
def evaluate_task(gen_dir: str, out: str, units: list[dict], split: str, dataset: str, device: str,
                  provenance: dict | None = None, scoring: dict | None = None, complete: bool | None = None) -> dict:
    """The scored units as one part of OUT/results: {"rows": its rows, "outputs": the part file}."""
    layout = RunLayout(out)

    def parts() -> list[str]:  # the results and their per-sample values: a cache hit needs both still there
        return storage.list_files(layout.results, ".parquet") + storage.list_files(layout.scores, ".parquet")

    before = fingerprints(parts())
    rows = evaluate.write_run(gen_dir, out, units, split=split, dataset=dataset,
                              provenance=_provenance(provenance, device), complete=complete, **(scoring or {}))
    # Parts are named by what they hold, so a re-run replaces its own file: changed files count as written.
    written = sorted(u for u, fp in fingerprints(parts()).items() if before.get(u) != fp)
    return {"rows": _plain_rows(rows), "made_by": made_by(), "outputs": fingerprints(written)}


@task(name="evaluate-folder", **RETRIES, **RESULTS)
def evaluate_folder_task(generated_dir: str, results_uri: str, profile: str, reference_dir: str | None,
                         run_dir: str | None, split: str, dataset: str, metrics: list[str], device: str,
                         run_id: str | None = None, provenance: dict | None = None,
                         scoring: dict | None = None, bootstrap: int = 0) -> list[dict]:
    with model_slot(device):
        rows = evaluate.evaluate_folder(generated_dir, results_uri, _extractors(profile, metrics, device),
                                        reference_dir=reference_dir, run_dir=run_dir, split=split, run_id=run_id,
                                        dataset=dataset, metrics=metrics,
                                        provenance=_provenance(provenance, device), bootstrap=bootstrap,
                                        **(scoring or {}))
    return _plain_rows(rows)
