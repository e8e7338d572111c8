"""Evaluation protocols: av-benchmark's columns on another system's folder, channel rules, IB from a run's clips."""

import logging

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from storage_schemas import conform
from storage_schemas import results as results_schema
from v2a.runtime.model_cache import get_model
from v2a.stages.evaluate import NO_FRAMES_FOR_IB, evaluate_folder

AV_BENCHMARK = {"fd_passt", "fd", "fad", "kl", "kl_passt", "is", "ib", "is_passt"}


@pytest.fixture(scope="module")
def extractors():
    return {n: get_model("tiny", f"extractor:{n}") for n in ("panns", "vggish", "passt", "imagebind")}


@pytest.fixture(scope="module")
def run_dir(synth_dir, tmp_path_factory):
    """A run folder holding only the clips table of the synthetic set (videos with sound, 2 s each)."""
    from v2a.stages import ingest

    run = tmp_path_factory.mktemp("run")
    ingest.ingest(str(run / "clips.parquet"), csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"))
    return run


def _system_folder(folder, ids, sr, seconds, stereo=False, seed=0):
    """Another system's outputs: noise bursts at its own rate and length, one file per clip id."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i, cid in enumerate(ids):
        wave = 0.2 * rng.standard_normal((int(sr * seconds), 2 if stereo else 1)) * (1 + i % 3)
        sf.write(folder / f"{cid}.wav", wave, sr)
    return folder


def test_av_benchmark_scores_a_44k_stereo_folder_of_another_length_against_a_runs_clips(tmp_path, run_dir, extractors):
    clips = pd.read_parquet(run_dir / "clips.parquet").query("split == 'test'")
    gen = _system_folder(tmp_path / "mmaudio", sorted(clips["clip_id"]), 44100, 3.0, stereo=True)
    rows = evaluate_folder(str(gen), str(tmp_path / "results"), extractors, run_dir=str(run_dir),
                           protocol="av-benchmark", clip_seconds=1.5, run_id="mmaudio")
    assert {r["metric"] for r in rows} == AV_BENCHMARK
    for r in rows:
        assert np.isfinite(r["value"]), r
        assert r["protocol"] == "av-benchmark" and r["channel_rule"] == "av-benchmark" and r["clip_seconds"] == 1.5
    by = {r["metric"]: r for r in rows}
    assert by["fd_passt"]["sample_rate"] == 32000 and by["fd"]["sample_rate"] == 16000
    assert -100 <= by["ib"]["value"] <= 100 and by["ib"]["n_samples"] == len(clips)
    df = pd.read_parquet(tmp_path / "results")
    conform(df, results_schema.SCHEMA)
    assert set(df["protocol"]) == {"av-benchmark"}


def test_a_bare_audio_folder_says_in_one_line_why_it_has_no_ib(tmp_path, extractors, caplog):
    ids = ["a", "b", "c", "d"]
    gen = _system_folder(tmp_path / "gen", ids, 16000, 2.0)
    ref = _system_folder(tmp_path / "ref", ids, 48000, 2.5, stereo=True, seed=1)
    with caplog.at_level(logging.WARNING):
        rows = evaluate_folder(str(gen), str(tmp_path / "results"), extractors, reference_dir=str(ref),
                               protocol="av-benchmark", clip_seconds=2.0)
    assert "ib" not in {r["metric"] for r in rows} and {r["metric"] for r in rows} == AV_BENCHMARK - {"ib"}
    said = [rec.getMessage() for rec in caplog.records if "IB" in rec.getMessage()]
    assert said == [NO_FRAMES_FOR_IB] and "\n" not in NO_FRAMES_FOR_IB


def test_the_channel_rule_decides_how_stereo_references_are_read(tmp_path, extractors):
    ids = [f"c{i}" for i in range(5)]
    gen = _system_folder(tmp_path / "gen", ids, 16000, 2.0)
    ref = tmp_path / "ref"
    ref.mkdir()
    rng = np.random.default_rng(3)
    for cid in ids:  # channel 1 carries other content and channel 0 a DC offset
        left = 0.2 * rng.standard_normal(32000) + 0.3
        right = np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)
        sf.write(ref / f"{cid}.wav", np.stack([left, right], axis=1), 16000)
    # Each rule's reading, written out here: audioldm_eval takes channel 0 less its mean, av-benchmark
    # the channel mean less its mean, v2a the channel mean.
    readings = {"mean": lambda lr: lr.mean(axis=1),
                "channel0-minus-mean": lambda lr: lr[:, 0] - lr[:, 0].mean(),
                "av-benchmark": lambda lr: lr.mean(axis=1) - lr.mean(axis=1).mean()}
    from v2a.metrics.scores import load_audio_folder

    for rule, read in readings.items():  # what the metrics receive, sample for sample
        loaded = load_audio_folder(ref, channel_rule=rule)
        for cid in ids:
            np.testing.assert_allclose(loaded[cid][0], read(sf.read(ref / f"{cid}.wav", dtype="float32")[0]),
                                       atol=1e-6, err_msg=rule)
    expected = {rule: _fd_of_readings(gen, ref, read, extractors["panns"]) for rule, read in readings.items()}
    # Channel 1's tone moves the FD; the DC offset hardly does (PANNs' mel bands start at 50 Hz), which is
    # why the readings themselves are compared above.
    assert abs(expected["mean"] - expected["channel0-minus-mean"]) > 0.1 * expected["mean"]
    for rule in readings:
        rows = evaluate_folder(str(gen), str(tmp_path / f"results-{rule}"), extractors, reference_dir=str(ref),
                               clip_seconds=2.0, metrics=["fd"], channel_rule=rule)
        assert rows[0]["channel_rule"] == rule and rows[0]["protocol"] == "v2a-mapper"
        assert rows[0]["value"] == pytest.approx(expected[rule], rel=1e-4), rule


def _fd_of_readings(gen, ref, read, panns) -> float:
    """FD on PANNs features of the generated files and of the references as `read` makes them mono."""
    from v2a.metrics import audio
    from v2a.metrics.frechet import frechet_distance_from_stats, gaussian_stats

    def features(folder, mono):
        waves = []
        for path in sorted(folder.glob("*.wav")):
            data, sr = sf.read(path, dtype="float32", always_2d=True)
            waves.append(audio.prepare(mono(data), sr, panns.sample_rate, 2.0))
        return panns.embed_and_logits(waves)[0]

    mu_g, sigma_g = gaussian_stats(features(gen, lambda lr: lr[:, 0]))
    mu_r, sigma_r = gaussian_stats(features(ref, read))
    return frechet_distance_from_stats(mu_g, sigma_g, mu_r, sigma_r)


def test_the_default_protocol_reads_other_rates_as_before(tmp_path, extractors):
    """v2a-mapper on a 22.05 kHz folder equals scoring the same audio resampled to 16 kHz first."""
    from v2a.metrics import audio

    ids = ["a", "b", "c"]
    gen = _system_folder(tmp_path / "gen", ids, 22050, 1.0)
    ref = _system_folder(tmp_path / "ref", ids, 16000, 1.0, seed=2)
    pre = tmp_path / "gen16"
    pre.mkdir()
    for cid in ids:
        w, sr = sf.read(gen / f"{cid}.wav", dtype="float32")
        sf.write(pre / f"{cid}.wav", audio.resample(w, sr, 16000), 16000, subtype="FLOAT")
    a = evaluate_folder(str(gen), str(tmp_path / "r1"), extractors, reference_dir=str(ref), clip_seconds=1.0,
                        metrics=["fd", "kl"])
    b = evaluate_folder(str(pre), str(tmp_path / "r2"), extractors, reference_dir=str(ref), clip_seconds=1.0,
                        metrics=["fd", "kl"])
    assert [r["value"] for r in a] == pytest.approx([r["value"] for r in b], rel=1e-5)


def test_results_table_mmaudio_prints_each_run_in_mmaudios_columns_and_order(tmp_path, run_dir, extractors):
    from v2a.io.results import format_results

    clips = pd.read_parquet(run_dir / "clips.parquet").query("split == 'test'")
    gen = _system_folder(tmp_path / "other", sorted(clips["clip_id"]), 16000, 1.0)
    rows = evaluate_folder(str(gen), str(tmp_path / "results"), extractors, run_dir=str(run_dir),
                           protocol="av-benchmark", clip_seconds=1.0, run_id="other", metrics=["fd_passt", "fd", "ib"])
    text = format_results(str(tmp_path), table="mmaudio")
    header = text.splitlines()[1].split()
    assert header == ["run", "protocol", "seconds", "FD_PaSST", "FD_PANNs", "FD_VGG", "KL_PANNs", "KL_PaSST", "IS",
                      "IB", "DeSync"]
    ours = text.splitlines()[2].split()
    by = {r["metric"]: r["value"] for r in rows}
    assert ours[:3] == ["other", "av-benchmark", "1"] and float(ours[3]) == pytest.approx(by["fd_passt"], rel=1e-3)
    assert float(ours[4]) == pytest.approx(by["fd"], rel=1e-3) and float(ours[9]) == pytest.approx(by["ib"], rel=1e-3)
    assert ours[5:9] == ["-"] * 4 and ours[10] == "-"  # not computed here (DeSync not asked for)
    # Under the run's line, its intervals: IB always (a per-sample mean), the Fréchet columns not without --bootstrap.
    from v2a.io.results import interval_text

    cis = text.splitlines()[3]
    ib = next(r for r in rows if r["metric"] == "ib")
    assert cis.split()[:2] == ["95%", "CI"] and interval_text(ib["ci_low"], ib["ci_high"]) in cis
    assert cis.split()[2:4] == ["-", "-"]
    assert "V2A-Mapper" in text and "arXiv 2412.15322" in text and "not yet checked" in text
