"""Flow: a generation run → the protocol's metric rows (v2a-mapper: FD / FAD / CS / KL / IS; av-benchmark:
MMAudio's columns) appended to the results table.

When rows are written it emits the Prefect event `v2a.results.written` (resource
`v2a.results.<run key>`: the run id and a digest of the output location), related to the flow run,
the deployment that started it (the pipeline's, for a pipeline run) and the output location
(`v2a.location.<digest>`); an automation can act on it (README, "Automations").
"""

from __future__ import annotations

from prefect import flow

from flows.artifacts import table_artifact
from flows.naming import FLOW_OPTIONS, artifact_key, location_digest, run_key, run_name, tagged_run
from flows.runners import bounded_thread_runner, prepare_model_process
from flows.stage import run_stage
from tasks.evaluate import evaluate_folder_task
from v2a.core import storage
from v2a.config import DEFAULT_PROFILE, DataConfig, EmbedConfig, EvaluateConfig, default
from v2a.io.layout import GenerationLayout, RunLayout
from v2a.io.results import interval_text
from v2a.stages.evaluate import check_complete, scoring_of
from v2a.stages.shape import StageRun

RESULTS_EVENT = "v2a.results.written"


def _run_name() -> str:
    """`evaluate-<generation set>-<digest of out>`: the sets of one output location get runs of their own names."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    if not params.get("out"):
        return run_name("evaluate", None)
    scored = params.get("run_id") or (GenerationLayout(params["generations"]).run_id if params.get("generations")
                                      else None)
    return run_name("evaluate", run_key(params["out"], scored))


@flow(name="evaluate", task_runner=bounded_thread_runner(), flow_run_name=_run_name, **FLOW_OPTIONS)
def evaluate_flow(generations: str, out: str, profile: str = DEFAULT_PROFILE, evaluate: EvaluateConfig = EvaluateConfig(),
                  dataset: str = default(DataConfig, "dataset"), reference: str | None = None,
                  device: str = default(EmbedConfig, "device"), run_id: str | None = None,
                  provenance: dict | None = None, allow_partial: bool = False) -> list[dict]:
    """provenance: what the caller knows of the run (v2a.core.provenance.PROVENANCE_KEYS), recorded in every row.
    allow_partial: score a generation set whose generation did not finish (its rows say `complete` = false);
    without it such a set fails the run with one line saying how far it got."""
    with tagged_run("evaluate", profile=profile, dataset=dataset):
        prepare_model_process()  # before any task thread (v2a.runtime.imports)
        layout, metrics, split = RunLayout(out), evaluate.metric_list(), evaluate.split
        scoring = scoring_of(evaluate)
        result = None
        if storage.exists(GenerationLayout(generations).table) and reference is None:
            complete = check_complete(generations, allow_partial)  # before any task: a refusal is not retried
            # One task per extractor and its metrics, side by side; then their rows are written as one part.
            run = StageRun(out, profile, device, {"generations": generations, "dataset": dataset,
                                                  "complete": complete, "provenance": provenance})
            outcome = run_stage("evaluate", evaluate, run, run_key(out, GenerationLayout(generations).run_id))
            result, rows = outcome.closing, outcome.summary["rows"]
        else:
            # Any folder of audio (another system's outputs, say), scored against a reference folder or the run's split.
            run_dir = out if storage.exists(layout.clips) else None
            rows = evaluate_folder_task(generations, layout.results, profile, reference, run_dir, split,
                                        dataset, metrics, device, run_id=run_id, provenance=provenance, scoring=scoring,
                                        bootstrap=evaluate.bootstrap, keep_features=evaluate.keep_features)
        scored = rows[0]["run_id"] if rows else (run_id or GenerationLayout(generations).run_id)
        key = run_key(out, scored)
        table_artifact(artifact_key("evaluation", key), _report_rows(rows),
                       f"Metrics of {generations} on split {split}, next to the paper's Table 1 (quoted; real "
                       "weights, VGGSound test, 10-s clips: compare only like protocols)", result=result)
        if not (result or {}).get("cached"):
            _emit_results_written(scored, key, out, layout.results, rows)
        for r in rows:
            ci = interval_text(r.get("ci_low"), r.get("ci_high"))
            print(f"evaluate: {r['metric']} = {r['value']:.4f}" + ("" if ci == "-" else f" 95% CI {ci}")
                  + f" ({r['extractor'] or '-'}, {r['n_clips']} clips)"
                  + (" from the task cache" if (result or {}).get("cached") else ""))
        return rows


def _emit_results_written(run_id: str, key: str, out: str, results_uri: str, rows: list[dict]) -> None:
    from prefect.events import emit_event

    emit_event(event=RESULTS_EVENT,
               resource={"prefect.resource.id": f"v2a.results.{key}", "prefect.resource.name": f"{run_id} in {out}",
                         "v2a.run-id": run_id},
               related=_related_resources(out),
               payload={"results": str(results_uri), "run_id": run_id, "out": str(out), "rows": len(rows),
                        "metrics": {r["metric"]: r["value"] for r in rows}})


def _related_resources(out: str) -> list[dict]:
    """The flow run writing the rows, the deployment that started it (or the run it is part of), and
    the output location."""
    from prefect.runtime import flow_run

    from v2a.core.storage import canonical

    related = []
    if flow_run.id:
        related.append({"prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                        "prefect.resource.role": "flow-run", "prefect.resource.name": flow_run.name})
        related += _deployment_of(flow_run.root_flow_run_id or flow_run.id)
    related.append({"prefect.resource.id": f"v2a.location.{location_digest(out)}",
                    "prefect.resource.role": "output-location", "prefect.resource.name": canonical(out)})
    return related


def _deployment_of(flow_run_id) -> list[dict]:
    """The deployment the run (a pipeline run, for a stage run inside it) was started from: [] when none."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            if not run.deployment_id:
                return []
            deployment = client.read_deployment(run.deployment_id)
    except Exception as err:  # noqa: BLE001 - the event still goes out, naming the run and the location
        print(f"evaluate: the event names no deployment ({type(err).__name__}: {err})")
        return []
    return [{"prefect.resource.id": f"prefect.deployment.{deployment.id}", "prefect.resource.role": "deployment",
             "prefect.resource.name": deployment.name}]


def _report_rows(rows: list[dict]) -> list[dict]:
    from v2a.metrics.paper import table_rows

    ours = {r["metric"]: r["value"] for r in rows}
    table = [{"source": f"this run ({rows[0]['n_clips']} clips)" if rows else "this run",
              "fd": ours.get("fd"), "fad": ours.get("fad"), "cs": ours.get("cs"), "gen_time_s": ours.get("gen_time_s")}]
    for p in table_rows("table1"):
        table.append({"source": f"paper: {p['method']} (quoted)", "fd": p["fd"], "fad": p["fad"], "cs": p["cs"],
                      "gen_time_s": p["seconds_per_sample"]})
    return [{k: ("" if v is None else (round(v, 4) if isinstance(v, float) else v)) for k, v in r.items()} for r in table]
