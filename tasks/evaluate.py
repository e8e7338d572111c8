"""Prefect task over v2a.stages.evaluate's folder path (any folder of audio; a `gpu` slot while the extractors run
on CUDA). A generation set of the pipeline is the evaluate stage's items: tasks/stage.py."""

from __future__ import annotations


from prefect import task

from tasks.operations import RESULTS, RETRIES, jsonable, model_slot
from v2a.stages import evaluate
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


def _extractors(profile: str, metrics: list[str], device: str) -> dict:
    return {n: get_model(profile, f"extractor:{n}", device) for n in sorted({extractor_of(m) for m in metrics})}


@task(name="evaluate-folder", **RETRIES, **RESULTS)
def evaluate_folder_task(generated_dir: str, results_uri: str, profile: str, reference_dir: str | None,
                         run_dir: str | None, split: str, dataset: str, metrics: list[str], device: str,
                         run_id: str | None = None, provenance: dict | None = None,
                         scoring: dict | None = None, bootstrap: int = 0, keep_features: bool = False) -> list[dict]:
    with model_slot(device):
        rows = evaluate.evaluate_folder(generated_dir, results_uri, _extractors(profile, metrics, device),
                                        reference_dir=reference_dir, run_dir=run_dir, split=split, run_id=run_id,
                                        dataset=dataset, metrics=metrics,
                                        provenance=_provenance(provenance, device), bootstrap=bootstrap,
                                        keep_features=keep_features,
                                        **(scoring or {}))
    return _plain_rows(rows)
