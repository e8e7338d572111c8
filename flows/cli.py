"""The `v2a` command. It starts the flows, so it lives beside them; the work itself is in `v2a/`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

from flows.errors import (add_debug_flag, describe, quiet_tracebacks, require_clips, require_checkpoint,
                          require_ingest_inputs, require_location, require_table)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Spinning OpenMP threads starve each other when processes share the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _synth(args) -> None:
    from v2a.synth import make_synthetic_dataset

    summary = make_synthetic_dataset(args.out, classes=args.classes, clips_per_class=args.clips_per_class,
                                     seconds=args.seconds, seed=args.seed, one_to_many=args.one_to_many)
    print(summary)


def _ingest(args) -> None:
    require_ingest_inputs(args.csv, args.videos, args.images)
    from flows.ingest import ingest_flow

    ingest_flow(args.out, csv=args.csv, videos=args.videos, images=args.images, dataset=args.dataset)


def _embed(args) -> None:
    require_clips(args.out)  # before Prefect starts: its start-up alone takes seconds
    from flows.embed import embed_flow

    embed_flow(args.out, profile=args.profile, num_frames=args.num_frames, max_seconds=args.max_seconds,
               shard_size=args.shard_size, batch_size=args.batch_size, device=args.device,
               frame_rate=args.frame_rate, decoder=args.decoder, workers=args.workers, pool=args.pool)


def _train(args) -> None:
    require_table(args.embeddings, "embeddings table", "run `v2a embed --out OUT` first and pass OUT/embeddings")
    from flows.train import train_flow

    options = {k: v for k, v in {"depth": args.depth, "expansion": args.expansion, "epochs": args.epochs,
                                 "max_steps": args.max_steps, "batch_size": args.batch_size, "lr": args.lr,
                                 "seed": args.seed, "device": args.device}.items() if v is not None}
    metrics = train_flow(args.embeddings, args.out, mapper=args.mapper, aggregator=args.aggregator, options=options)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}, indent=2))


def _map(args) -> None:
    from v2a.mapping import map_embeddings

    n = map_embeddings(args.checkpoint, args.embeddings, args.out, samples=args.samples,
                       guidance_scale=args.guidance_scale, steps=args.steps, seed=args.seed, device=args.device)
    print(f"map: {n} rows → {args.out}")


def _generate(args) -> None:
    if args.inputs:
        return _generate_inputs(args)
    if not args.embeddings:
        raise ValueError("give INPUT files (images or videos) or --embeddings TABLE")
    from flows.generate import generate_flow

    run_id = args.run_id or time.strftime("gen-%Y%m%d-%H%M%S")
    generate_flow(args.embeddings, args.out, run_id, profile=args.profile, checkpoint=args.checkpoint,
                  split=args.split, conditioning=args.conditioning, samples=args.samples, seconds=args.seconds or 10.0,
                  steps=args.steps, guidance_scale=args.guidance_scale, scheduler=args.scheduler,
                  mapper_guidance=args.mapper_guidance, mapper_steps=args.mapper_steps, batch_size=args.batch_size,
                  seed=args.seed, max_clips=args.max_clips, device=args.device)


def _generate_inputs(args) -> None:
    from v2a.model_cache import empty_text_embedding, get_mapper, get_model
    from v2a.single import generate_for_inputs

    if args.conditioning == "mapper" and not args.checkpoint:
        raise ValueError("--checkpoint DIR is required (or --conditioning no-mapper)")
    if args.conditioning == "text":
        raise ValueError("--conditioning text needs labels: use --embeddings mode, or `v2a interpolate` with text")
    out = args.out or "v2a_out"
    written = generate_for_inputs(
        args.inputs, out, get_model(args.profile, "clip", args.device), get_model(args.profile, "generator", args.device),
        empty_text_embedding(args.profile, args.device),
        mapper=get_mapper(args.checkpoint, args.device) if args.conditioning == "mapper" else None,
        conditioning=args.conditioning, samples=args.samples, seed=args.seed, steps=args.steps,
        guidance_scale=args.guidance_scale, scheduler=args.scheduler, mapper_guidance=args.mapper_guidance,
        mapper_steps=args.mapper_steps, seconds=args.seconds)
    for w in written:
        print(f"{w['input']} → {w['wav']}" + (f" and {w['video']}" if w["video"] else ""))


def _interpolate(args) -> None:
    from v2a.model_cache import empty_text_embedding, get_mapper, get_model
    from v2a.single import interpolate

    paths = interpolate(args.a, args.b, args.steps, args.out, get_model(args.profile, "clip", args.device),
                        get_model(args.profile, "generator", args.device), empty_text_embedding(args.profile, args.device),
                        get_mapper(args.checkpoint, args.device), seed=args.seed, steps=args.generator_steps,
                        guidance_scale=args.guidance_scale, scheduler=args.scheduler, seconds=args.seconds)
    print("\n".join(paths))


def _evaluate(args) -> None:
    from flows.evaluate import evaluate_flow

    evaluate_flow(args.generations, args.out, profile=args.profile, split=args.split, dataset=args.dataset,
                  reference=args.reference, device=args.device, run_id=args.run_id)
    _print_results(args.out, args.run_id)


def _status(args) -> None:
    require_location(args.out)
    from v2a.status import format_status, out_status

    print(format_status(out_status(args.out)))


def _reevaluate(args) -> None:
    from flows.reevaluate import reevaluate_flow

    done = reevaluate_flow(args.out, profile=args.profile, split=args.split, device=args.device)
    print(f"reevaluate: {len(done)} generation set(s) scored" + "".join(f"\n  {d['gen_dir']}" for d in done))


def _check_models(args) -> None:
    from v2a.checks import check_models

    print(f"check-models: {check_models(args.profile, device=args.device).message}")


def _results(args) -> None:
    require_location(args.out)
    _print_results(args.out, args.run)


def _print_results(out: str, run_id: str | None) -> None:
    from v2a.results import format_results

    print(format_results(out, run_id))


def _report(args) -> None:
    from flows.report import report_flow

    summary = report_flow(args.runs_root, args.run, out=args.out, profile=args.profile, clips=args.clips,
                          seed=args.seed, device=args.device)
    print(f"report: open {summary['index']}")


def _local_run():
    """Settings for a flow run started here. Without a Prefect server (PREFECT_API_URL unset) the run
    uses a temporary one that dies with this process, so flow-run heartbeats, which let a server
    notice a crashed run, have no one to tell and only cost each flow up to a second on exit."""
    from contextlib import nullcontext

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        return nullcontext()
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _pipeline(args) -> None:
    from v2a.config import load_config

    load_config(args.config)  # a bad config is refused before Prefect starts
    from flows.pipeline import pipeline_flow

    t0 = time.perf_counter()
    with _local_run():
        summary = pipeline_flow(args.config)
    print(f"pipeline: finished in {time.perf_counter() - t0:.1f} s (run {summary['run_id']})")
    _print_results(load_config(args.config).out, summary["run_id"])
    print(f"listening report: {summary['report']}")


def _demo(args) -> None:
    from flows.pipeline import pipeline_flow
    from v2a.demo import prepare_demo

    t0 = time.perf_counter()
    config_path, out = prepare_demo(args.out, seconds=args.seconds)
    print(f"demo: synthetic data and config ready in {time.perf_counter() - t0:.1f} s → {config_path}")
    t1 = time.perf_counter()
    with _local_run():
        summary = pipeline_flow(config_path)
    print(f"demo: pipeline finished in {time.perf_counter() - t1:.1f} s (run {summary['run_id']})")
    _print_results(out, summary["run_id"])
    print(f"demo: listening report → {summary['report']}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="v2a", description="Silent video and images to sound (V2A-Mapper pipeline).")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic audio-visual dataset (VGGSound-format CSV + mp4 + images)")
    s.add_argument("--out", required=True)
    s.add_argument("--classes", type=int, default=6)
    s.add_argument("--clips-per-class", type=int, default=8)
    s.add_argument("--seconds", type=float, default=2.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--one-to-many", type=int, default=0, help="number of classes with two sound signatures")
    s.set_defaults(func=_synth)

    s = sub.add_parser("ingest", help="VGGSound CSV + videos, or an image folder → clips table")
    s.add_argument("--out", required=True, help="output location (path or URI) of the run's tables")
    s.add_argument("--csv")
    s.add_argument("--videos")
    s.add_argument("--images")
    s.add_argument("--dataset", default="vggsound")
    s.set_defaults(func=_ingest)

    s = sub.add_parser("embed", help="clips table → CLIP/CLAP embeddings shards")
    s.add_argument("--out", required=True)
    s.add_argument("--profile", default="paper", help="model profile: tiny | paper-arch | paper | a YAML path")
    s.add_argument("--num-frames", type=int, default=10, help="evenly spaced frames per video")
    s.add_argument("--frame-rate", type=float, help="frames per second instead of --num-frames")
    s.add_argument("--max-seconds", type=float, default=10.0)
    s.add_argument("--shard-size", type=int, default=256)
    s.add_argument("--batch-size", type=int, default=64, help="CLIP frames per forward pass")
    s.add_argument("--device", default="cpu")
    s.add_argument("--decoder", default="auto", choices=["auto", "pyav", "decord", "torchcodec"],
                   help="video decoder (same frames and audio; auto: the fastest installed)")
    s.add_argument("--workers", type=int, default=0, help="decode workers per shard (0: one per core, at most 16)")
    s.add_argument("--pool", default="auto", choices=["auto", "thread", "process"],
                   help="decode workers as threads or processes (auto: processes from 4 workers)")
    s.set_defaults(func=_embed)

    s = sub.add_parser("train", help="embeddings → mapper checkpoint")
    s.add_argument("--embeddings", required=True)
    s.add_argument("--mapper", default="diff-transformer",
                   choices=["reg-mlp", "reg-transformer", "diff-mlp", "diff-transformer"])
    s.add_argument("--depth", type=int)
    s.add_argument("--expansion", type=int)
    s.add_argument("--aggregator", default="mean", choices=["mean", "middle", "random"])
    s.add_argument("--epochs", type=int)
    s.add_argument("--max-steps", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int)
    s.add_argument("--device")
    s.add_argument("--out", required=True)
    s.set_defaults(func=_train)

    s = sub.add_parser("map", help="mapper checkpoint + embeddings → pseudo-CLAP Parquet rows")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--embeddings", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--samples", type=int, default=1)
    s.add_argument("--guidance-scale", type=float)
    s.add_argument("--steps", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_map)

    s = sub.add_parser("generate", help="images/videos given as INPUT, or the embeddings of a split → AudioLDM audio")
    s.add_argument("inputs", nargs="*", metavar="INPUT", help="image or video files (a video also gets a muxed copy)")
    s.add_argument("--embeddings", help="an embeddings table: generate for its --split into OUT/generations/RUN")
    s.add_argument("--out", help="output folder (default v2a_out for INPUT files)")
    s.add_argument("--checkpoint", help="mapper checkpoint directory (conditioning 'mapper')")
    s.add_argument("--profile", default="paper", help="model profile: tiny | paper-arch | paper | a YAML path")
    s.add_argument("--run-id")
    s.add_argument("--split", default="test")
    s.add_argument("--conditioning", default="mapper", choices=["mapper", "no-mapper", "text"])
    s.add_argument("--samples", type=int, default=1)
    s.add_argument("--seconds", type=float, help="seconds of audio (default: 10, or a video's own length up to 10)")
    s.add_argument("--steps", type=int, default=200, help="AudioLDM sampling steps")
    s.add_argument("--guidance-scale", type=float, default=2.5)
    s.add_argument("--scheduler", default="ddim", choices=["ddim", "dpmsolver++"])
    s.add_argument("--mapper-guidance", type=float, default=0.9)
    s.add_argument("--mapper-steps", type=int, default=200)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-clips", type=int)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_generate)

    s = sub.add_parser("interpolate", help="audio along the line from A to B in CLAP space (image, video or text)")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--steps", type=int, default=5, help="number of audio files along the path")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", default="v2a_interpolation")
    s.add_argument("--profile", default="paper")
    s.add_argument("--generator-steps", type=int, default=200)
    s.add_argument("--guidance-scale", type=float, default=2.5)
    s.add_argument("--scheduler", default="ddim", choices=["ddim", "dpmsolver++"])
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_interpolate)

    s = sub.add_parser("evaluate", help="generated audio (+ reference) → FD, FAD, CS rows in the results table")
    s.add_argument("--generations", required=True, help="a generation run folder or any folder of wav/flac files")
    s.add_argument("--out", required=True, help="run folder holding clips/embeddings; results go to OUT/results")
    s.add_argument("--reference", help="a folder of reference audio (default: the real audio of --split)")
    s.add_argument("--run-id", help="run id of the results rows (default: derived from the folder)")
    s.add_argument("--profile", default="paper", help="model profile: tiny | paper-arch | paper | a YAML path")
    s.add_argument("--split", default="test")
    s.add_argument("--dataset", default="vggsound")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_evaluate)

    s = sub.add_parser("check-models", help="check that the profile's CLAP and generator share one embedding space")
    s.add_argument("--profile", default="paper", help="model profile: tiny | paper-arch | paper | a YAML path")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_check_models)

    s = sub.add_parser("results", help="print the results table")
    s.add_argument("--out", required=True)
    s.add_argument("--run")
    s.set_defaults(func=_results)

    s = sub.add_parser("status", help="runs, stages done, row counts and errors per stage of an output location")
    s.add_argument("--out", required=True, help="a pipeline output location (path or URI)")
    s.set_defaults(func=_status)

    s = sub.add_parser("reevaluate", help="evaluate every generation set that has no results of this v2a version")
    s.add_argument("--out", required=True, help="a pipeline output location, or a folder holding several")
    s.add_argument("--profile", default="paper", help="model profile whose extractors score the audio")
    s.add_argument("--split", default="test")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_reevaluate)

    s = sub.add_parser("report", help="a static HTML listening report of one run, or of several side by side")
    s.add_argument("--run", action="append", required=True, metavar="ID",
                   help="generation run id; repeat (--run A --run B) to compare runs on the same clips")
    s.add_argument("--runs-root", default="demo_out/run",
                   help="the pipeline's output folder holding generations/, results/, mappers/ (default demo_out/run)")
    s.add_argument("--out", help="report folder (default RUNS_ROOT/listening/RUN)")
    s.add_argument("--profile", help="model profile whose Wav2CLIP scores each clip (CS); without it CS is blank")
    s.add_argument("--clips", type=int, default=8, help="clips to show, spread over the labels")
    s.add_argument("--seed", type=int, default=0, help="seed of the clip sample")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_report)

    from v2a.weights.cli import add_parser as add_weights_parser

    add_weights_parser(sub)

    s = sub.add_parser("pipeline", help="run every stage from one config file")
    s.add_argument("--config", required=True)
    s.set_defaults(func=_pipeline)

    s = sub.add_parser("demo", help="synthetic data + the whole pipeline on the tiny profile")
    s.add_argument("--out", default="demo_out")
    s.add_argument("--seconds", type=float, default=2.0)
    s.set_defaults(func=_demo)
    add_debug_flag(p)
    return p


# Commands whose --out is a location of tables they write: one run at a time there (v2a/locking.py).
# `pipeline` and `demo` lock inside the pipeline flow, which deployments run too.
LOCKED_COMMANDS = ("ingest", "embed", "train", "generate", "evaluate", "reevaluate")


def main(argv=None) -> int:
    """Run one command. A user's mistake or a storage fault ends in one line on stderr and exit 2
    (flows/errors.py); --debug adds the traceback; a bug keeps its traceback (exit 1)."""
    args = build_parser().parse_args(argv)
    try:
        with quiet_tracebacks(not args.debug):
            _dispatch(args)
    except Exception as err:
        line = describe(err, getattr(args, "out", None))
        if line is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"v2a {args.command}: error: {line}", file=sys.stderr)
        return 2
    return 0


def _dispatch(args) -> None:
    from v2a.locking import run_lock

    if getattr(args, "checkpoint", None):
        require_checkpoint(args.checkpoint)  # a hand-made or damaged checkpoint, refused before models load
    if args.command in LOCKED_COMMANDS:
        with run_lock(args.out):
            args.func(args)
    else:
        args.func(args)


if __name__ == "__main__":
    sys.exit(main())
