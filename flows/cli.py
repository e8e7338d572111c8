"""The `v2a` command. It starts the flows, so it lives beside them; the work itself is in `v2a/`."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
import warnings

from flows import preflight
from flows.errors import (add_debug_flag, describe, quiet_tracebacks, require_clips, require_checkpoint,
                          require_location, require_table)

from flows.cli_options import add_model_options, model_from_args
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Spinning OpenMP threads starve each other when processes share the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The library's own warnings (v2a.*) reach the Prefect UI's logs, not only this terminal.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "v2a")
# Without a server, each run starts a temporary one; on a loaded machine that takes longer than
# Prefect's 20 s. (Running `prefect server start` and setting PREFECT_API_URL avoids the wait.)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _flow(module: str, name: str):
    """A flow of flows/<module>.py, with a Prefect API to run it against: unless PREFECT_API_URL names a
    server, a temporary one of this process's own (flows/server.py), started while the flow's modules import.
    Called after a command's checks, so a mistake is refused before Prefect starts."""
    from flows.server import start_temporary_server, wait_until_up

    from flows.interrupts import quiet_stop_logs

    own = start_temporary_server() is not None
    flow = getattr(importlib.import_module(f"flows.{module}"), name)
    quiet_stop_logs()  # Prefect's handlers exist from here on
    wait_until_up()
    if not own:
        return flow
    from flows.crashed_runs import mark_dead_runs_crashed, owner_tag

    mark_dead_runs_crashed()  # runs an earlier, killed v2a process left Running on this PREFECT_HOME

    def run(*args, **kwargs):
        from prefect import tags

        with tags(owner_tag()):  # so the next command can tell, should this process be killed
            return flow(*args, **kwargs)
    return run


def _synth(args) -> None:
    from v2a.tools.synth import make_synthetic_dataset

    summary = make_synthetic_dataset(args.out, classes=args.classes, clips_per_class=args.clips_per_class,
                                     seconds=args.seconds, seed=args.seed, one_to_many=args.one_to_many)
    print(summary)


def _ingest(args) -> None:
    from v2a.config import DataConfig

    preflight.data_inputs(args.csv, args.videos, args.images)
    data = model_from_args(args, DataConfig)
    _flow("ingest", "ingest_flow")(args.out, data=data)


def _embed(args) -> None:
    from v2a.config import EmbedConfig

    embed = model_from_args(args, EmbedConfig)
    preflight.profile(args.profile)
    require_clips(args.out)  # before Prefect starts: its start-up alone takes seconds
    _flow("embed", "embed_flow")(args.out, profile=args.profile, embed=embed)


def _train(args) -> None:
    from v2a.config import TrainStageConfig

    train = model_from_args(args, TrainStageConfig)
    require_table(args.embeddings, "embeddings table", "run `v2a embed --out OUT` first and pass OUT/embeddings")
    metrics = _flow("train", "train_flow")(args.embeddings, args.out, train=train)
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}, indent=2))


def _map(args) -> None:
    require_table(args.embeddings, "embeddings table", "run `v2a embed --out OUT` first and pass OUT/embeddings")
    from v2a.tools.map_embeddings import map_embeddings

    n = map_embeddings(args.checkpoint, args.embeddings, args.out, samples=args.samples,
                       guidance_scale=args.guidance_scale, steps=args.steps, seed=args.seed, device=args.device)
    print(f"map: {n} rows → {args.out}")


def _generate(args) -> None:
    if args.inputs:
        return _generate_inputs(args)
    if not args.embeddings:
        raise ValueError("give INPUT files (images or videos) or --embeddings TABLE")
    from v2a.config import GenerateConfig
    from v2a.io.layout import RunLayout

    if not args.out:
        raise ValueError("--out OUT is required with --embeddings (generations go to OUT/generations/RUN)")
    generate = model_from_args(args, GenerateConfig)
    if generate.conditioning == "mapper" and not args.checkpoint:
        raise ValueError("--checkpoint DIR is required (or --conditioning no-mapper)")
    require_table(args.embeddings, "embeddings table", "run `v2a embed --out OUT` first and pass OUT/embeddings")
    preflight.profile(args.profile)
    preflight.splits_in_clips({"--split": generate.split}, RunLayout(args.out).clips)
    run_id = args.run_id or time.strftime("gen-%Y%m%d-%H%M%S")
    _flow("generate", "generate_flow")(args.embeddings, args.out, run_id, profile=args.profile,
                                       checkpoint=args.checkpoint, generate=generate)


