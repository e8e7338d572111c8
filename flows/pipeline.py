"""The parent flow: ingest → embed → train → generate → evaluate → report, as one run from one config file."""

from __future__ import annotations

from prefect import flow

from flows.embed import embed_flow
from flows.evaluate import evaluate_flow
from flows.generate import generate_flow
from flows.ingest import ingest_flow
from flows.report import report_flow
from flows.runners import stage_options
from flows.train import train_flow
from v2a.config import PipelineConfig, config_from_dict, load_config
from v2a.locking import run_lock


def default_run_id(cfg: PipelineConfig) -> str:
    # Same config → same run id, so a re-run resumes the same generation set instead of starting anew.
    return cfg.run_id or f"run-{cfg.digest('profile', 'data', 'embed', 'train', 'generate')[:10]}"


@flow(name="pipeline", log_prints=True)
def pipeline_flow(config: str | dict) -> dict:
    cfg = config_from_dict(config) if isinstance(config, dict) else load_config(config)
    run_id = default_run_id(cfg)
    d, e, t, g = cfg.data, cfg.embed, cfg.train, cfg.generate
    # One run at a time writes OUT; a second fails at once naming the first. Every stage runs on the
    # configured task runner and keeps its cached results in cache.location.
    with run_lock(cfg.out), stage_options(cfg) as stage:
        stage(ingest_flow)(cfg.out, csv=d.csv, videos=d.videos, images=d.images, dataset=d.dataset)
        stage(embed_flow)(cfg.out, profile=cfg.profile, num_frames=e.num_frames, max_seconds=e.max_seconds,
                          shard_size=e.shard_size, batch_size=e.batch_size, device=e.device,
                          frame_rate=e.frame_rate, decoder=e.decoder, workers=e.workers, pool=e.pool)
        checkpoint = None
        if g.conditioning == "mapper":
            stage(train_flow)(cfg.layout.embeddings, cfg.mapper_dir, mapper=t.mapper, aggregator=t.aggregator,
                              options=t.options, restart_incompatible=True, clips=cfg.layout.clips)
            checkpoint = cfg.mapper_dir
        gen = stage(generate_flow)(
            cfg.layout.embeddings, cfg.out, run_id, profile=cfg.profile, checkpoint=checkpoint, split=g.split,
            conditioning=g.conditioning, samples=g.samples, seconds=g.seconds, steps=g.steps,
            guidance_scale=g.guidance_scale, scheduler=g.scheduler, mapper_guidance=g.mapper_guidance,
            mapper_steps=g.mapper_steps, batch_size=g.batch_size, seed=g.seed, max_clips=g.max_clips,
            device=g.device)
        results = stage(evaluate_flow)(gen["gen_dir"], cfg.out, profile=cfg.profile, split=cfg.evaluate.split,
                                       dataset=d.dataset, metrics=cfg.evaluate.metrics, device=e.device)
        report = stage(report_flow)(cfg.out, [run_id], profile=cfg.profile, device=e.device)
    summarise_run(cfg, run_id, gen["gen_dir"], report["index"])
    return {"run_id": run_id, "gen_dir": gen["gen_dir"], "results": results, "report": report["index"]}


def summarise_run(cfg: PipelineConfig, run_id: str, gen_dir: str, report_index: str) -> None:
    """The run's closing artifact: where every output is, with row counts, and links to the reports."""
    from prefect.artifacts import create_markdown_artifact

    from v2a.status import run_summary_markdown

    links = {"listening report": report_index, "results table": cfg.layout.results, "generated audio": gen_dir,
             "mapper checkpoint": cfg.mapper_dir if cfg.generate.conditioning == "mapper" else None}
    create_markdown_artifact(key="pipeline-summary", markdown=run_summary_markdown(cfg.out, run_id, links),
                             description=f"Outputs of pipeline run {run_id} in {cfg.out}")
