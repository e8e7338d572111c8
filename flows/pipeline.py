"""The parent flow: ingest → embed → train → generate → evaluate → report, as one run from one config.

Its parameter is the typed configuration itself (v2a.config.PipelineConfig), so a deployment's run
form shows every section and field with its description and default; a path or URI of a YAML file
is accepted in its place and validated against the same model.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import BeforeValidator

from flows.embed import embed_flow
from flows.evaluate import evaluate_flow
from flows.generate import generate_flow
from flows.ingest import ingest_flow
from flows.naming import run_name
from flows.report import report_flow
from flows.runners import stage_options
from flows.train import train_flow
from v2a.config import PipelineConfig, as_config, load_config
from v2a.core.locking import run_lock


def default_run_id(cfg: PipelineConfig) -> str:
    # Same config → same run id, so a re-run resumes the same generation set instead of starting anew.
    return cfg.run_id or f"run-{cfg.digest('profile', 'data', 'embed', 'train', 'generate')[:10]}"


def _file_or_fields(value):
    """A config file's path or URI is read and checked like fields given in the form."""
    return load_config(value) if isinstance(value, str) else value


PipelineParameter = Annotated[PipelineConfig, BeforeValidator(_file_or_fields)]


def _pipeline_run_name() -> str:
    from prefect.runtime import flow_run

    try:
        return run_name("pipeline", default_run_id(as_config(flow_run.parameters["config"])))
    except Exception:  # a name must never stop a run; the config is checked again by the flow itself
        return run_name("pipeline", None)


@flow(name="pipeline", log_prints=True, flow_run_name=_pipeline_run_name)
def pipeline_flow(config: PipelineParameter) -> dict:
    """Run every stage of one configuration.

    Args:
        config: the pipeline configuration (its sections and fields are described in v2a/config.py), or
            the path or URI of a YAML file holding it.
    """
    cfg = as_config(config).check_environment()
    run_id = default_run_id(cfg)
    d, t, g = cfg.data, cfg.train, cfg.generate
    # One run at a time writes OUT; a second fails at once naming the first. Every stage runs on the
    # configured task runner and keeps its cached results in cache.location.
    with run_lock(cfg.out), stage_options(cfg, run_id) as stage:
        stage(ingest_flow)(cfg.out, data=d)
        stage(embed_flow)(cfg.out, profile=cfg.profile, embed=cfg.embed)
        checkpoint = None
        if g.conditioning == "mapper":
            stage(train_flow)(cfg.layout.embeddings, cfg.mapper_dir, train=t, restart_incompatible=True,
                              clips=cfg.layout.clips)
            checkpoint = cfg.mapper_dir
        gen = stage(generate_flow)(cfg.layout.embeddings, cfg.out, run_id, profile=cfg.profile,
                                   checkpoint=checkpoint, generate=g)
        results = stage(evaluate_flow)(gen["gen_dir"], cfg.out, profile=cfg.profile, evaluate=cfg.evaluate,
                                       dataset=d.dataset, device=cfg.embed.device, provenance=provenance(cfg))
        report = stage(report_flow)(cfg.out, [run_id], profile=cfg.profile, device=cfg.embed.device)
    summarise_run(cfg, run_id, gen["gen_dir"], report["index"])
    return {"run_id": run_id, "gen_dir": gen["gen_dir"], "results": results, "report": report["index"]}


def provenance(cfg: PipelineConfig) -> dict:
    """What the results rows record about the configuration that produced them."""
    return {"config_digest": cfg.digest(), "profile": cfg.profile, "run_seed": cfg.generate.seed}


def summarise_run(cfg: PipelineConfig, run_id: str, gen_dir: str, report_index: str) -> None:
    """The run's closing artifact: where every output is, with row counts, and links to the reports."""
    from prefect.artifacts import create_markdown_artifact

    from flows.naming import artifact_key
    from v2a.tools.status import run_summary_markdown

    links = {"listening report": report_index, "results table": cfg.layout.results, "generated audio": gen_dir,
             "mapper checkpoint": cfg.mapper_dir if cfg.generate.conditioning == "mapper" else None}
    create_markdown_artifact(key=artifact_key("pipeline-summary", run_id),
                             markdown=run_summary_markdown(cfg.out, run_id, links),
                             description=f"Outputs of pipeline run {run_id} in {cfg.out}")
