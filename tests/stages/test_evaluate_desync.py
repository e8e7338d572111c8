"""DeSync in the evaluation: 25-fps frames from a run's clips, one row per run, MMAudio's DeSync column filled."""

import logging

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from v2a.runtime.model_cache import get_model
from v2a.stages.evaluate import NO_FRAMES_FOR_DESYNC, evaluate_folder


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A run folder whose clips are 5-s videos (one Synchformer window needs 4.8 s)."""
    from v2a.stages import ingest
    from v2a.tools.synth import make_synthetic_dataset

    synth = tmp_path_factory.mktemp("synth5s")
    make_synthetic_dataset(synth, classes=2, clips_per_class=2, seconds=5.0, seed=5, images_per_class=0,
                           test_fraction=0.5, progress=False)
    run = tmp_path_factory.mktemp("run5s")
    ingest.ingest(str(run / "clips.parquet"), csv=str(synth / "vggsound.csv"), videos=str(synth / "videos"))
    return run


@pytest.fixture(scope="module")
def sync():
    return get_model("tiny", "extractor:synchformer")


def _folder(folder, ids, seconds, sr=16000):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for cid in ids:
        sf.write(folder / f"{cid}.wav", 0.2 * rng.standard_normal(int(sr * seconds)), sr)
    return folder


def test_desync_row_equals_the_extractors_own_procedure_and_fills_the_mmaudio_column(tmp_path, long_run, sync):
    from v2a.io.results import format_results
    from v2a.media import read_clip

    clips = pd.read_parquet(long_run / "clips.parquet").query("split == 'test'")
    ids = sorted(clips["clip_id"])
    gen = _folder(tmp_path / "gen", ids, 5.0)
    rows = evaluate_folder(str(gen), str(tmp_path / "results"), {"synchformer": sync}, run_dir=str(long_run),
                           protocol="av-benchmark", clip_seconds=5.0, run_id="sys", metrics=["desync"])
    (row,) = rows
    assert row["metric"] == "desync" and row["n_samples"] == len(ids) and row["protocol"] == "av-benchmark"
    # The same pairs through the extractor directly: 25-fps frames of the first 5 s, the av-benchmark channel rule.
    uri = dict(zip(clips["clip_id"], clips["uri"]))
    videos = [read_clip(uri[c], frame_rate=25.0, max_seconds=5.0, audio=False).frames for c in ids]
    assert all(len(v) == 125 for v in videos)
    waves = []
    for c in ids:
        w, _ = sf.read(gen / f"{c}.wav", dtype="float32")
        waves.append(w - w.mean())
    assert row["value"] == pytest.approx(float(np.mean(sync.desync_per_clip(videos, waves))), abs=1e-6)
    assert 0.0 <= row["value"] <= 2.0

    text = format_results(str(tmp_path), table="mmaudio")
    header, ours = text.splitlines()[1].split(), text.splitlines()[2].split()
    assert header[-1] == "DeSync" and float(ours[-1]) == pytest.approx(row["value"], abs=1e-3)


def test_desync_is_dropped_in_one_line_for_short_clips_or_a_folder_without_videos(tmp_path, long_run, sync, caplog):
    clips = pd.read_parquet(long_run / "clips.parquet").query("split == 'test'")
    gen = _folder(tmp_path / "gen", sorted(clips["clip_id"]), 5.0)
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="nothing to compute"):
        evaluate_folder(str(gen), str(tmp_path / "r1"), {"synchformer": sync}, run_dir=str(long_run),
                        protocol="av-benchmark", clip_seconds=4.0, metrics=["desync"])
    assert "shorter than one Synchformer window" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="nothing to compute"):
        evaluate_folder(str(gen), str(tmp_path / "r2"), {"synchformer": sync}, protocol="av-benchmark",
                        clip_seconds=5.0, metrics=["desync"])
    assert NO_FRAMES_FOR_DESYNC in caplog.text