def _generate_inputs(args) -> None:
    if args.conditioning == "mapper" and not args.checkpoint:
        raise ValueError("--checkpoint DIR is required (or --conditioning no-mapper)")
    if args.conditioning == "text":
        raise ValueError("--conditioning text needs labels: use --embeddings mode, or `v2a interpolate` with text")
    for given in args.inputs:  # before any model is built (and warns about itself)
        preflight.readable_file(given, "input")
    preflight.profile(args.profile)
    out = args.out or "v2a_out"
    from v2a.runtime.model_cache import empty_text_embedding, get_mapper, get_model
    from v2a.tools.single import generate_for_inputs

    written = generate_for_inputs(
        args.inputs, out, get_model(args.profile, "clip", args.device), get_model(args.profile, "generator", args.device),
        empty_text_embedding(args.profile, args.device),
        mapper=get_mapper(args.checkpoint, args.device) if args.conditioning == "mapper" else None,
        conditioning=args.conditioning, samples=args.samples, seed=args.seed, steps=args.steps,
        generator_guidance=args.generator_guidance, scheduler=args.scheduler, mapper_guidance=args.mapper_guidance,
        mapper_steps=args.mapper_steps, seconds=args.seconds)
    for w in written:
        print(f"{w['input']} → {w['wav']}" + (f" and {w['video']}" if w["video"] else ""))


def _interpolate(args) -> None:
    preflight.profile(args.profile)
    preflight.writable(args.out)
    from v2a.runtime.model_cache import empty_text_embedding, get_mapper, get_model
    from v2a.tools.single import interpolate

    paths = interpolate(args.a, args.b, args.points, args.out, get_model(args.profile, "clip", args.device),
                        get_model(args.profile, "generator", args.device), empty_text_embedding(args.profile, args.device),
                        get_mapper(args.checkpoint, args.device), seed=args.seed, steps=args.steps,
                        generator_guidance=args.generator_guidance, scheduler=args.scheduler, seconds=args.seconds,
                        mapper_guidance=args.mapper_guidance, mapper_steps=args.mapper_steps)
    print("\n".join(paths))


def _evaluate(args) -> None:
    from v2a.config import EvaluateConfig
    from v2a.io.layout import RunLayout

    evaluate = model_from_args(args, EvaluateConfig)
    preflight.readable_folder(args.generations, "generations folder")
    preflight.generation_finished(args.generations, args.allow_partial)
    if args.reference:
        preflight.readable_folder(args.reference, "reference folder")
    else:
        preflight.splits_in_clips({"--split": evaluate.split}, RunLayout(args.out).clips)
    preflight.profile(args.profile)
    preflight.output_folders(args.out, ("results", "scores", "features", "reference_stats"))
    _flow("evaluate", "evaluate_flow")(args.generations, args.out, profile=args.profile, evaluate=evaluate,
                                       dataset=args.dataset, reference=args.reference, device=args.device,
                                       run_id=args.run_id, allow_partial=args.allow_partial)
    _print_results(args.out, args.run_id)


def _status(args) -> None:
    require_location(args.out)
    from v2a.tools.status import format_status, out_status

    print(format_status(out_status(args.out)))


def _reevaluate(args) -> None:
    from v2a.config import EvaluateConfig

    evaluate = model_from_args(args, EvaluateConfig)
    require_location(args.out)
    preflight.profile(args.profile)
    done = _flow("reevaluate", "reevaluate_flow")(args.out, profile=args.profile, evaluate=evaluate,
                                                  device=args.device)
    print(f"reevaluate: {len(done)} generation set(s) scored" + "".join(f"\n  {d['gen_dir']}" for d in done))


def _check_models(args) -> None:
    preflight.profile(args.profile)
    from v2a.tools.check_models import check_models

    print(f"check-models: {check_models(args.profile, device=args.device).message}")


def _results(args) -> None:
    require_location(args.out)
    _print_results(args.out, args.run, args.table)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _compare(args) -> None:
    require_location(args.out)
    from v2a.tools.compare import compare_runs, format_comparison

    print(format_comparison(compare_runs(args.out, args.run_a, args.run_b, args.protocol,
                                         set_resamples=args.set_resamples, progress=sys.stderr.isatty())))


