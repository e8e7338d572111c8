"""Flow: one or more generation runs → a static listening report (index.html + assets), linked as an artifact."""

from __future__ import annotations

from prefect import flow

from prefect.artifacts import create_markdown_artifact

from flows.naming import artifact_key, stage_run_name
from flows.runners import bounded_thread_runner
from tasks.caching import call
from tasks.report import report_task
from v2a.config import EmbedConfig, GenerateConfig, default
from v2a.stages.report import DEFAULT_CLIPS, markdown_summary


@flow(name="report", log_prints=True, task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("report"))
def report_flow(runs_root: str, run_ids: list[str], out: str | None = None, profile: str | None = None,
                clips: int = DEFAULT_CLIPS, seed: int = default(GenerateConfig, "seed"),
                device: str = default(EmbedConfig, "device")) -> dict:
    summary = call(report_task, runs_root, list(run_ids), out, profile, clips, seed, device)
    create_markdown_artifact(key=artifact_key("listening-report", "-".join(run_ids)), markdown=markdown_summary(summary),
                             description=f"Listening report of {', '.join(summary['runs'])}")
    print(f"report: {len(summary['clips'])} clips → {summary['index']}")
    return summary
