"""Throughput of the embedding stage: decode, CLIP, CLAP, and the whole stage, in clips per second.

    python benchmarks/bench_embed.py --device cuda --profile paper-arch      # the GPU numbers
    python benchmarks/bench_embed.py --profile tiny --quick                  # a smoke run on a laptop
    python benchmarks/bench_embed.py --profile paper-arch --clips 24 --workers 2

Inputs are synthetic VGGSound-shaped clips (v2a.tools.synth): 10 s, 640x360, 25 fps H.264 + AAC, made once
under --data and reused (a handful of distinct files, cycled to --clips; the page cache holds them,
so decode numbers are compute, not disk). Each clip gives 10 frames and its whole audio track.

Rows:
- decode: the decoder backend alone (frames + 16 kHz audio), --workers threads;
- CLIP resize+crop / CLAP resample: the per-clip CPU work the stage runs in its decode workers,
  on one thread;
- CLIP / CLAP: the encoders alone on ready inputs (--batch-size frames, --audio-batch-size clips;
  CLIP's includes uploading the uint8 crops and normalising them on the device);
- stage: v2a.stages.embed.embed_clips, the code the pipeline runs: --workers threads decode and
  preprocess while the main thread feeds the encoders.
Needs torch, numpy, av, open_clip, laion_clap, transformers, pyarrow (not torchaudio); decord and torchcodec are
measured when installed. No Prefect.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v2a.media import decoders  # noqa: E402
from v2a.stages.embed import embed_clips, ordered_map, resolve_workers  # noqa: E402
from v2a.media import read_clip  # noqa: E402

SECONDS, WIDTH, HEIGHT, FPS = 10.0, 640, 360, 25
NUM_FRAMES = 10
GOAL_CLIPS_PER_S = 56  # VGGSound's 199,176 clips in about an hour on one GPU machine


def make_clips(data_dir: Path, distinct: int) -> list[str]:
    """`distinct` synthetic 10-s 640x360 25 fps clips under data_dir (made once, then reused)."""
    from v2a.tools.synth import make_synthetic_dataset

    classes = max(1, min(distinct, 6))
    per_class = max(2, -(-distinct // classes))  # synth needs a train and a test clip per class
    tag = data_dir / f"clips-{classes}x{per_class}"
    videos = sorted((tag / "videos").glob("*.mp4")) if tag.exists() else []
    if len(videos) < classes * per_class:
        t0 = time.perf_counter()
        make_synthetic_dataset(tag, classes=classes, clips_per_class=per_class, seconds=SECONDS, width=WIDTH,
                               height=HEIGHT, fps=FPS, images_per_class=0, progress=False)
        print(f"made {classes * per_class} synthetic clips in {time.perf_counter() - t0:.1f} s under {tag}")
        videos = sorted((tag / "videos").glob("*.mp4"))
    return [str(v) for v in videos[:distinct]]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def decode_one(item: tuple) -> None:
    """Module level, so that worker processes can run it."""
    uri, backend, threads = item
    clip = read_clip(uri, num_frames=NUM_FRAMES, max_seconds=SECONDS, backend=backend, threads=threads)
    assert clip.frames.shape[0] == NUM_FRAMES and clip.audio is not None


def bench_decode(uris: list[str], backend: str, workers: int, pool: str) -> float:
    threads = 1 if workers > 1 else 0

    def run(batch):
        for _ in ordered_map(decode_one, [(u, backend, threads) for u in batch], workers, pool):
            pass

    run(uris[:max(1, min(len(uris), workers))])  # warm-up: worker start-up, FFmpeg loading
    return timed(lambda: run(uris), torch.device("cpu"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--profile", default="tiny", help="model profile: tiny | paper-arch | a YAML path")
    p.add_argument("--clips", type=int, help="clips per measurement (default 256 on CUDA, 24 on CPU; --quick: 64/8)")
    p.add_argument("--workers", type=int, default=0, help="decode workers (0: one per core, at most 16)")
    p.add_argument("--pools", default="thread,process",
                   help="decode worker kinds to measure: thread, process or both (--quick: thread)")
    p.add_argument("--batch-size", type=int, default=64, help="CLIP frames per forward pass")
    p.add_argument("--audio-batch-size", type=int, default=16, help="CLAP clips per forward pass")
    p.add_argument("--backends", default="all", help="comma-separated decoder backends, or 'all' installed")
    p.add_argument("--stage-backends", default="all",
                   help="backends to run the whole stage with: 'all' measured ones (--quick: the default only) "
                        "or 'auto' (the default decoder)")
    p.add_argument("--data", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "v2a-bench-embed"),
                   help="where the synthetic clips are kept between runs")
    p.add_argument("--distinct", type=int, default=16, help="distinct clip files, cycled to --clips")
    p.add_argument("--quick", action="store_true", help="fewer clips, one stage run: a smoke test")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    workers = resolve_workers(args.workers)
    n = args.clips or ((64 if args.quick else 256) if device.type == "cuda" else (8 if args.quick else 24))
    distinct = min(args.distinct, n, 8 if args.quick else args.distinct)
    installed = decoders.available_backends()
    backends = installed if args.backends == "all" else [b for b in args.backends.split(",") if b]
    missing = [b for b in backends if b not in installed]
    backends = [b for b in backends if b in installed]
    default_backend = decoders.resolve_backend("auto")

    print(f"# bench_embed: device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()}), "
          f"profile={args.profile}, clips={n} ({distinct} distinct files), workers={workers}, cores={os.cpu_count()}, "
          f"torch threads={torch.get_num_threads()}, decoders installed={installed} (default {default_backend})"
          + (f", not installed: {missing}" if missing else ""))
    uris = make_clips(Path(args.data), distinct)
    work = [uris[i % len(uris)] for i in range(n)]
    rows: list[dict] = []

    pools = ["thread"] if args.quick else [x for x in args.pools.split(",") if x]
    failures: list[str] = []

    def attempt(label: str, fn):
        """One row's measurement; a failure is reported and the other rows still run (one GPU try)."""
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - reported, then the next row
            line = f"{label}: FAILED {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            print(f"  {line}", flush=True)
            failures.append(line)
            return None

    def add(step: str, backend: str, w, clips: int, seconds: float) -> None:
        row = {"step": step, "backend": backend, "workers": w, "clips": clips, "seconds": round(seconds, 3),
               "clips_per_s": round(clips / seconds, 2), "ms_per_clip": round(1000 * seconds / clips, 1)}
        rows.append(row)
        print(f"  {step:<18} {backend:<11} workers={str(w):<10} {row['clips_per_s']:>8.2f} clips/s "
              f"({row['ms_per_clip']:.1f} ms/clip)", flush=True)

    # ---------------------------------------------------------------- decode alone
    for backend in backends:
        if not args.quick:  # one worker: fewer clips, it is the slow row
            few = work[:min(n, 2 * distinct)]
            t = attempt(f"decode {backend} x1", lambda: bench_decode(few, backend, 1, "thread"))
            if t is not None:
                add("decode", backend, 1, len(few), t)
        if workers > 1:
            for pool in pools:
                t = attempt(f"decode {backend} {pool}", lambda: bench_decode(work, backend, workers, pool))
                if t is not None:
                    add("decode", backend, f"{workers} {pool}", n, t)

    # ---------------------------------------------------------------- encoders alone
    from v2a.models import build_clap, build_clip, load_profile

    prof = load_profile(args.profile)
    t0 = time.perf_counter()
    clip_enc = build_clip(prof["clip"], device=str(device))
    clap_enc = build_clap(prof["clap"], device=str(device))
    print(f"  models built in {time.perf_counter() - t0:.1f} s: CLIP {clip_enc.model_id} ({clip_enc.dtype}), "
          f"CLAP {clap_enc.model_id} ({clap_enc.dtype}, autocast {clap_enc.autocast_dtype})", flush=True)

    decoded = [read_clip(u, num_frames=NUM_FRAMES, max_seconds=SECONDS, backend=default_backend) for u in uris]
    k = min(len(decoded), 4)
    prep = clip_enc.frame_preprocessor
    t = timed(lambda: [prep.pack(decoded[i % k].frames) for i in range(2 * k)], device)
    add("CLIP resize+crop", "-", 1, 2 * k, t)
    t = timed(lambda: [clap_enc.prepare_audio(decoded[i % k].audio, decoded[i % k].sample_rate)
                       for i in range(2 * k)], device)
    add("CLAP resample", "-", 1, 2 * k, t)

    packed = np.concatenate([prep.pack(d.frames) for d in decoded[:k]])  # k clips' frames
    frames_total = n * NUM_FRAMES
    batch = np.concatenate([packed] * -(-args.batch_size // len(packed)))[:args.batch_size]
    clip_enc.encode_packed(batch)  # warm-up (CUDA kernels, cudnn autotune)

    def run_clip():  # upload, normalise and encode, as the stage does
        done = 0
        while done < frames_total:
            clip_enc.encode_packed(batch[:min(args.batch_size, frames_total - done)])
            done += args.batch_size

    add("CLIP", "-", "-", n, timed(run_clip, device))

    audio = torch.stack([clap_enc.prepare_audio(d.audio, d.sample_rate) for d in decoded[:k]])
    abatch = torch.cat([audio] * -(-args.audio_batch_size // len(audio)))[:args.audio_batch_size]
    if attempt("CLAP warm-up", lambda: clap_enc.encode_prepared(abatch)) is None and clap_enc.autocast_dtype:
        print("  CLAP: retrying without autocast (float32)", flush=True)
        clap_enc.autocast_dtype = None
        clap_enc.encode_prepared(abatch)

    def run_clap():
        done = 0
        while done < n:
            clap_enc.encode_prepared(abatch[:min(args.audio_batch_size, n - done)])
            done += args.audio_batch_size

    add("CLAP", "-", "-", n, timed(run_clap, device))
    del decoded, packed, batch, audio, abatch

    # ---------------------------------------------------------------- the whole stage
    clips = [{"clip_id": f"c{i:05d}", "uri": u, "split": "train", "label": None, "kind": "video"}
             for i, u in enumerate(work)]
    stage_backends = [default_backend] if (args.stage_backends == "auto" or args.quick) else backends
    for pool in pools:
        # warm-up: worker start-up (a process pool is kept between calls, as in the pipeline)
        attempt(f"stage warm-up {pool}", lambda: embed_clips(
            clips[:workers], clip_enc, clap_enc, NUM_FRAMES, SECONDS, args.batch_size, workers=workers,
            decoder=default_backend, pool=pool, audio_batch_size=args.audio_batch_size))
        for backend in stage_backends:
            result = {}

            def run_stage():
                result["out"] = embed_clips(clips, clip_enc, clap_enc, NUM_FRAMES, SECONDS, args.batch_size,
                                            workers=workers, decoder=backend, pool=pool,
                                            audio_batch_size=args.audio_batch_size)

            t = attempt(f"stage {backend} {pool}", lambda: timed(run_stage, device))
            if t is None:
                continue
            rows_out, errors = result["out"]
            if errors or len(rows_out) != n:
                failures.append(f"stage {backend} {pool}: {len(rows_out)} rows, errors {errors[:2]}")
                print(f"  {failures[-1]}", flush=True)
                continue
            add("stage", backend, f"{workers} {pool}", n, t)

    stage_rows = [r for r in rows if r["step"] == "stage"]
    if device.type == "cuda" and stage_rows:
        best = max(stage_rows, key=lambda r: r["clips_per_s"])
        print(f"  goal >= {GOAL_CLIPS_PER_S} clips/s end to end: {'met' if best['clips_per_s'] >= GOAL_CLIPS_PER_S else 'NOT met'} "
              f"({best['clips_per_s']:.1f} with {best['backend']}, {best['workers']})")
    print()
    print(f"| step | decoder | workers | clips/s | ms/clip |  ({device}, {args.profile}, {n} clips)")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['backend']} | {r['workers']} | {r['clips_per_s']:.2f} | {r['ms_per_clip']:.1f} |")
    for line in failures:
        print(f"FAILED: {line}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "profile": args.profile, "clips": n,
                                               "workers": workers, "rows": rows, "failures": failures}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
