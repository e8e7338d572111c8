"""DeSync in the evaluation: 25-fps frames from a run's clips, one row per run, MMAudio's DeSync column filled."""

import logging
from pathlib import Path

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
    """The tiny Synchformer with the goldens' weights: unlike a fresh random one, it predicts offsets that vary
    from clip to clip, so a wrong pairing or frame rate shows in the mean."""
    import json

    from v2a.metrics.extractors import synchformer

    goldens = Path(__file__).resolve().parents[1] / "metrics" / "goldens" / "synchformer"
    tiny = json.loads((goldens / "config.json").read_text())["tiny"]
    return synchformer.build({**tiny, "checkpoint": str(goldens / "tiny_weights.safetensors")})


def test_the_tiny_profile_builds_a_synchformer():
    assert get_model("tiny", "extractor:synchformer").model.window_segments == 14


def _folder(folder, ids, seconds, sr=16000):
    """Noise for even clips, a tone for odd ones: the goldens' model predicts different offsets for the two."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    for i, cid in enumerate(ids):
        wave = 0.2 * rng.standard_normal(t.shape) if i % 2 == 0 else 0.3 * np.sin(2 * np.pi * 440.0 * t)
        sf.write(folder / f"{cid}.wav", wave, sr)
    return folder


def test_desync_row_equals_the_extractors_own_procedure_and_fills_the_mmaudio_column(tmp_path, long_run, sync):
    from v2a.io.results import format_results
    from v2a.media import read_clip

    clips = pd.read_parquet(long_run / "clips.parquet").query("split == 'test'")
    ids = sorted(clips["clip_id"])
    gen = _folder(tmp_path / "gen", ids, 5.0)
    given = []  # the frames the evaluation hands to Synchformer, clip by clip
    video_features = sync.video_features
    sync.video_features = lambda videos: (given.extend(videos), video_features(videos))[1]
    try:
        rows = evaluate_folder(str(gen), str(tmp_path / "results"), {"synchformer": sync}, run_dir=str(long_run),
                               protocol="av-benchmark", clip_seconds=5.0, run_id="sys", metrics=["desync"])
    finally:
        del sync.video_features
    (row,) = rows
    assert row["metric"] == "desync" and row["n_samples"] == len(ids) and row["protocol"] == "av-benchmark"
    # The same pairs through the extractor directly: 25-fps frames of the first 5 s, the av-benchmark channel rule.
    uri = dict(zip(clips["clip_id"], clips["uri"]))
    videos = [read_clip(uri[c], frame_rate=25.0, max_seconds=5.0, audio=False).frames for c in ids]
    assert all(len(v) == 125 for v in videos)
    assert len(given) == len(ids) and all(np.array_equal(a, b) for a, b in zip(given, videos))
    waves = []
    for c in ids:
        w, _ = sf.read(gen / f"{c}.wav", dtype="float32")
        waves.append(w - w.mean())
    per_clip = sync.desync_per_clip(videos, waves)
    assert len(set(per_clip.tolist())) > 1  # the offsets vary, so the mean says which pairs were scored
    assert row["value"] == pytest.approx(float(np.mean(per_clip)), abs=1e-6)
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