def _print_results(out: str, run_id: str | None, table: str = "long") -> None:
    from v2a.io.results import format_results

    print(format_results(out, run_id, table))


def _report(args) -> None:
    from v2a.io.layout import RunLayout

    require_location(args.runs_root)
    for run in args.run:
        preflight.readable_folder(RunLayout(args.runs_root).generations(run).root, f"generation run {run!r}:")
    preflight.profile(args.profile)
    preflight.writable(args.out or RunLayout(args.runs_root).listening)
    summary = _flow("report", "report_flow")(args.runs_root, args.run, out=args.out, profile=args.profile,
                                             clips=args.clips, seed=args.seed, device=args.device)
    print(f"report: open {summary['index']}")


def _local_run():
    """Settings for a flow run started here. On this process's temporary server, which dies with it,
    flow-run heartbeats (which let a server notice a crashed run) have no one to tell and only cost
    each flow up to a second on exit."""
    from contextlib import nullcontext

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.server import temporary_server

    if temporary_server() is None:
        return nullcontext()
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def check_pipeline(cfg) -> None:
    """Everything about a pipeline config that can be checked before Prefect starts (the file itself and
    its profile were checked on loading)."""
    d = cfg.data
    preflight.data_inputs(d.csv, d.videos, d.images)
    preflight.splits_before_ingest({"generate.split": cfg.generate.split, "evaluate.split": cfg.evaluate.split},
                                   d.csv, d.images)
    preflight.writable(cfg.out)
    preflight.output_folders(cfg.out)
    if cfg.cache.location:
        preflight.writable(cfg.cache.location, "cache.location")


def _run_pipeline(cfg):
    from v2a.core.locking import run_lock

    # The lock is taken here, before Prefect starts, so a busy location is refused at once; the
    # pipeline flow takes it again (re-entrant) for runs started by a deployment.
    with run_lock(cfg.out):
        pipeline_flow = _flow("pipeline", "pipeline_flow")
        with _local_run():
            return pipeline_flow(cfg)


def _pipeline(args) -> None:
    from v2a.config import load_config

    # Checked here, before Prefect (and its temporary server) starts: a bad file is refused in a moment.
    cfg = load_config(args.config)
    args.out = cfg.out  # an OS error that names no file is reported on the output location
    check_pipeline(cfg)
    t0 = time.perf_counter()
    summary = _run_pipeline(cfg)
    print(f"pipeline: finished in {time.perf_counter() - t0:.1f} s (run {summary['run_id']})")
    _print_results(cfg.out, summary["run_id"])
    print(f"listening report: {summary['report']}")


def _demo(args) -> None:
    from v2a.config import load_config
    from v2a.tools.demo import prepare_demo

    preflight.writable(args.out)
    t0 = time.perf_counter()
    config_path, out = prepare_demo(args.out, seconds=args.seconds)
    print(f"demo: synthetic data and config ready in {time.perf_counter() - t0:.1f} s → {config_path}")
    cfg = load_config(config_path)
    check_pipeline(cfg)
    t1 = time.perf_counter()
    summary = _run_pipeline(cfg)
    print(f"demo: pipeline finished in {time.perf_counter() - t1:.1f} s (run {summary['run_id']})")
    _print_results(out, summary["run_id"])
    print(f"demo: listening report → {summary['report']}")


