"""Flow: a generation run → FD / FAD / CS (+ KL, IS) rows appended to the results table."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks.evaluate import evaluate_task


@flow(name="evaluate", log_prints=True)
def evaluate_flow(generations: str, out: str, profile: str = "paper", split: str = "test", dataset: str = "vggsound",
                  metrics: list[str] | None = None, reference: str | None = None, device: str = "cpu") -> list[dict]:
    if reference is not None:
        raise ValueError("--reference folders arrive with the evaluation issue; evaluate a pipeline run folder")
    rows = evaluate_task(generations, out, profile, split, dataset, metrics or ["fd", "fad", "cs", "kl", "is"], device)
    create_table_artifact(
        key="evaluation", description=f"Metrics of {generations} on split {split}",
        table=[{"metric": r["metric"], "value": round(r["value"], 4), "extractor": r["extractor"] or "",
                "n_clips": r["n_clips"]} for r in rows])
    for r in rows:
        print(f"evaluate: {r['metric']} = {r['value']:.4f} ({r['extractor'] or '-'}, {r['n_clips']} clips)")
    return rows
