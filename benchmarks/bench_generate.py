"""Generation throughput: seconds per 10-s sample through mapper + AudioLDM, per batch size and scheduler.

    python benchmarks/bench_generate.py --profile tiny                         # CPU
    python benchmarks/bench_generate.py --profile paper-arch --device cuda     # GPU machine

Prints a table: profile, device, dtype, scheduler, steps, batch, s/sample (amortised) and peak GPU
memory. The mapper is the paper's best (diffusion Transformer, depth 12, 200 steps) with random
weights; its time is part of each row, as in the paper's whole-pipeline figure (35.45 s/sample).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", default="1,8,16")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", default="ddim:200,dpmsolver++:25")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    from v2a.models import build_generator, load_profile

    profile = load_profile(args.profile)
    gen = build_generator(profile["generator"], device=args.device)
    negative = gen.negative_embedding()
    mapper = _mapped_sampler(gen.cond_dim, args.device)
    rows = []
    for spec in args.runs.split(","):
        scheduler, steps = spec.split(":")
        for batch in [int(b) for b in args.batches.split(",")]:
            clip = np.random.default_rng(0).normal(size=(batch, gen.cond_dim)).astype(np.float32)
            seeds = list(range(batch))
            gen.generate(mapper(clip[:1]), seeds=seeds[:1], negative=negative, steps=2, seconds=args.seconds,
                         scheduler=scheduler)  # warm-up: kernels, allocator, cuDNN autotune
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                cond = mapper(clip)
                gen.generate(cond, seeds=seeds, negative=negative, steps=int(steps), seconds=args.seconds,
                             scheduler=scheduler)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else float("nan")
            rows.append((args.profile, args.device, str(gen.dtype).replace("torch.", ""), scheduler, int(steps), batch,
                         min(times) / batch, peak))
            print(f"  {rows[-1]}", flush=True)
    print()
    print(f"{'profile':<11} {'device':<6} {'dtype':<8} {'scheduler':<12} {'steps':>5} {'batch':>5} "
          f"{'s/sample':>9} {'peak GiB':>8}")
    for r in rows:
        print(f"{r[0]:<11} {r[1]:<6} {r[2]:<8} {r[3]:<12} {r[4]:>5} {r[5]:>5} {r[6]:>9.3f} {r[7]:>8.2f}")
    print(f"\n{args.seconds:g} s of audio per sample; mapper: diffusion Transformer depth 12, 200 steps, guidance 0.9 "
          "(random weights); generator guidance 2.5.")


def _mapped_sampler(dim: int, device: str):
    """Whole-pipeline timing includes the mapper's 200-step sampling."""
    import tempfile

    from v2a.mapper.checkpoint import load_mapper
    from v2a.mapper.trainer import TrainConfig, train_mapper

    tmp = tempfile.mkdtemp()
    x = np.random.default_rng(0).normal(size=(8, dim)).astype(np.float32)
    train_mapper(x, x, None, None, TrainConfig(mapper="diff-transformer", epochs=1, batch_size=8, device=device),
                 tmp, progress=False)
    mapper = load_mapper(tmp, device=device)
    return lambda clip: mapper.map(clip, samples=1, seed=0)[:, 0]


if __name__ == "__main__":
    main()
