"""The parent flow: ingest → embed → train → generate → evaluate, as one run from one config file."""

from __future__ import annotations

from prefect import flow

from flows.embed import embed_flow
from flows.evaluate import evaluate_flow
from flows.generate import generate_flow
from flows.ingest import ingest_flow
from flows.train import train_flow
from v2a.config import PipelineConfig, config_from_dict, load_config


def default_run_id(cfg: PipelineConfig) -> str:
    # Same config → same run id, so a re-run resumes the same generation set instead of starting anew.
    return cfg.run_id or f"run-{cfg.digest('profile', 'data', 'embed', 'train', 'generate')[:10]}"


@flow(name="pipeline", log_prints=True)
def pipeline_flow(config: str | dict) -> dict:
    cfg = config_from_dict(config) if isinstance(config, dict) else load_config(config)
    run_id = default_run_id(cfg)
    d, e, t, g = cfg.data, cfg.embed, cfg.train, cfg.generate
    ingest_flow(cfg.out, csv=d.csv, videos=d.videos, images=d.images, dataset=d.dataset)
    embed_flow(cfg.out, profile=cfg.profile, num_frames=e.num_frames, max_seconds=e.max_seconds,
               shard_size=e.shard_size, batch_size=e.batch_size, device=e.device)
    checkpoint = None
    if g.conditioning == "mapper":
        train_flow(cfg.embeddings_uri, cfg.mapper_dir, mapper=t.mapper, aggregator=t.aggregator, options=t.options)
        checkpoint = cfg.mapper_dir
    gen = generate_flow(cfg.embeddings_uri, cfg.out, run_id, profile=cfg.profile, checkpoint=checkpoint,
                        split=g.split, conditioning=g.conditioning, samples=g.samples, seconds=g.seconds,
                        steps=g.steps, guidance_scale=g.guidance_scale, scheduler=g.scheduler,
                        mapper_guidance=g.mapper_guidance, mapper_steps=g.mapper_steps, batch_size=g.batch_size,
                        seed=g.seed, max_clips=g.max_clips, device=g.device)
    results = evaluate_flow(gen["gen_dir"], cfg.out, profile=cfg.profile, split=cfg.evaluate.split,
                            dataset=d.dataset, metrics=cfg.evaluate.metrics, device=e.device)
    return {"run_id": run_id, "gen_dir": gen["gen_dir"], "results": results}
