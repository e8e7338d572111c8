"""Flow: one or more generation runs → a static listening report (index.html + assets), summed up as an artifact
(`v2a.stages.report.STAGE`)."""

from __future__ import annotations

from prefect import flow

from flows.artifacts import markdown_artifact
from flows.naming import FLOW_OPTIONS, artifact_key, run_key, stage_run_name, tagged_run
from flows.runners import bounded_thread_runner, prepare_model_process
from flows.stage import run_stage
from v2a.config import EmbedConfig, GenerateConfig, ReportConfig, default
from v2a.io.layout import RunLayout
from v2a.stages.report import DEFAULT_CLIPS, markdown_summary
from v2a.stages.shape import StageRun


@flow(name="report", task_runner=bounded_thread_runner(), flow_run_name=stage_run_name("report"), **FLOW_OPTIONS)
def report_flow(runs_root: str, run_ids: list[str], out: str | None = None, profile: str | None = None,
                clips: int = DEFAULT_CLIPS, seed: int = default(GenerateConfig, "seed"),
                device: str = default(EmbedConfig, "device")) -> dict:
    with tagged_run("report", profile=profile, clips=RunLayout(runs_root).clips):
        prepare_model_process()  # before any task thread (v2a.runtime.imports)
        key = run_key(runs_root, "-".join(run_ids))
        run = StageRun(runs_root, profile, device, {"run_ids": list(run_ids), "page": out, "seed": seed})
        outcome = run_stage("report", ReportConfig(clips=clips), run, key, title="listening report")
        summary = {**outcome.summary, "cached": outcome.results[0]["cached"], "made_by": outcome.results[0]["made_by"]}
        # The page's headline (metrics, a few clips' pictures) in the UI itself: the page is a local file.
        markdown_artifact(artifact_key("listening-report", key), markdown_summary(summary),
                          f"Listening report of {', '.join(summary['runs'])}", result=summary)
        return summary
