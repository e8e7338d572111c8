"""The parent flow: ingest → embed → train → generate → evaluate → report, as one run from one config.

It takes the configuration one of two ways, exactly one per run: `config`, the typed configuration
itself (v2a.config.PipelineConfig; a deployment's run form shows every section and field with its
description and default), or `config_file`, the path or URI of a YAML file holding it (what
`prefect deployment run 'pipeline/v2a-pipeline' -p config_file=...` passes), checked against the
same model.
"""

from __future__ import annotations

import os

from prefect import flow, tags

from flows.artifacts import markdown_artifact
from flows.errors import describe
from flows.embed import embed_flow
from flows.evaluate import evaluate_flow
from flows.generate import generate_flow
from flows.ingest import ingest_flow
from flows.naming import FLOW_OPTIONS, artifact_key, location_digest, run_key, run_name, tag_run
from flows.report import report_flow
from flows.runners import stage_options
from flows.train import train_flow
from v2a.config import ConfigError, PipelineConfig, as_config, load_config
from v2a.core.locking import run_lock
from v2a.core.markdown import LOCAL_NOTE, location, web_url


def default_run_id(cfg: PipelineConfig) -> str:
    """`run-<config digest>-<output digest>`: the same config and output give the same run id, so a re-run
    resumes the same generation set; two outputs never share one (nor the Prefect names made from it)."""
    return cfg.run_id or (f"run-{cfg.digest('profile', 'data', 'embed', 'train', 'generate')[:8]}-"
                          f"{location_digest(cfg.out)}")


def given_config(config: PipelineConfig | dict | None, config_file: str | None) -> PipelineConfig:
    """The configuration a run was handed: its fields, or a file; exactly one of the two. Every refusal is one
    ConfigError line (a deployment run shows it as the run's state message)."""
    if config is not None and config_file is not None:
        raise ConfigError("pipeline: `config` and `config_file` were both given: give one, not both (`config`: the "
                          "configuration's fields; `config_file`: the path or URI of a YAML file holding them)")
    if config is None and config_file is None:
        raise ConfigError("pipeline: neither `config` nor `config_file` was given: give one (`config`: the "
                          "configuration's fields; `config_file`: the path or URI of a YAML file holding them)")
    if config is not None:
        return as_config(config)
    try:
        return load_config(config_file)
    except OSError as err:
        line = describe(err) or str(err)
        raise ConfigError(f"pipeline: config_file {line} (a relative path is read from {os.getcwd()})") from None


def failed_run_key(config, config_file) -> str:
    """What names a run whose configuration cannot be read: what it was given, not a timestamp."""
    if config is not None and config_file is not None:
        return "config-and-config-file"
    if config is None and config_file is None:
        return "no-config"
    out = config.get("out") if isinstance(config, dict) else getattr(config, "out", None)
    where = str(config_file) if config_file is not None else out
    return f"bad-config-{run_key(where)}" if where else "bad-config"


def _pipeline_run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    config, config_file = params.get("config"), params.get("config_file")
    try:
        cfg = given_config(config, config_file)
        return run_name("pipeline", run_key(cfg.out, default_run_id(cfg)))
    except Exception:  # a name must never stop a run; the flow itself reports the error
        try:
            return run_name("pipeline", failed_run_key(config, config_file))
        except Exception:  # noqa: BLE001 - e.g. an `out` that is not a string
            return run_name("pipeline", "bad-config")


