"""`v2a compare`: B - A with a paired bootstrap interval over the shared clips, and one-line refusals (issue 27).

Runs here are folders scored with the toy metric of tests/metrics/test_metric_table.py (a `mean` kind: one RMS
level per sample, lower is better), so each test takes a moment and no Prefect server.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from flows.cli import main
from tests.metrics.test_metric_table import SR, TOY, LevelMeter
from v2a.io.layout import RunLayout
from v2a.metrics import bootstrap, specs
from v2a.stages.evaluate import evaluate_folder


@pytest.fixture
def toy_metric(monkeypatch):
    monkeypatch.setattr(specs, "METRIC_SPECS", (*specs.METRIC_SPECS, TOY))

LEVELS = np.random.default_rng(0).uniform(0.05, 0.5, 40)  # the clips differ a lot from each other


def _score(tmp_path, run_id: str, gain: float, clips: int = 40, jitter: float = 0.0, **how) -> None:
    folder = tmp_path / run_id
    folder.mkdir()
    gains = gain * (1.0 + np.random.default_rng(1).normal(0.0, jitter, clips))
    for i in range(clips):
        wave = (gains[i] * LEVELS[i] * np.sin(np.arange(SR) / (5.0 + i))).astype(np.float32)
        sf.write(folder / f"clip{i:02d}.wav", np.stack([wave, wave], axis=1), SR, subtype="FLOAT")
    evaluate_folder(str(folder), RunLayout(str(tmp_path / "out")).results, {"meter": LevelMeter()},
                    clip_seconds=1.0, metrics=["level"], run_id=run_id, **how)


def _compare(tmp_path, capsys, *args) -> tuple[int, str, str]:
    code = main(["compare", "--out", str(tmp_path / "out"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _line(out: str, title: str) -> str:
    return next(line for line in out.splitlines() if line.lstrip().startswith(title))


def test_a_small_change_every_clip_shares_is_resolved_by_the_pairing(toy_metric, tmp_path, capsys):
    # B is 2 % louder on every clip. The clips' own levels spread far more than 2 %, so only a paired interval
    # (each clip drawn for both runs at once) can tell; it says A is better, since a lower level is.
    _score(tmp_path, "quiet", 1.0)
    _score(tmp_path, "loud", 1.02)
    code, out, _ = _compare(tmp_path, capsys, "quiet", "loud")
    assert code == 0
    assert "A = quiet, B = loud; protocol v2a-mapper, channel rule mean, 40 clips" in out
    row = _line(out, "Level (RMS)")
    scores = pd.read_parquet(RunLayout(str(tmp_path / "out")).scores)
    per = {r: scores[scores["run_id"] == r].sort_values("clip_id") for r in ("quiet", "loud")}
    a = (list(per["quiet"]["clip_id"]), per["quiet"]["value"].to_numpy())
    b = (list(per["loud"]["clip_id"]), per["loud"]["value"].to_numpy())
    low, high = bootstrap.percentile_interval(bootstrap.paired_difference_replicates(a, b)[0])
    assert 0 < low < high and f"[{low:.4g}, {high:.4g}]" in row
    assert f"{np.mean(b[1]) - np.mean(a[1]):.4g}" in row and "A better (lower is better)" in row
    # Resampled on their own, the two means spread too far for the same 2 % to be resolved.
    own = [bootstrap.mean_interval(*side) for side in (a, b)]
    assert own[1][0] < own[0][1]


def test_two_runs_that_differ_by_noise_only_are_not_called_different(toy_metric, tmp_path, capsys):
    # B's clips are each 1 % louder or quieter at random: some move, none consistently.
    _score(tmp_path, "one", 1.0)
    _score(tmp_path, "two", 1.0, jitter=0.01)
    code, out, _ = _compare(tmp_path, capsys, "one", "two")
    row = _line(out, "Level (RMS)")
    low, high = (float(v) for v in row.split("[")[1].split("]")[0].split(","))
    assert code == 0 and low < 0 < high and "no difference resolved" in row


@pytest.mark.parametrize("how, words", [
    ({"protocol": "av-benchmark"}, "runs of different protocols"),
    ({"channel_rule": "channel0-minus-mean"}, "runs of different channel rules"),
    ({"clips": 30}, "runs of different clip sets"),
])
def test_runs_scored_differently_are_refused_in_one_line(toy_metric, tmp_path, capsys, how, words):
    _score(tmp_path, "a", 1.0)
    _score(tmp_path, "b", 1.0, **how)
    code, out, err = _compare(tmp_path, capsys, "a", "b")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("v2a compare: error: ") and words in err
    assert "Traceback" not in err


def test_a_run_without_results_and_a_protocol_one_run_lacks_are_refused(toy_metric, tmp_path, capsys):
    _score(tmp_path, "a", 1.0)
    _score(tmp_path, "b", 1.0)
    code, _, err = _compare(tmp_path, capsys, "a", "nope")
    assert code == 2 and "run nope has no results" in err
    code, _, err = _compare(tmp_path, capsys, "a", "b", "--protocol", "av-benchmark")
    assert code == 2 and "run a has no results under protocol av-benchmark" in err
