"""Throughput of the four paper-default mappers: training pairs/s and diffusion sampling.

    python benchmarks/bench_mapper.py --device cuda            # full: 300 timed steps each
    python benchmarks/bench_mapper.py --quick                  # a few steps, extrapolated
    python benchmarks/bench_mapper.py --device cuda --no-graphs  # eager kernel launches, for comparison
    python benchmarks/bench_mapper.py --device cuda --e2e 2    # plus train_mapper itself, 2 full epochs

Training is timed with the same TrainStep that train_mapper runs (bf16 autocast on CUDA, each
full-batch step replayed as one CUDA graph, fused AdamW, gradient clipping, the objective with
its random timesteps and condition dropout), on random unit vectors held on the device and
sliced by a permutation, as train_mapper does. The projection is 100 epochs of the 183,730 VGGSound training pairs,
optimizer steps only; the validation column is one pass over 15,446 validation pairs with
train_mapper's default validation settings (25 sampling steps for diffusion mappers).
Needs only torch (+ numpy) and v2a.mapper.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v2a.mapper.factory import build_objective, count_trainable_params  # noqa: E402
from v2a.mapper.trainer import TrainConfig, TrainStep, make_network, make_optimizer, validate  # noqa: E402

MAPPERS = ("reg-mlp", "reg-transformer", "diff-mlp", "diff-transformer")
TRAIN_PAIRS = 183_730
VAL_PAIRS = 15_446


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _unit(n: int, dim: int, device: torch.device, gen: torch.Generator) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, device=device, generator=gen), dim=-1)


def bench_training(name: str, args, device: torch.device) -> dict:
    config = TrainConfig(mapper=name, batch_size=args.batch_size, device=str(device), bf16=not args.no_bf16,
                         compile=args.compile, cuda_graphs=not args.no_graphs)
    dim = 512
    net = make_network(config, dim).to(device).train()
    objective = build_objective(config.kind, dim, config.objective_settings())
    step = TrainStep(net, objective, make_optimizer(net, config, device), config, device)
    gen = torch.Generator(device=device).manual_seed(0)
    pool = 16 * args.batch_size  # enough distinct rows that batches are real gathers
    clip, clap = _unit(pool, dim, device, gen), _unit(pool, dim, device, gen)
    perm = torch.randperm(pool, device=device, generator=gen)

    def run(steps: int) -> torch.Tensor:
        loss = torch.zeros((), device=device)
        for i in range(steps):
            j = (i * args.batch_size) % (pool - args.batch_size + 1)
            idx = perm[j:j + args.batch_size]
            loss = step(clip[idx], clap[idx], gen)
        return loss

    first = run(args.warmup)
    _sync(device)
    t0 = time.perf_counter()
    last = run(args.steps)
    _sync(device)
    seconds = time.perf_counter() - t0
    if not (torch.isfinite(first) and torch.isfinite(last)):
        raise RuntimeError(f"{name}: non-finite loss during the benchmark")
    pairs_per_s = args.steps * args.batch_size / seconds
    result = {"mapper": name, "params_m": count_trainable_params(net) / 1e6, "step_ms": 1e3 * seconds / args.steps,
              "pairs_per_s": pairs_per_s, "epochs_min": args.epochs * TRAIN_PAIRS / pairs_per_s / 60,
              "loss_first": float(first), "loss_last": float(last)}
    if args.val:
        result["val_s"] = bench_validation(net, objective, config, device, args)
    if config.kind == "diffusion":
        result["sample_per_s"] = bench_sampling(net, objective, config, device, args)
    return result


def bench_validation(net, objective, config: TrainConfig, device: torch.device, args) -> float:
    n = VAL_PAIRS
    gen = torch.Generator(device=device).manual_seed(1)
    clip, clap = _unit(n, 512, device, gen), _unit(n, 512, device, gen)
    validate(net, objective, clip[: min(n, 64)], clap[: min(n, 64)], config, device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    validate(net, objective, clip, clap, config, device)
    _sync(device)
    return time.perf_counter() - t0


def bench_sampling(net, objective, config: TrainConfig, device: torch.device, args) -> float:
    """Embeddings/s at args.sample_steps steps (timed over fewer steps with --quick, scaled)."""
    net.eval()
    b = args.sample_batch
    gen = torch.Generator(device=device).manual_seed(2)
    cond = _unit(b, 512, device, gen)
    rows, samples = torch.arange(b, device=device), torch.zeros(b, dtype=torch.long, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and not args.no_bf16 else None
    timed_steps = args.sample_steps if not args.quick else 3
    objective.generate(net, cond, rows, samples, steps=2, autocast=autocast)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    out = objective.generate(net, cond, rows, samples, steps=timed_steps, autocast=autocast)
    _sync(device)
    seconds = (time.perf_counter() - t0) * args.sample_steps / timed_steps
    if not torch.isfinite(out).all():
        raise RuntimeError("non-finite sampled embeddings")
    net.train()
    return b / seconds


def bench_end_to_end(args, device: torch.device) -> None:
    """train_mapper itself on random data of VGGSound's size: the real epoch
    time with validation and checkpoints."""
    import tempfile

    import numpy as np

    from v2a.mapper.trainer import train_mapper

    rng = np.random.default_rng(0)

    def unit(n):
        x = rng.standard_normal((n, 512), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    train_clip, train_clap, val_clip, val_clap = unit(TRAIN_PAIRS), unit(TRAIN_PAIRS), unit(VAL_PAIRS), unit(VAL_PAIRS)
    config = TrainConfig(mapper=args.e2e_mapper, epochs=args.e2e, device=str(device), bf16=not args.no_bf16,
                         compile=args.compile, cuda_graphs=not args.no_graphs)
    stamps = []
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        train_mapper(train_clip, train_clap, val_clip, val_clap, config, out, progress=False,
                     on_epoch_end=lambda r: stamps.append((time.perf_counter(), r)))
        total = time.perf_counter() - t0
    print(f"\nend to end: train_mapper {args.e2e_mapper}, {args.e2e} epochs of {TRAIN_PAIRS:,} random pairs, "
          f"validation on {VAL_PAIRS:,} each epoch: {total:.1f} s in all")
    prev = t0
    for when, r in stamps:
        print(f"  epoch {r['epoch']}: {when - prev:.1f} s (train {r['train_seconds']:.1f} s, "
              f"val {r.get('val_seconds', 0):.1f} s), loss {r['train_loss']:.4f}, "
              f"val cosine {r.get('val_cosine', 0):.3f}")
        prev = when
    if len(stamps) > 1:
        steady = (stamps[-1][0] - stamps[0][0]) / (len(stamps) - 1)
        train_only = np.mean([r["train_seconds"] for _, r in stamps[1:]])
        print(f"  steady epoch {steady:.1f} s -> {args.epochs} epochs {steady * args.epochs / 60:.1f} min "
              f"({train_only * args.epochs / 60:.1f} min of it training)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true",
                   help="few steps, extrapolated; no validation pass; sampling batch 64 (CPU smoke run)")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--no-graphs", action="store_true", help="launch each training step's kernels from Python "
                   "instead of replaying a CUDA graph")
    p.add_argument("--no-bf16", action="store_true", help="float32 on CUDA instead of bf16 autocast")
    p.add_argument("--no-val", dest="val", action="store_false", help="skip timing a validation pass")
    p.add_argument("--mappers", nargs="+", default=list(MAPPERS), choices=MAPPERS)
    p.add_argument("--batch-size", type=int, default=448)
    p.add_argument("--steps", type=int, default=None, help="timed training steps (default 300, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 30, quick 1)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--e2e", type=int, default=0, metavar="EPOCHS",
                   help="also run train_mapper for this many full-size epochs (GPU; minutes on a CPU)")
    p.add_argument("--e2e-mapper", default="diff-transformer", choices=MAPPERS)
    p.add_argument("--sample-batch", type=int, default=1024)
    p.add_argument("--sample-steps", type=int, default=200)
    args = p.parse_args(argv)
    args.steps = args.steps or (3 if args.quick else 300)
    args.warmup = args.warmup or (1 if args.quick else 30)
    if args.quick:
        # A CPU smoke run: a validation pass and a 1024-row sampling batch would take minutes.
        args.val = False
        args.sample_batch = min(args.sample_batch, 64)
    if args.compile:
        args.warmup = max(args.warmup, 3)  # compilation happens in the first calls
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; batch {args.batch_size}; "
          f"bf16 {device.type == 'cuda' and not args.no_bf16}; compile {args.compile}; "
          f"cuda graphs {device.type == 'cuda' and not args.no_graphs and not args.compile}; "
          f"timed steps {args.steps} after {args.warmup} warm-up" + ("; QUICK (extrapolated)" if args.quick else ""))
    rows = []
    for mapper in args.mappers:
        r = bench_training(mapper, args, device)
        rows.append(r)
        print(f"  {mapper}: {r['step_ms']:.2f} ms/step, loss {r['loss_first']:.4f} -> {r['loss_last']:.4f}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    header = (f"{'mapper':<17} {'params M':>8} {'ms/step':>8} {'pairs/s':>10} "
              f"{f'{args.epochs} ep (min)':>13} {'val pass s':>10} {f'sample/s @{args.sample_steps}':>15}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        val = f"{r['val_s']:.1f}" if "val_s" in r else "-"
        smp = f"{r['sample_per_s']:.1f}" if "sample_per_s" in r else "-"
        print(f"{r['mapper']:<17} {r['params_m']:>8.2f} {r['step_ms']:>8.2f} {r['pairs_per_s']:>10.0f} "
              f"{r['epochs_min']:>13.1f} {val:>10} {smp:>15}")
    print(f"\n{args.epochs} epochs x {TRAIN_PAIRS:,} pairs, optimizer steps only; a validation pass is "
          f"{VAL_PAIRS:,} pairs (train_mapper runs one per epoch by default).")
    if args.e2e:
        bench_end_to_end(args, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
