"""Prefect task over v2a.evaluate."""

from __future__ import annotations

from prefect import task

from v2a import evaluate
from v2a.model_cache import get_model

EXTRACTORS = {"fd": "panns", "kl": "panns", "is": "panns", "fad": "vggish", "cs": "wav2clip"}


@task(name="evaluate-run", tags=["gpu"])
def evaluate_task(gen_dir: str, out: str, profile: str, split: str, dataset: str, metrics: list[str],
                  device: str) -> list[dict]:
    names = sorted({EXTRACTORS[m] for m in metrics})
    extractors = {n: get_model(profile, f"extractor:{n}", device) for n in names}
    return evaluate.evaluate_run(gen_dir, out, extractors, split=split, dataset=dataset, metrics=metrics)
