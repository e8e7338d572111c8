"""The GPU figures in one command: embed, whole-pipeline generation, evaluation extractors, mapper
training, and 1 -> N GPU scaling, printed as one table with the project's goals beside them.

    python benchmarks/gpu_suite.py                 # a GPU machine: paper-arch profile, every visible GPU
    python benchmarks/gpu_suite.py --quick         # CPU smoke run: tiny profile, small counts (< 2 min)
    python benchmarks/gpu_suite.py --json out.json # the rows as JSON too

Every model is the profile's architecture with random weights (`paper-arch`: CLIP ViT-B/32, CLAP
HTSAT-tiny + RoBERTa, AudioLDM-s, PANNs Cnn14, VGGish, Wav2CLIP), so the figures are the real
compute cost. What each row times:
- embed: the embed stage's own `embed_clips` on synthetic 10-s 640x360 videos (decode, CLIP on 10
  frames, CLAP on the audio), in clips/s;
- generate: the whole pipeline per 10-s sample: the diffusion-Transformer mapper (200 steps,
  guidance 0.9) and AudioLDM-s (200 DDIM steps, guidance 2.5, vocoder), at the best of a few batch
  sizes (the paper's Table 1 figure is 35.45 s per sample on one RTX A6000);
- extractors: PANNs Cnn14, VGGish and Wav2CLIP on 10-s clips at 16 kHz, each and all three;
- mapper: the diffusion Transformer's training steps (batch 448, the trainer's own step: bf16, CUDA
  graphs, fused AdamW) over one epoch of 183,730 synthetic pairs;
- scaling: embed and generate on 1 and on N GPUs at once, one Dask worker pinned to each
  (`runner.gpus`), as total throughput and speed-up (only where several GPUs are visible).
Under 8 minutes on one H100/H200, most of it building the random-weight models.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

TRAIN_PAIRS = 183_730
# The goals per H100/H200, and the paper's figure for the whole pipeline.
GOALS = {"embed": "170 clips/s per GPU", "generate": "<= 0.25 s/sample per GPU (paper: 35.45 on an A6000)",
         "mapper": "<= 1.8 s/epoch (100 epochs in 3 min)"}


def settings(quick: bool, device: str) -> dict:
    if quick:  # tiny models on CPU: checks every row runs, in well under 2 minutes
        return {"profile": "tiny", "device": device, "clips": 4, "distinct": 2, "clip_seconds": 2.0, "size": (320, 240),
                "gen_batches": [1, 2], "gen_steps": 10, "mapper_steps": 10, "gen_seconds": 1.0, "eval_clips": 4,
                "mapper_batch": 32, "mapper_timed_steps": 1, "mapper_depth": 1}
    return {"profile": "paper-arch", "device": device, "clips": 512, "distinct": 16, "clip_seconds": 10.0,
            "size": (640, 360),
            "gen_batches": [8, 16, 32], "gen_steps": 200, "mapper_steps": 200, "gen_seconds": 10.0, "eval_clips": 256,
            "mapper_batch": 448, "mapper_timed_steps": math.ceil(TRAIN_PAIRS / 448), "mapper_depth": 12}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _clips(s: dict) -> list[dict]:
    """Clip rows of synthetic videos (made once under $TMPDIR), cycled to s['clips']."""
    from v2a.tools.synth import make_synthetic_dataset

    width, height = s["size"]
    folder = (Path(os.environ.get("TMPDIR", "/tmp"))
              / f"v2a-gpu-suite-{s['distinct']}x{s['clip_seconds']:g}s-{width}x{height}")
    videos = sorted((folder / "videos").glob("*.mp4"))
    if len(videos) < s["distinct"]:
        classes = max(1, s["distinct"] // 2)
        make_synthetic_dataset(folder, classes=classes, clips_per_class=2, seconds=s["clip_seconds"], width=width,
                               height=height, fps=25, images_per_class=0, progress=False)
        videos = sorted((folder / "videos").glob("*.mp4"))
    return [{"clip_id": f"c{i:05d}", "kind": "video", "uri": str(videos[i % len(videos)])} for i in range(s["clips"])]


def embed_rate(s: dict) -> float:
    """clips/s of the embed stage's decode + CLIP + CLAP on this process's device."""
    from v2a.stages.embed import embed_clips
    from v2a.runtime.model_cache import get_model

    clip_model, clap_model = get_model(s["profile"], "clip", s["device"]), get_model(s["profile"], "clap", s["device"])
    clips = _clips(s)
    embed_clips(clips[:2], clip_model, clap_model, max_seconds=s["clip_seconds"], workers=0)  # warm-up
    _sync(s["device"])
    t0 = time.perf_counter()
    block, errors = embed_clips(clips, clip_model, clap_model, max_seconds=s["clip_seconds"], workers=0)
    _sync(s["device"])
    if errors or len(block) != len(clips):
        raise RuntimeError(f"embed: {len(errors)} clip(s) failed: {errors[:1]}")
    return len(clips) / (time.perf_counter() - t0)


def _mapper(s: dict, dim: int):
    """The diffusion-Transformer mapper (random weights, one short training epoch to make a checkpoint)."""
    from v2a.mapper.checkpoint import load_mapper
    from v2a.mapper.trainer import TrainConfig, train_mapper

    folder = tempfile.mkdtemp(prefix="v2a-gpu-suite-mapper-")
    x = np.random.default_rng(0).normal(size=(8, dim)).astype(np.float32)
    train_mapper(x, x, None, None, TrainConfig(mapper="diff-transformer", epochs=1, batch_size=8, device=s["device"],
                                               depth=s["mapper_depth"]), folder, progress=False)
    return load_mapper(folder, device=s["device"])


def generate_rates(s: dict) -> dict[int, float]:
    """s/sample of mapper + AudioLDM per batch size, the whole pipeline from CLIP embedding to waveform."""
    from v2a.runtime.model_cache import get_model

    gen = get_model(s["profile"], "generator", s["device"])
    negative = gen.negative_embedding()
    mapper = _mapper(s, gen.cond_dim)
    rng = np.random.default_rng(0)

    def run(batch: int, steps: int, mapper_steps: int) -> None:
        clip = rng.normal(size=(batch, gen.cond_dim)).astype(np.float32)
        cond = mapper.map(clip, samples=1, seed=0, steps=mapper_steps)[:, 0]
        gen.generate(cond, seeds=list(range(batch)), negative=negative, steps=steps, guidance_scale=2.5,
                     seconds=s["gen_seconds"], scheduler="ddim")

    out = {}
    for batch in s["gen_batches"]:
        run(batch, 2, 2)  # warm-up at this shape: kernels, allocator, autotuning
        _sync(s["device"])
        t0 = time.perf_counter()
        run(batch, s["gen_steps"], s["mapper_steps"])
        _sync(s["device"])
        out[batch] = (time.perf_counter() - t0) / batch
    return out


def extractor_rates(s: dict) -> dict[str, float]:
    """clips/s of each evaluation extractor on 10-s (or the quick length) 16 kHz clips, as evaluation runs them."""
    from v2a.metrics.scores import _extract
    from v2a.runtime.model_cache import get_model

    seconds = s["clip_seconds"]
    rng = np.random.default_rng(1)
    waves = {f"c{i}": (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
             for i in range(s["eval_clips"])}
    ids = sorted(waves)
    out = {}
    for name in ("panns", "vggish", "wav2clip"):
        extractor = get_model(s["profile"], f"extractor:{name}", s["device"])
        _extract(extractor, waves, ids[:2], 16000, seconds, False)  # warm-up
        _sync(s["device"])
        t0 = time.perf_counter()
        _extract(extractor, waves, ids, 16000, seconds, False)
        _sync(s["device"])
        out[name] = len(ids) / (time.perf_counter() - t0)
    return out


def mapper_epoch_seconds(s: dict) -> float:
    """Seconds per epoch of 183,730 pairs at batch 448: the trainer's own step, timed over
    `mapper_timed_steps` steps (a whole epoch on a GPU) and scaled to an epoch."""
    from v2a.mapper.factory import build_objective
    from v2a.mapper.trainer import TrainConfig, TrainStep, make_network, make_optimizer

    device = torch.device(s["device"])
    batch, dim = s["mapper_batch"], 512
    config = TrainConfig(mapper="diff-transformer", batch_size=batch, device=str(device), depth=s["mapper_depth"])
    net = make_network(config, dim).to(device).train()
    step = TrainStep(net, build_objective(config.kind, dim, config.objective_settings()),
                     make_optimizer(net, config, device), config, device)
    gen = torch.Generator(device=device).manual_seed(0)
    pool = 16 * batch  # distinct rows, gathered by a permutation as the trainer does
    clip = torch.nn.functional.normalize(torch.randn(pool, dim, device=device, generator=gen), dim=-1)
    clap = torch.nn.functional.normalize(torch.randn(pool, dim, device=device, generator=gen), dim=-1)
    perm = torch.randperm(pool, device=device, generator=gen)

    def run(steps: int) -> torch.Tensor:
        loss = torch.zeros((), device=device)
        for i in range(steps):
            j = (i * batch) % (pool - batch + 1)
            loss = step(clip[perm[j:j + batch]], clap[perm[j:j + batch]], gen)
        return loss

    run(TrainStep.WARMUP_STEPS + 1 if device.type == "cuda" else 1)  # warm-up: CUDA graph capture, autotuning
    _sync(s["device"])
    t0 = time.perf_counter()
    loss = run(s["mapper_timed_steps"])
    _sync(s["device"])
    if not torch.isfinite(loss):
        raise RuntimeError("mapper: non-finite loss")
    per_step = (time.perf_counter() - t0) / s["mapper_timed_steps"]
    return per_step * math.ceil(TRAIN_PAIRS / batch)


def _on_worker(kind: str, s: dict) -> float:
    """Run on a Dask worker pinned to one GPU (it sees it as `cuda`)."""
    if kind == "embed":
        return embed_rate(s)
    rates = generate_rates({**s, "gen_batches": [s["best_batch"]]})
    return 1.0 / rates[s["best_batch"]]


def scaling(s: dict, gpus: list[str], best_batch: int) -> dict[str, list[float]]:
    """Throughput (embed clips/s, generated samples/s) with 1 and with len(gpus) pinned workers at once."""
    from distributed import Client

    from flows.runners import gpu_cluster

    found = {"embed": [], "generate": []}
    for n in (1, len(gpus)):
        with gpu_cluster(gpus[:n]) as cluster, Client(cluster) as client:
            workers = sorted(client.scheduler_info()["workers"])
            for kind in found:
                job = {**s, "device": "cuda", "best_batch": best_batch}
                client.gather([client.submit(_on_worker, kind, {**job, "clips": 8, "gen_batches": [1]},
                                             workers=[w], pure=False) for w in workers])  # models loaded
                t0 = time.perf_counter()
                rates = client.gather([client.submit(_on_worker, kind, job, workers=[w], pure=False)
                                       for w in workers])
                wall = time.perf_counter() - t0
                work = s["clips"] if kind == "embed" else best_batch
                found[kind].append(n * work / wall if wall else sum(rates))
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CPU smoke run: tiny profile, small counts")
    p.add_argument("--device", help="default: cuda when available (--quick: cpu)")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    device = args.device or ("cpu" if args.quick or not torch.cuda.is_available() else "cuda")
    s = settings(args.quick, device)
    started = time.perf_counter()
    gpus = []
    if device.startswith("cuda"):
        from v2a.core.devices import visible_gpus

        gpus = visible_gpus()
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {os.cpu_count()} cores"
    rows = []

    def add(measure: str, value: float, unit: str, goal: str = "", setting: str = "") -> None:
        rows.append({"measure": measure, "value": round(float(value), 4), "unit": unit, "goal": goal,
                     "setting": setting})
        print(f"  {measure}: {value:.4g} {unit}", flush=True)

    print(f"gpu_suite: profile {s['profile']} on {device} ({where})", flush=True)
    add("embed", embed_rate(s), "clips/s", GOALS["embed"],
        f"{s['clips']} clips of {s['clip_seconds']:g} s, {s['size'][0]}x{s['size'][1]}; decode + CLIP (10 frames) "
        "+ CLAP")
    per_batch = generate_rates(s)
    best = min(per_batch, key=per_batch.get)
    add("generate", per_batch[best], "s/sample", GOALS["generate"],
        f"batch {best} (of {', '.join(f'{b}: {v:.3g}' for b, v in per_batch.items())}); mapper "
        f"{s['mapper_steps']} steps + AudioLDM {s['gen_steps']} DDIM steps, guidance 2.5, {s['gen_seconds']:g} s")
    rates = extractor_rates(s)
    for name, rate in rates.items():
        add(f"extractor {name}", rate, "clips/s", "", f"{s['eval_clips']} clips of {s['clip_seconds']:g} s, 16 kHz")
    add("extractors, all three", 1.0 / sum(1.0 / r for r in rates.values()), "clips/s", "",
        "PANNs + VGGish + Wav2CLIP per clip")
    epoch = mapper_epoch_seconds(s)
    timed = ("one whole epoch" if s["mapper_timed_steps"] >= math.ceil(TRAIN_PAIRS / s["mapper_batch"])
             else f"{s['mapper_timed_steps']} steps, scaled")
    add("mapper epoch", epoch, "s/epoch", GOALS["mapper"],
        f"diff-transformer depth {s['mapper_depth']}, batch {s['mapper_batch']}, {TRAIN_PAIRS:,} pairs ({timed}); "
        f"100 epochs: {epoch * 100 / 60:.1f} min")
    if len(gpus) > 1:
        scaled = scaling(s, gpus, best)
        for kind, unit in (("embed", "clips/s"), ("generate", "samples/s")):
            one, many = scaled[kind]
            add(f"{kind} on {len(gpus)} GPUs", many, unit, "", f"1 GPU: {one:.3g} {unit}; speed-up {many / one:.2f}x "
                f"over {len(gpus)} pinned Dask workers")
    else:
        rows.append({"measure": "1 -> N GPU scaling", "value": None, "unit": "", "goal": "",
                     "setting": f"not measured: {len(gpus)} GPU(s) visible"})
    total = time.perf_counter() - started

    print()
    print(f"v2a GPU suite — profile {s['profile']}, {where}, {total:.0f} s in all (random weights: compute cost only)")
    print(f"| {'measure':<24} | {'value':>10} | {'unit':<9} | {'goal':<48} | setting")
    print(f"|{'-' * 26}|{'-' * 12}|{'-' * 11}|{'-' * 50}|---------")
    for r in rows:
        value = "—" if r["value"] is None else f"{r['value']:.4g}"
        print(f"| {r['measure']:<24} | {value:>10} | {r['unit']:<9} | {r['goal']:<48} | {r['setting']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"profile": s["profile"], "device": device, "where": where,
                                               "seconds": total, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
