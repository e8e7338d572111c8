"""The metric table drives the evaluation: a metric is one row plus its extractor (issue 26).

A toy metric, the mean RMS level of the generated audio, is added here as one `MetricSpec` row and one
extractor registered under a new name, and nothing else: the evaluation computes it, the results table
stores it, `v2a results` prints it and the listening report shows it with the table's label and direction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from v2a.io.layout import RunLayout
from v2a.io.results import interval_text, read_results
from v2a.metrics import bootstrap
from v2a.metrics import specs
from v2a.metrics.extractors import BUILDERS, build_extractors
from v2a.metrics.scores import evaluate_audio
from v2a.metrics.specs import MetricSpec
from v2a.stages.evaluate import evaluate_folder
from v2a.stages.report.page import render_comparison, render_metrics
from v2a.stages.report.runs import RunData

SR = 16000


class LevelMeter:
    """A toy extractor: one RMS level per clip, under an output name no real extractor gives."""

    name = "level-meter"
    model_id = "level-meter@test"
    sample_rate = SR

    def __init__(self):
        self.calls = 0

    def outputs(self, batch: list[np.ndarray]) -> dict:
        self.calls += 1
        return {"rms": np.array([np.sqrt(np.mean(np.square(w, dtype=np.float64))) for w in batch])}


TOY = MetricSpec("level", "Level (RMS)", "meter", False, False, True, "mean RMS level of the generated audio",
                 "mean", "rms")


@pytest.fixture
def toy_metric(monkeypatch):
    monkeypatch.setitem(BUILDERS, "meter", lambda section, device="cpu", key="meter": LevelMeter())
    monkeypatch.setattr(specs, "METRIC_SPECS", (*specs.METRIC_SPECS, TOY))


def _waves(n: int = 3) -> dict[str, np.ndarray]:
    return {f"clip{i}__s0": (0.1 * (i + 1) * np.sin(np.arange(SR) / 7.0)).astype(np.float32) for i in range(n)}


def _rms(w) -> float:
    return float(np.sqrt(np.mean(np.square(w, dtype=np.float64))))


def test_a_new_row_and_its_extractor_are_computed_stored_printed_and_reported(toy_metric, tmp_path, capsys):
    waves = _waves()
    gen = tmp_path / "gen"
    gen.mkdir()
    for k, w in waves.items():
        sf.write(gen / f"{k}.wav", w, SR, subtype="FLOAT")
    out = tmp_path / "run"
    extractors = build_extractors({"meter": {}})

    rows = evaluate_folder(str(gen), RunLayout(str(out)).results, extractors, clip_seconds=1.0, metrics=["level"],
                           run_id="toy-run")

    expected = np.mean([_rms(w) for w in waves.values()])
    (row,) = rows
    assert row["metric"] == "level" and row["extractor"] == "level-meter@test" and row["n_samples"] == 3
    assert row["value"] == pytest.approx(expected, rel=1e-6)
    # Its kind (`mean`) averages per-sample values, so the row has its interval and the values are stored.
    assert row["ci_resamples"] == bootstrap.CLIP_RESAMPLES and row["ci_low"] < row["value"] < row["ci_high"]
    stored = read_results(str(out), "toy-run")
    assert list(stored["metric"]) == ["level"] and stored["value"].iloc[0] == pytest.approx(expected, rel=1e-6)
    assert (stored["ci_low"].iloc[0], stored["ci_high"].iloc[0]) == (row["ci_low"], row["ci_high"])
    per_sample = pd.read_parquet(RunLayout(str(out)).scores)
    assert sorted(per_sample["sample_id"]) == sorted(waves) and set(per_sample["metric"]) == {"level"}
    assert dict(zip(per_sample["sample_id"], per_sample["value"])) == pytest.approx(
        {k: _rms(w) for k, w in waves.items()}, rel=1e-6)

    from flows.cli import main

    assert main(["results", "--out", str(out), "--run", "toy-run"]) in (0, None)
    printed = capsys.readouterr().out
    assert "level" in printed and "level-meter@test" in printed
    assert interval_text(row["ci_low"], row["ci_high"]) in printed and "95% CI" in printed

    run = RunData("toy-run", pd.DataFrame(), stored)
    page = render_metrics([run]) + render_comparison([run, run], [])
    assert 'data-metric="level"' in page and f"{stored['value'].iloc[0]:.3f}" in page
    assert f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]</span>" in page  # the report shows the interval
    assert "Level (RMS) ↓" in page  # the label and the direction come from the row


def test_a_toy_per_sample_row_gets_its_interval_from_whole_clips(toy_metric):
    # Two samples per clip: the interval resamples the clips, each with both of its samples, seeded.
    waves = {f"clip{i}__s{k}": ((0.05 * (i + 1) + 0.01 * k) * np.sin(np.arange(SR) / 7.0)).astype(np.float32)
             for i in range(6) for k in range(2)}
    (row,) = evaluate_audio(waves, None, SR, None, {"meter": LevelMeter()}, clip_seconds=1.0, progress=False)
    ids = sorted(waves)
    values = [_rms(waves[k]) for k in ids]
    assert row["samples"]["sample_id"] == ids and row["samples"]["clip_id"] == [k.split("__")[0] for k in ids]
    low, high = bootstrap.mean_interval(row["samples"]["clip_id"], values)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)
    assert row["ci_low"] < row["value"] < row["ci_high"] and row["ci_resamples"] == bootstrap.CLIP_RESAMPLES


def test_one_extraction_serves_every_metric_of_an_extractor(toy_metric, monkeypatch):
    twin = MetricSpec("level_again", "Level again", "meter", False, False, False, "the same output, read twice",
                      "mean", "rms")
    monkeypatch.setattr(specs, "METRIC_SPECS", (*specs.METRIC_SPECS, twin))
    meter = LevelMeter()
    waves = _waves(2)

    rows = evaluate_audio(waves, None, SR, None, {"meter": meter}, clip_seconds=1.0, progress=False)

    assert [r["metric"] for r in rows] == ["level", "level_again"]  # the table's order
    assert rows[0]["value"] == rows[1]["value"] == pytest.approx(np.mean([_rms(w) for w in waves.values()]))
    assert meter.calls == 1  # one chunk, extracted once for both rows


def test_a_row_naming_an_output_its_extractor_lacks_fails_naming_both(toy_metric, monkeypatch):
    wrong = MetricSpec("loudness", "Loudness", "meter", False, False, False, "reads an output that is not there",
                       "mean", "lufs")
    monkeypatch.setattr(specs, "METRIC_SPECS", (*specs.METRIC_SPECS, wrong))
    with pytest.raises(ValueError, match="'loudness' reads 'lufs'.*'meter' extractor gives \\['rms'\\]"):
        evaluate_audio(_waves(2), None, SR, None, {"meter": LevelMeter()}, clip_seconds=1.0, metrics=["loudness"],
                       progress=False)


def test_every_row_has_a_known_kind_and_every_protocol_names_rows_of_the_table():
    from v2a.metrics.protocols import PROTOCOLS
    from v2a.metrics.scores import KINDS

    assert set(KINDS) == set(specs.KINDS)
    # Every kind says how its rows get an interval (v2a.metrics.bootstrap).
    assert set(specs.INTERVALS) == set(specs.KINDS)
    assert set(specs.INTERVALS.values()) <= {"per-sample", "set", "set-on-request"}
    assert all(s.kind in KINDS for s in specs.METRIC_SPECS)
    for p in PROTOCOLS.values():
        assert set(p.metrics) <= set(specs.names()), p.name


def test_a_re_score_replaces_the_runs_per_sample_values_and_keeps_other_runs(toy_metric, tmp_path):
    out = tmp_path / "run"
    for run_id, gain in (("first", 1.0), ("first", 2.0), ("other", 1.0)):
        gen = tmp_path / f"gen-{run_id}-{gain}"
        gen.mkdir()
        for k, w in _waves().items():
            sf.write(gen / f"{k}.wav", gain * w, SR, subtype="FLOAT")
        evaluate_folder(str(gen), RunLayout(str(out)).results, {"meter": LevelMeter()}, clip_seconds=1.0,
                        metrics=["level"], run_id=run_id)
    scores = pd.read_parquet(RunLayout(str(out)).scores)
    assert len(scores) == 6 and scores.groupby("run_id").size().to_dict() == {"first": 3, "other": 3}
    first = scores[scores["run_id"] == "first"].set_index("sample_id")["value"]
    assert first.to_dict() == pytest.approx({k: 2.0 * _rms(w) for k, w in _waves().items()}, rel=1e-6)