# Prefect's own check of the parameters is off: it would report a field of a `config` that should not
# have been given at all before "give one, not both", in several lines. given_config checks both.
@flow(name="pipeline", flow_run_name=_pipeline_run_name, validate_parameters=False, **FLOW_OPTIONS)
def pipeline_flow(config: PipelineConfig | None = None, config_file: str | None = None) -> dict:
    """Run every stage of one configuration.

    Args:
        config: the pipeline configuration (its sections and fields are described in v2a/config.py).
        config_file: instead of `config`, the path or URI of a YAML file holding it (relative paths
            are read from the folder the flow runs in: the repository root for the deployments).
    """
    cfg = given_config(config, config_file).check_environment()
    run_id = default_run_id(cfg)
    key = run_key(cfg.out, run_id)
    run_tags = tag_run("pipeline", profile=cfg.profile, dataset=cfg.data.dataset)
    d, t, g = cfg.data, cfg.train, cfg.generate
    # One run at a time writes OUT; a second fails at once naming the first. Every stage runs on the
    # configured task runner and keeps its cached results in cache.location; its runs are named
    # after the stage and this run's key (`embed-run-1a2b3c4d-5e6f7a`), and carry the run's profile
    # and dataset tags (train, which has no profile of its own, too) beside their own stage tag.
    shared = [tag for tag in run_tags if not tag.startswith("stage:")]
    with run_lock(cfg.out), stage_options(cfg, key) as stage, tags(*shared):
        ingested = stage(ingest_flow)(cfg.out, data=d)
        embedded = stage(embed_flow)(cfg.out, profile=cfg.profile, embed=cfg.embed)
        checkpoint, trained = None, None
        if g.conditioning == "mapper":
            trained = stage(train_flow)(cfg.layout.embeddings, cfg.mapper_dir, train=t, restart_incompatible=True,
                                        clips=cfg.layout.clips)
            checkpoint = cfg.mapper_dir
        gen = stage(generate_flow)(cfg.layout.embeddings, cfg.out, run_id, profile=cfg.profile,
                                   checkpoint=checkpoint, generate=g)
        results = stage(evaluate_flow)(gen["gen_dir"], cfg.out, profile=cfg.profile, evaluate=cfg.evaluate,
                                       dataset=d.dataset, device=cfg.embed.device, provenance=provenance(cfg))
        report = stage(report_flow)(cfg.out, [run_id], profile=cfg.profile, device=cfg.embed.device)
    summarise_run(cfg, run_id, key, {"ingest": ingested, "embed": embedded, "train": trained, "generate": gen,
                                     "evaluate": results, "report": report})
    return {"run_id": run_id, "run_key": key, "gen_dir": gen["gen_dir"], "results": results,
            "report": report["index"]}


def provenance(cfg: PipelineConfig) -> dict:
    """What the results rows record about the configuration that produced them."""
    return {"config_digest": cfg.digest(), "profile": cfg.profile, "run_seed": cfg.generate.seed}


def summarise_run(cfg: PipelineConfig, run_id: str, key: str, stages: dict) -> None:
    """The run's closing artifact, from what each stage flow returned: what it did, where its output is, the
    metrics, and where the reports are. (`v2a status` reads the tables instead: it runs without the pipeline.)"""
    markdown_artifact(artifact_key("pipeline-summary", key), summary_markdown(cfg, run_id, stages),
                      f"Outputs of pipeline run {run_id} in {cfg.out}")


def summary_markdown(cfg: PipelineConfig, run_id: str, stages: dict) -> str:
    """Markdown for a person looking at a finished run (links where a browser can open them, paths to copy for
    local files: v2a.core.markdown). `stages`: each stage flow's return value, None for a stage not run."""
    ingest, embed, train, gen, rows, report = (stages.get(k) for k in ("ingest", "embed", "train", "generate",
                                                                       "evaluate", "report"))
    layout = cfg.layout
    table = [  # stage, rows it holds (or files, clips), errors, where, what else
        ("ingest", ingest["n_clips"], ingest["n_errors"], layout.clips,
         "(from the task cache)" if ingest.get("cached") else ""),
        ("embed", embed["rows_total"], embed["errors_total"], layout.embeddings,
         f"{embed['rows']} new rows; {embed['skipped']} of {embed['shards']} shards already done"),
        ("train", 1 if train else None, None, cfg.mapper_dir if train else None,
         f"{train.get('epochs_completed')} epochs" if train else "not run (no mapper)"),
        ("generate", gen["generated"] + gen["skipped"], None, gen["gen_dir"],
         f"{gen['generated']} files written, {gen['skipped']} already there"),
        ("evaluate", len(rows), None, layout.results, ""),
        ("report", len(report["clips"]), None, report["index"], "clips"),
    ]
    lines = [f"# Pipeline run `{run_id}`", "", f"Output location: `{cfg.out}`", "",
             "| stage | done | rows | errors | where |", "|---|---|---|---|---|"]
    for name, written, errors, where, detail in table:
        lines.append(f"| {name} | {'yes' if where else 'no'} | {'-' if written is None else written} | "
                     f"{'-' if errors is None else errors} | " + (f"`{where}` " if where else "") + f"{detail} |")
    if rows:
        lines += ["", "## Metrics", "", "| metric | value | extractor | clips |", "|---|---|---|---|"]
        lines += [f"| {r['metric']} | {r['value']:.4f} | {r['extractor'] or '-'} | {r['n_clips']} |" for r in rows]
    links = {"listening report": report["index"], "results table": layout.results, "generated audio": gen["gen_dir"],
             "mapper checkpoint": cfg.mapper_dir if train else None}
    shown = {name: uri for name, uri in links.items() if uri}
    lines += ["", "## Reports and outputs", ""]
    lines += [f"- {location(uri, name, how=None)}" for name, uri in shown.items()]
    if any(web_url(uri) is None for uri in shown.values()):
        lines += ["", f"Paths are {LOCAL_NOTE}. The listening report is a folder that opens in any browser "
                      "there, and can be copied or zipped as it is."]
    return "\n".join(lines) + "\n"
