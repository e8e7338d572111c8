"""Flow: a generation run → FD / FAD / CS (+ KL, IS) rows appended to the results table.

When rows are written it emits the Prefect event `v2a.results.written` (resource
`v2a.results.<run id>`), which an automation can act on (README, "Automations").
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.naming import artifact_key, stage_run_name
from flows.runners import bounded_thread_runner
from tasks.caching import call
from tasks.evaluate import evaluate_folder_task, evaluate_task
from v2a.core import storage
from v2a.config import DEFAULT_PROFILE, DataConfig, EmbedConfig, EvaluateConfig, default
from v2a.io.layout import GenerationLayout, RunLayout

RESULTS_EVENT = "v2a.results.written"


@flow(name="evaluate", log_prints=True, task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("evaluate"))
def evaluate_flow(generations: str, out: str, profile: str = DEFAULT_PROFILE, evaluate: EvaluateConfig = EvaluateConfig(),
                  dataset: str = default(DataConfig, "dataset"), reference: str | None = None,
                  device: str = default(EmbedConfig, "device"), run_id: str | None = None,
                  provenance: dict | None = None) -> list[dict]:
    """provenance: what the caller knows of the run (v2a.core.provenance.PROVENANCE_KEYS), recorded in every row."""
    layout, metrics, split = RunLayout(out), list(evaluate.metrics), evaluate.split
    cached = False
    if storage.exists(GenerationLayout(generations).table) and reference is None:
        result = call(evaluate_task, generations, out, profile, split, dataset, metrics, device, provenance)
        rows, cached = result["rows"], result["cached"]
    else:
        # Any folder of audio (another system's outputs, say), scored against a reference folder or the run's split.
        run_dir = out if storage.exists(layout.clips) else None
        rows = evaluate_folder_task(generations, layout.results, profile, reference, run_dir, split,
                                    dataset, metrics, device, run_id=run_id, provenance=provenance)
    scored = rows[0]["run_id"] if rows else (run_id or GenerationLayout(generations).run_id)
    create_table_artifact(key=artifact_key("evaluation", scored), table=_report_rows(rows),
                          description=f"Metrics of {generations} on split {split}, next to the paper's Table 1 "
                                      "(quoted; real weights, VGGSound test, 10-s clips: compare only like protocols)")
    if not cached:
        _emit_results_written(scored, layout.results, rows)
    for r in rows:
        print(f"evaluate: {r['metric']} = {r['value']:.4f} ({r['extractor'] or '-'}, {r['n_clips']} clips)"
              + (" from the task cache" if cached else ""))
    return rows


def _emit_results_written(run_id: str, results_uri: str, rows: list[dict]) -> None:
    from prefect.events import emit_event

    emit_event(event=RESULTS_EVENT,
               resource={"prefect.resource.id": f"v2a.results.{run_id}", "prefect.resource.name": run_id},
               payload={"results": str(results_uri), "rows": len(rows),
                        "metrics": {r["metric"]: r["value"] for r in rows}})


def _report_rows(rows: list[dict]) -> list[dict]:
    from v2a.metrics.paper import table_rows

    ours = {r["metric"]: r["value"] for r in rows}
    table = [{"source": f"this run ({rows[0]['n_clips']} clips)" if rows else "this run",
              "fd": ours.get("fd"), "fad": ours.get("fad"), "cs": ours.get("cs"), "gen_time_s": ours.get("gen_time_s")}]
    for p in table_rows("table1"):
        table.append({"source": f"paper: {p['method']} (quoted)", "fd": p["fd"], "fad": p["fad"], "cs": p["cs"],
                      "gen_time_s": p["seconds_per_sample"]})
    return [{k: ("" if v is None else (round(v, 4) if isinstance(v, float) else v)) for k, v in r.items()} for r in table]
