"""Flow: a generation run → FD / FAD / CS (+ KL, IS) rows appended to the results table."""

from __future__ import annotations

from prefect import flow

from flows.runners import bounded_thread_runner
from prefect.artifacts import create_table_artifact

from tasks.caching import call
from tasks.evaluate import evaluate_folder_task, evaluate_task
from v2a import storage
from v2a.io.layout import GenerationLayout, RunLayout


@flow(name="evaluate", log_prints=True, task_runner=bounded_thread_runner())
def evaluate_flow(generations: str, out: str, profile: str = "paper", split: str = "test", dataset: str = "vggsound",
                  metrics: list[str] | None = None, reference: str | None = None, device: str = "cpu",
                  run_id: str | None = None) -> list[dict]:
    metrics = metrics or ["fd", "fad", "cs", "kl", "is"]
    layout = RunLayout(out)
    if storage.exists(GenerationLayout(generations).table) and reference is None:
        rows = call(evaluate_task, generations, out, profile, split, dataset, metrics, device)["rows"]
    else:
        # Any folder of audio (another system's outputs, say), scored against a reference folder or the run's split.
        run_dir = out if storage.exists(layout.clips) else None
        rows = evaluate_folder_task(generations, layout.results, profile, reference, run_dir, split,
                                    dataset, metrics, device, run_id=run_id)
    create_table_artifact(key="evaluation", table=_report_rows(rows),
                          description=f"Metrics of {generations} on split {split}, next to the paper's Table 1 "
                                      "(quoted; real weights, VGGSound test, 10-s clips: compare only like protocols)")
    for r in rows:
        print(f"evaluate: {r['metric']} = {r['value']:.4f} ({r['extractor'] or '-'}, {r['n_clips']} clips)")
    return rows


def _report_rows(rows: list[dict]) -> list[dict]:
    from v2a.metrics.paper import table_rows

    ours = {r["metric"]: r["value"] for r in rows}
    table = [{"source": f"this run ({rows[0]['n_clips']} clips)" if rows else "this run",
              "fd": ours.get("fd"), "fad": ours.get("fad"), "cs": ours.get("cs"), "gen_time_s": ours.get("gen_time_s")}]
    for p in table_rows("table1"):
        table.append({"source": f"paper: {p['method']} (quoted)", "fd": p["fd"], "fad": p["fad"], "cs": p["cs"],
                      "gen_time_s": p["seconds_per_sample"]})
    return [{k: ("" if v is None else (round(v, 4) if isinstance(v, float) else v)) for k, v in r.items()} for r in table]
