"""What the results rows' bootstrap intervals cost at VGGSound's test size (issue 27): 15,000 clips, one sample each.

Times `v2a.metrics.bootstrap` on random features of the shapes the evaluation sees: Fréchet distances on 2048-d
(PANNs), 768-d (PaSST) and 128-d frames (VGGish, ten per clip), the Inception Score on 527 AudioSet classes,
and a per-sample mean (KL, CS, IB, DeSync). A Fréchet resample is timed over a few resamples and the totals for
N resamples extrapolated (setup + N x per resample); the others run their full count. For comparison it also
times one Fréchet distance the way the point value is computed (sqrtm and its eigenvalue check), which is
what a resample would cost without the mapped-rows form.

    .venv/bin/python benchmarks/bootstrap_cost.py                 # the table in benchmarks/README.md
    .venv/bin/python benchmarks/bootstrap_cost.py --clips 2000    # a quicker look

Memory: the tracemalloc peak of numpy's allocations during the setup and one resample, over the features
themselves (which the evaluation holds anyway), and the process's peak RSS at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v2a.metrics import bootstrap  # noqa: E402
from v2a.metrics.frechet import frechet_distance_from_stats, gaussian_stats  # noqa: E402


def _features(rng, n: int, dim: int) -> np.ndarray:
    """Correlated features with a full-rank covariance, like an extractor's embeddings."""
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return (rng.standard_normal((n, dim)) @ mix).astype(np.float32)


def _mib(nbytes: float) -> float:
    return nbytes / 2**20


def frechet_cost(rng, clips: int, dim: int, rows_per_clip: int, timed: int, naive: bool) -> dict:
    rows = clips * rows_per_clip
    gen, ref = _features(rng, rows, dim), _features(rng, rows, dim) * 1.1
    ref_mu, ref_sigma = gaussian_stats(ref)
    del ref
    tracemalloc.start()
    t = time.perf_counter()
    resampler = bootstrap.FrechetResampler(gen, ref_mu, ref_sigma)
    setup = time.perf_counter() - t
    setup_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    counts = next(bootstrap.clip_counts(clips, timed))
    weights = np.repeat(counts, rows_per_clip, axis=1)
    t = time.perf_counter()
    for w in weights:
        resampler.one(w)
    per = (time.perf_counter() - t) / timed
    one_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out = {"statistic": f"Fréchet, {dim}-d" + (f", {rows_per_clip} frames/clip" if rows_per_clip > 1 else ""),
           "shape": f"{rows} x {dim}", "setup_s": setup, "per_resample_s": per,
           "setup_mib": _mib(setup_peak), "resample_mib": _mib(one_peak), "timed": timed}
    if naive:
        t = time.perf_counter()
        mu, sigma = gaussian_stats(gen)
        frechet_distance_from_stats(mu, sigma, ref_mu, ref_sigma)
        out["naive_s"] = time.perf_counter() - t
    return out


def inception_cost(rng, clips: int, classes: int, resamples: int) -> dict:
    logits = rng.normal(0.0, 3.0, (clips, classes))
    tracemalloc.start()
    t = time.perf_counter()
    reps = bootstrap.replicates([f"c{i}" for i in range(clips)], bootstrap.InceptionResampler(logits), resamples)
    total = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(reps) == resamples
    return {"statistic": "Inception Score", "shape": f"{clips} x {classes}", "setup_s": 0.0,
            "per_resample_s": total / resamples, "setup_mib": 0.0, "resample_mib": _mib(peak), "timed": resamples}


def mean_cost(rng, clips: int, resamples: int) -> dict:
    values = rng.normal(0.0, 1.0, clips)
    ids = [f"c{i:05d}" for i in range(clips)]
    tracemalloc.start()
    t = time.perf_counter()
    bootstrap.mean_interval(ids, values, resamples)
    total = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"statistic": "per-sample mean", "shape": f"{clips}", "setup_s": 0.0, "per_resample_s": total / resamples,
            "setup_mib": 0.0, "resample_mib": _mib(peak), "timed": resamples}


def _clock(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3g} s"


def table(rows: list[dict], counts: list[int]) -> str:
    head = ("| statistic | shape | setup | per resample | memory (setup / resample) | "
            + " | ".join(f"N = {n}" for n in counts) + " |")
    lines = [head, "|" + "---|" * (5 + len(counts))]
    for r in rows:
        totals = " | ".join(_clock(r["setup_s"] + n * r["per_resample_s"]) for n in counts)
        lines.append(f"| {r['statistic']} | {r['shape']} | {_clock(r['setup_s'])} | {_clock(r['per_resample_s'])} "
                     f"(of {r['timed']}) | {r['setup_mib']:.0f} / {r['resample_mib']:.0f} MiB | {totals} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=15000)
    p.add_argument("--timed", type=int, default=5, help="Fréchet resamples timed (default: %(default)s)")
    p.add_argument("--counts", type=int, nargs="+", default=[100, 200, 1000])
    p.add_argument("--no-naive", action="store_true", help="skip the sqrtm-path distance (tens of seconds at 2048-d)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = [frechet_cost(rng, args.clips, 2048, 1, args.timed, not args.no_naive),
            frechet_cost(rng, args.clips, 768, 1, args.timed, False),
            frechet_cost(rng, args.clips, 128, 10, args.timed, False),
            inception_cost(rng, args.clips, 527, 100),
            mean_cost(rng, args.clips, bootstrap.CLIP_RESAMPLES)]
    print(f"bootstrap cost, {args.clips} clips, {os.cpu_count()} CPU core(s), numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(table(rows, args.counts))
    if "naive_s" in rows[0]:
        print(f"one 2048-d distance as the point value computes it (covariance, sqrtm, eigenvalue check): "
              f"{_clock(rows[0]['naive_s'])}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; load average at the end "
          f"{os.getloadavg()[0]:.1f} (other processes on these cores stretch every time above)")


if __name__ == "__main__":
    main()
