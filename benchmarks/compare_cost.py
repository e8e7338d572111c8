"""What pairing the set statistics costs (issue 27 item 5): the features table's size per sample, and the time of
`v2a compare`'s paired resamples of two runs at VGGSound's test size (15,000 clips, one sample each).

Size: the parts `evaluate.keep_features` writes (v2a/io/features.py) for each protocol's set statistics, on
random float32 vectors of each extractor's shape: PANNs 2048-d embedding (FD) and 527 logits (IS), VGGish
128-d frames (FAD; one per 0.96 s, so 10 for a 10-s clip, 8 for av-benchmark's 8 s), PaSST 768-d (FD_PaSST)
and 527 logits (IS_PaSST). Random floats do not compress, so this is what an extractor's output costs at most.
Time: `v2a.metrics.bootstrap.paired_set_replicates` over two runs' rows, a few resamples timed and the totals
extrapolated (setup of both runs + N x per paired resample), as benchmarks/bootstrap_cost.py does for one run.

    .venv/bin/python benchmarks/compare_cost.py                 # the numbers in benchmarks/README.md
    .venv/bin/python benchmarks/compare_cost.py --clips 2000    # a quicker look
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v2a.io.features import write_features  # noqa: E402
from v2a.metrics import bootstrap  # noqa: E402
from v2a.metrics.frechet import gaussian_stats  # noqa: E402

# metric -> (dim, rows per sample) under each protocol's clip length.
SHAPES = {
    "v2a-mapper": {"fd": (2048, 1), "fad": (128, 10), "is": (527, 1)},
    "av-benchmark": {"fd_passt": (768, 1), "fd": (2048, 1), "fad": (128, 8), "is": (527, 1), "is_passt": (527, 1)},
}


def bytes_per_sample(rng, protocol: str, samples: int) -> dict[str, float]:
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        for metric, (dim, rows) in SHAPES[protocol].items():
            ids = [f"clip{i:06d}__s0" for i in range(samples) for _ in range(rows)]
            kept = {"sample_id": ids, "clip_id": [i[:-4] for i in ids],
                    "vectors": rng.standard_normal((len(ids), dim), dtype=np.float32),
                    "reference_stats": f"{folder}/ref.safetensors" if metric.startswith("f") else None}
            uri = write_features(folder, ("run-x", protocol, "mean"), metric, kept, "0" * 64)
            sizes[metric] = os.path.getsize(uri) / samples
    return sizes


def _features(rng, n: int, dim: int) -> np.ndarray:
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return (rng.standard_normal((n, dim)) @ mix).astype(np.float32)


def paired_cost(rng, clips: int, dim: int, rows_per_clip: int, timed: int, kind: str) -> dict:
    rows = clips * rows_per_clip
    clip_of_row = [f"c{i:06d}" for i in range(clips) for _ in range(rows_per_clip)]
    t = time.perf_counter()
    if kind == "frechet":
        ref_mu, ref_sigma = gaussian_stats(_features(rng, rows, dim) * 1.1)
        t = time.perf_counter()
        stats = [bootstrap.FrechetResampler(_features(rng, rows, dim), ref_mu, ref_sigma) for _ in range(2)]
    else:
        stats = [bootstrap.InceptionResampler(rng.normal(0.0, 3.0, (rows, dim))) for _ in range(2)]
    setup = time.perf_counter() - t
    t = time.perf_counter()
    reps, _, _ = bootstrap.paired_set_replicates((clip_of_row, stats[0]), (clip_of_row, stats[1]), timed)
    per = (time.perf_counter() - t) / timed
    assert len(reps) == timed
    name = "Fréchet" if kind == "frechet" else "Inception Score"
    return {"statistic": f"{name}, {dim}-d" + (f", {rows_per_clip} frames/clip" if rows_per_clip > 1 else ""),
            "shape": f"2 x {rows} x {dim}", "setup_s": setup, "per_s": per, "timed": timed}


def _clock(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3g} s"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=15000)
    p.add_argument("--timed", type=int, default=3, help="paired Fréchet resamples timed (default: %(default)s)")
    p.add_argument("--counts", type=int, nargs="+", default=[100, 200, 1000])
    p.add_argument("--size-samples", type=int, default=2000, help="samples written to measure the parts' size")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"compare cost, {args.clips} clips, {os.cpu_count()} CPU core(s), numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for protocol in SHAPES:
        sizes = bytes_per_sample(rng, protocol, args.size_samples)
        print(f"features per sample, {protocol}: " + ", ".join(f"{m} {b / 1024:.1f} KiB" for m, b in sizes.items())
              + f"; total {sum(sizes.values()) / 1024:.1f} KiB")
    rows = [paired_cost(rng, args.clips, 2048, 1, args.timed, "frechet"),
            paired_cost(rng, args.clips, 768, 1, args.timed, "frechet"),
            paired_cost(rng, args.clips, 128, 10, args.timed, "frechet"),
            paired_cost(rng, args.clips, 527, 1, 20, "inception")]
    print("| statistic | shape | setup (both runs) | per paired resample | "
          + " | ".join(f"N = {n}" for n in args.counts) + " |")
    print("|" + "---|" * (4 + len(args.counts)))
    for r in rows:
        totals = " | ".join(_clock(r["setup_s"] + n * r["per_s"]) for n in args.counts)
        print(f"| {r['statistic']} | {r['shape']} | {_clock(r['setup_s'])} | {_clock(r['per_s'])} (of {r['timed']}) "
              f"| {totals} |")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; load average at the end "
          f"{os.getloadavg()[0]:.1f} (other processes on these cores stretch every time above)")


if __name__ == "__main__":
    main()
