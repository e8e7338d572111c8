"""`v2a compare` on set statistics (FD, FAD, IS) of two pipeline-built runs: paired intervals from the features
kept by `evaluate.keep_features`, and without them a one-line hint (issue 27 item 5).

The pipeline runs twice on the tiny profile, two generation seeds, so the two runs share their clips, protocol
and reference statistics and differ in their audio."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from v2a.io.features import read_features
from v2a.io.layout import RunLayout
from v2a.metrics import bootstrap
from v2a.tools.compare import KEEP_HINT, compare_runs
from v2a.tools.set_statistics import weighted_statistic

SET_METRICS = ("fd", "fad", "is")
KEY = ("v2a-mapper", "mean")


@pytest.fixture(scope="module")
def two_runs(synth_dir, tmp_path_factory, prefect_harness):
    from flows.pipeline import pipeline_flow

    out = tmp_path_factory.mktemp("paired")
    runs = []
    for seed in (0, 1):
        config = {
            "out": str(out), "profile": "tiny",
            "data": {"csv": str(synth_dir / "vggsound.csv"), "videos": str(synth_dir / "videos"),
                     "dataset": "synthetic"},
            "embed": {"num_frames": 3, "max_seconds": 2.0, "shard_size": 6},
            "train": {"mapper": "reg-mlp", "epochs": 1, "batch_size": 8},
            "generate": {"seconds": 1.0, "steps": 3, "batch_size": 4, "seed": seed},
            "evaluate": {"keep_features": True},
        }
        runs.append(pipeline_flow(config)["run_id"])
    return out, runs


def _results(out) -> pd.DataFrame:
    return pd.read_parquet(out / "results")


def test_set_statistics_get_paired_intervals_from_kept_features(two_runs, capsys):
    from flows.cli import main

    out, (a, b) = two_runs
    results = _results(out).set_index(["run_id", "metric"])["value"]
    comparison = compare_runs(str(out), a, b, set_resamples=50)
    rows = {r.metric: r for r in comparison.rows}
    for m in SET_METRICS:
        row = rows[m]
        assert row.low is not None and row.low <= row.difference <= row.high, (m, row)
        assert row.shared_clips == comparison.n_clips
        assert "no paired interval" not in row.note
        # On the same clips the paired point value is the difference of the results rows (vectors stored as float32).
        assert row.difference == pytest.approx(results[(b, m)] - results[(a, m)], rel=1e-4, abs=1e-5)
        # Unit weights give each run's own stored value.
        for run in (a, b):
            kept = read_features(RunLayout(str(out)).features, (run, *KEY), m)
            statistic = weighted_statistic(str(out), m, KEY[0], kept)
            assert statistic(np.ones((1, len(kept.vectors))))[0] == pytest.approx(results[(run, m)], rel=1e-4,
                                                                                  abs=1e-5)
    # The command prints them like the per-sample rows, with the set statistics' resample count.
    assert main(["compare", "--out", str(out), a, b, "--set-resamples", "20"]) == 0
    printed = capsys.readouterr().out
    assert "20 for set statistics" in printed and "no paired interval" not in printed


def test_the_paired_replicates_are_the_two_runs_features_drawn_together(two_runs):
    out, (a, b) = two_runs
    kept = [read_features(RunLayout(str(out)).features, (run, *KEY), "fd") for run in (a, b)]
    assert not np.array_equal(kept[0].vectors, kept[1].vectors)  # two runs' own audio
    stats = [weighted_statistic(str(out), "fd", KEY[0], k) for k in kept]
    reps, point, _ = bootstrap.paired_set_replicates((kept[0].clip_ids, stats[0]), (kept[1].clip_ids, stats[1]), 30)
    row = next(r for r in compare_runs(str(out), a, b, set_resamples=30).rows if r.metric == "fd")
    assert (row.low, row.high) == bootstrap.percentile_interval(reps) and row.difference == point


def test_a_rescore_writes_over_the_features_and_one_without_them_leaves_a_one_line_hint(two_runs, capsys):
    from flows.cli import main

    out, (a, b) = two_runs
    gen_dir = out / "generations" / b
    before = sorted(p.name for p in (out / "features").glob("*.parquet"))
    counts = pd.read_parquet(out / "features").groupby(["run_id", "metric"]).size()
    assert len(counts) == 2 * len(SET_METRICS) and (counts[a] == counts[b]).all()
    # Kept again: one part per metric, written over, never a second copy of the rows.
    assert main(["evaluate", "--generations", str(gen_dir), "--out", str(out), "--profile", "tiny",
                 "--keep-features"]) == 0
    assert sorted(p.name for p in (out / "features").glob("*.parquet")) == before
    assert pd.read_parquet(out / "features").groupby(["run_id", "metric"]).size().equals(counts)

    # B scored again without keeping its features: its parts go (their vectors may no longer be what gave B's rows).
    assert main(["evaluate", "--generations", str(gen_dir), "--out", str(out), "--profile", "tiny"]) == 0
    after = sorted(p.name for p in (out / "features").glob("*.parquet"))
    assert len(after) == len(before) - len(SET_METRICS)
    capsys.readouterr()
    assert main(["compare", "--out", str(out), a, b]) == 0
    printed = capsys.readouterr().out
    for title in ("FD ", "FAD ", "IS "):
        line = next(x for x in printed.splitlines() if x.lstrip().startswith(title))
        assert "no paired interval" in line and KEEP_HINT in line and "B kept no features" in line
    kl = next(x for x in printed.splitlines() if x.lstrip().startswith("KL "))
    assert "no paired interval" not in kl  # the per-sample rows are paired as before