def _command(sub, name: str, help_text: str, example: str, func) -> argparse.ArgumentParser:
    s = sub.add_parser(name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.set_defaults(func=func)
    return s


def _profile_option(s, with_default: bool = True, help_text: str | None = None) -> None:
    from v2a.config import PipelineConfig

    add_model_options(s, PipelineConfig, only=["profile"], defaults=None if with_default else {"profile": None},
                      helps={"profile": help_text} if help_text else None)


def _device_option(s) -> None:
    from v2a.config import EmbedConfig

    add_model_options(s, EmbedConfig, only=["device"], helps={"device": "torch device (cpu, cuda, cuda:1)"})


def build_parser() -> argparse.ArgumentParser:
    from v2a import __version__
    from v2a.config import (DataConfig, EmbedConfig, EvaluateConfig, GenerateConfig, ReportConfig,
                            TrainStageConfig, default)

    p = argparse.ArgumentParser(prog="v2a", description="Silent video and images to sound (V2A-Mapper pipeline).")
    p.add_argument("--version", action="version", version=f"v2a {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = _command(sub, "synth", "write a synthetic audio-visual dataset (VGGSound-format CSV + mp4 + images)",
                 "v2a synth --out data/synth --classes 6 --clips-per-class 8", _synth)
    s.add_argument("--out", required=True, help="folder to write the CSV, videos/ and images/ into")
    s.add_argument("--classes", type=int, default=6, help="number of labels (default: %(default)s)")
    s.add_argument("--clips-per-class", type=int, default=8, help="clips per label (default: %(default)s)")
    s.add_argument("--seconds", type=float, default=2.0, help="length of each clip (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the generated data (default: %(default)s)")
    s.add_argument("--one-to-many", type=int, default=0, help="number of classes with two sound signatures")

    s = _command(sub, "ingest", "VGGSound CSV + videos, or an image folder → clips table",
                 "v2a ingest --out runs/a --csv data/synth/vggsound.csv --videos data/synth/videos", _ingest)
    s.add_argument("--out", required=True, help="output location (path or URI) of the run's tables")
    add_model_options(s, DataConfig)

    s = _command(sub, "embed", "clips table → CLIP/CLAP embeddings shards",
                 "v2a embed --out runs/a --profile tiny --num-frames 4", _embed)
    s.add_argument("--out", required=True, help="the run folder holding clips.parquet; writes OUT/embeddings")
    _profile_option(s)
    add_model_options(s, EmbedConfig)

    s = _command(sub, "train", "embeddings → mapper checkpoint",
                 "v2a train --embeddings runs/a/embeddings --out runs/a/mappers/diff-mlp --mapper diff-mlp "
                 "--epochs 60", _train)
    s.add_argument("--embeddings", required=True, help="an embeddings table (OUT/embeddings)")
    s.add_argument("--out", required=True, help="checkpoint folder (config.json + model.safetensors)")
    add_model_options(s, TrainStageConfig)

    s = _command(sub, "map", "mapper checkpoint + embeddings → pseudo-CLAP Parquet rows",
                 "v2a map --checkpoint runs/a/mappers/diff-mlp --embeddings runs/a/embeddings --out mapped.parquet",
                 _map)
    s.add_argument("--checkpoint", required=True, help="mapper checkpoint folder")
    s.add_argument("--embeddings", required=True, help="an embeddings table")
    s.add_argument("--out", required=True, help="the Parquet file to write")
    add_model_options(s, GenerateConfig, only=["samples", "seed", "device"])
    s.add_argument("--guidance-scale", type=float, help="diffusion mapper guidance (default: the checkpoint's)")
    s.add_argument("--steps", type=int, help="diffusion mapper sampling steps (default: the checkpoint's)")

    s = _command(sub, "generate", "images/videos given as INPUT, or the embeddings of a split → AudioLDM audio",
                 "v2a generate photo.jpg clip.mp4 --checkpoint runs/a/mappers/diff-mlp --profile tiny", _generate)
    s.add_argument("inputs", nargs="*", metavar="INPUT", help="image or video files (a video also gets a muxed copy)")
    s.add_argument("--embeddings", help="an embeddings table: generate for its --split into OUT/generations/RUN")
    s.add_argument("--out", help="output folder (default v2a_out for INPUT files)")
    s.add_argument("--checkpoint", help="mapper checkpoint directory (conditioning 'mapper')")
    _profile_option(s)
    s.add_argument("--run-id", help="generation run id (default: gen-DATE-TIME)")
    add_model_options(s, GenerateConfig, defaults={"seconds": None},
                      helps={"seconds": "seconds of audio (default: 10, or a video's own length up to 10)"})

    s = _command(sub, "interpolate", "audio along the line from A to B in CLAP space (image, video or text)",
                 "v2a interpolate dog.jpg 'rain on a roof' --steps 5 --checkpoint runs/a/mappers/diff-mlp", _interpolate)
    s.add_argument("a", help="an image or video file, or a text")
    s.add_argument("b", help="an image or video file, or a text")
    s.add_argument("--steps", type=int, default=5, dest="points", help="number of audio files along the path "
                                                                       "(default: %(default)s)")
    s.add_argument("--checkpoint", required=True, help="mapper checkpoint folder")
    s.add_argument("--out", default="v2a_interpolation", help="output folder (default: %(default)s)")
    _profile_option(s)
    add_model_options(s, GenerateConfig, only=["steps", "generator_guidance", "scheduler", "seconds", "seed", "device",
                                               "mapper_guidance", "mapper_steps"], rename={"steps": "generator_steps"})

    s = _command(sub, "evaluate", "generated audio (+ reference) → the protocol's metric rows (v2a-mapper: FD, FAD, "
                 "CS, KL, IS; av-benchmark: MMAudio's FD_PaSST ... IB) in the results table",
                 "v2a evaluate --generations runs/a/generations/run-1 --out runs/a --profile tiny", _evaluate)
    s.add_argument("--generations", required=True, help="a generation run folder or any folder of wav/flac files")
    s.add_argument("--out", required=True, help="run folder holding clips/embeddings; results go to OUT/results")
    s.add_argument("--reference", help="a folder of reference audio (default: the real audio of --split)")
    s.add_argument("--run-id", help="run id of the results rows (default: derived from the folder)")
    s.add_argument("--allow-partial", action="store_true",
                   help="score a generation set whose generation did not finish (its rows say complete = false); "
                        "without it such a set is refused")
    _profile_option(s)
    add_model_options(s, EvaluateConfig)
    add_model_options(s, DataConfig, only=["dataset"])
    _device_option(s)

    s = _command(sub, "check-models", "check that the profile's CLAP and generator share one embedding space",
                 "v2a check-models --profile paper", _check_models)
    _profile_option(s)
    _device_option(s)

    s = _command(sub, "results", "print the results table", "v2a results --out runs/a --run run-1 --table mmaudio",
                 _results)
    s.add_argument("--out", required=True, help="a pipeline output location")
    s.add_argument("--run", help="only this run id's rows")
    s.add_argument("--table", choices=["long", "mmaudio"], default="long",
                   help="long: one row per metric with its protocol; mmaudio: one row per run in MMAudio's columns "
                        "and order, next to its published VGGSound rows (default: %(default)s)")

    from v2a.metrics.bootstrap import SET_RESAMPLES
    from v2a.metrics.protocols import PROTOCOLS

    s = _command(sub, "compare", "two runs' metrics, B - A, with a paired bootstrap interval over their shared clips, "
                 "and which run is better where the interval excludes 0",
                 "v2a compare --out runs/a run-1 run-2 --protocol av-benchmark", _compare)
    s.add_argument("--out", required=True, help="the output location holding both runs' results")
    s.add_argument("run_a", metavar="RUN_A", help="run id A")
    s.add_argument("run_b", metavar="RUN_B", help="run id B (the difference is B - A)")
    s.add_argument("--protocol", choices=sorted(PROTOCOLS),
                   help="the protocol whose rows to compare (default: the one both runs were scored under)")
    s.add_argument("--set-resamples", type=_non_negative, default=SET_RESAMPLES, metavar="N",
                   help="resamples of the set statistics' paired intervals (FD, FAD, FD_PaSST, IS; from the features "
                        "kept by evaluate --keep-features); a Fréchet one takes about 16 s at 15k clips x 2048-d on "
                        "2 cores; 0: none (default: %(default)s)")

    s = _command(sub, "status", "runs, stages done, row counts and errors per stage of an output location",
                 "v2a status --out runs/a", _status)
    s.add_argument("--out", required=True, help="a pipeline output location (path or URI)")

    s = _command(sub, "reevaluate", "evaluate every generation set that has no results of this v2a version",
                 "v2a reevaluate --out runs --profile paper", _reevaluate)
    s.add_argument("--out", required=True, help="a pipeline output location, or a folder holding several")
    _profile_option(s, help_text="model profile whose extractors score the audio")
    add_model_options(s, EvaluateConfig)
    _device_option(s)

    s = _command(sub, "report", "a static HTML listening report of one run, or of several side by side",
                 "v2a report --runs-root demo_out/run --run run-1 --run run-2 --profile tiny", _report)
    s.add_argument("--run", action="append", required=True, metavar="ID",
                   help="generation run id; repeat (--run A --run B) to compare runs on the same clips")
    s.add_argument("--runs-root", default="demo_out/run",
                   help="the pipeline's output folder holding generations/, results/, mappers/ (default demo_out/run)")
    s.add_argument("--out", help="report folder (default RUNS_ROOT/listening/RUN)")
    _profile_option(s, with_default=False,
                    help_text="model profile whose Wav2CLIP scores each clip (CS); without it CS is blank")
    add_model_options(s, ReportConfig)
    s.add_argument("--seed", type=int, default=default(GenerateConfig, "seed"),
                   help="seed of the clip sample (default: %(default)s)")
    _device_option(s)

    from v2a.tools.weights_cli import add_parser as add_weights_parser

    add_weights_parser(sub)

    s = _command(sub, "pipeline", "run every stage from one config file (checked before anything starts)",
                 "v2a pipeline --config demo_out/pipeline.yaml", _pipeline)
    s.add_argument("--config", required=True, help="a YAML file (path or URI): the sections of v2a.config")

    s = _command(sub, "demo", "synthetic data + the whole pipeline on the tiny profile", "v2a demo --out demo_out",
                 _demo)
    s.add_argument("--out", default="demo_out", help="output folder (default: %(default)s)")
    s.add_argument("--seconds", type=float, default=2.0, help="length of each synthetic clip (default: %(default)s)")
    add_debug_flag(p)
    return p


# Commands whose --out is a location of tables they write: one run at a time there (v2a/core/locking.py).
# `pipeline` and `demo` lock inside the pipeline flow, which deployments run too.
LOCKED_COMMANDS = ("ingest", "embed", "train", "generate", "evaluate", "reevaluate")


def main(argv=None) -> int:
    """Run one command. A user's mistake or a storage fault ends in one line on stderr and exit 2
    (flows/errors.py); --debug adds the traceback; a bug keeps its traceback (exit 1).

    Run as the `v2a` command (argv None), SIGTERM and SIGINT stop it within seconds with one line
    and exit status 143 or 130 (flows/interrupts.py)."""
    from flows import interrupts
    from v2a.core import stopping

    _show_old_names()
    args = build_parser().parse_args(argv)
    handles_signals = argv is None and interrupts.install(args.command, args.debug)
    try:
        with quiet_tracebacks(not args.debug):
            _dispatch(args)
    except BaseException as err:
        if stopping.stop_requested():
            if handles_signals:
                interrupts.finish_stop()  # does not return
            print(interrupts.stop_line(args.command), file=sys.stderr)
            return interrupts.exit_code()
        if not isinstance(err, Exception):
            raise
        line = describe(err, getattr(args, "out", None))
        if line is None:
            raise
        if args.debug:
            traceback.print_exc()
            if getattr(err, "log", ""):  # flows/server.py ServerHomeError: the server's own output
                print(err.log, file=sys.stderr)
        print(f"v2a {args.command}: error: {line}", file=sys.stderr)
        return 2
    return 0


def _show_old_names() -> None:
    """A config key or flag used under its old name still works, and the user is told, in one line: Python
    hides DeprecationWarning outside __main__, and its usual form points into pydantic or argparse."""
    from v2a.config import ConfigDeprecationWarning

    formatted = warnings.formatwarning
    if getattr(formatted, "v2a_old_names", False):
        return

    # formatwarning, not showwarning: warnings recorded by a caller (catch_warnings) stay recorded.
    def one_line(message, category, filename, lineno, line=None):
        if issubclass(category, ConfigDeprecationWarning):
            return f"v2a: warning: {message}\n"
        return formatted(message, category, filename, lineno, line)

    one_line.v2a_old_names = True
    warnings.formatwarning = one_line
    warnings.simplefilter("default", ConfigDeprecationWarning)


def _dispatch(args) -> None:
    from v2a.core.locking import run_lock

    if getattr(args, "checkpoint", None):
        require_checkpoint(args.checkpoint)  # a hand-made or damaged checkpoint, refused before models load
    if args.command in LOCKED_COMMANDS:
        out = args.out or ("v2a_out" if args.command == "generate" else None)
        if args.command == "reevaluate":
            require_location(out)  # before the lock makes the folder
        preflight.writable(out)  # before the lock file is made in it
        with run_lock(out):
            args.func(args)
    else:
        args.func(args)


if __name__ == "__main__":
    sys.exit(main())
