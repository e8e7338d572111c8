"""Synchformer and DeSync against av-benchmark's own code on identical (seeded, tiny) weights.

The goldens under goldens/synchformer/ were made by make_goldens.py beside them (see its README): av-benchmark's
Synchformer, its video/audio preprocessing, `compare_v_a` and `evaluate()`'s DeSync, run on two 8-s clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from v2a.metrics.extractors import synchformer as sf

GOLDENS = Path(__file__).resolve().parent / "goldens" / "synchformer"
TOL = 1e-4


@pytest.fixture(scope="module")
def golden():
    cfg = json.loads((GOLDENS / "config.json").read_text())
    return {"cfg": cfg, "inputs": dict(np.load(GOLDENS / "inputs.npz")), "outputs": dict(np.load(GOLDENS / "outputs.npz"))}


@pytest.fixture(scope="module")
def extractor(golden):
    section = {**golden["cfg"]["tiny"], "checkpoint": str(GOLDENS / "tiny_weights.safetensors")}
    return sf.build(section)


def _waves(golden) -> list[np.ndarray]:
    return [w.astype(np.float32) / 32768.0 for w in golden["inputs"]["audio_int16"]]


@pytest.fixture(scope="module")
def port_run(golden, extractor):
    """One pass of the whole path (frames + audio -> DeSync), keeping the features it computed on the way
    (a tiny model still takes ~20 s on two cores for 2 x 24 video segments, so it runs once)."""
    seen = {}
    video_features, embed = extractor.video_features, extractor.embed
    extractor.video_features = lambda videos: seen.setdefault("video", video_features(videos))
    extractor.embed = lambda waves, sample_rate=None: seen.setdefault("audio", embed(waves, sample_rate))
    try:
        seen["per_clip"] = extractor.desync_per_clip(list(golden["inputs"]["video_uint8"]), _waves(golden))
    finally:
        del extractor.video_features, extractor.embed
    return seen


def _rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def test_the_full_size_model_has_the_released_checkpoint_layout():
    """The layout av-benchmark loads synchformer_state_dict.pth into (strictly): every key and shape."""
    want = json.loads((GOLDENS / "paper_arch_layout.json").read_text())
    with torch.device("meta"):
        model = sf.Synchformer(**{k: sf.DEFAULTS[k] for k in sf.ARCH_KEYS})
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(want) - set(got)) == [] and sorted(set(got) - set(want)) == []
    assert got == want


def test_video_features_equal_the_reference(golden, port_run):
    assert _rel_err(np.stack(port_run["video"]), golden["outputs"]["video_features"]) <= TOL


def test_audio_features_equal_the_reference(golden, port_run):
    assert _rel_err(np.stack(port_run["audio"]), golden["outputs"]["audio_features"]) <= TOL


def test_window_logits_and_offsets_equal_the_reference(golden, extractor):
    out = golden["outputs"]
    logits = extractor.window_logits(out["video_features"], out["audio_features"])
    assert logits.shape == (2, 2, 21)
    assert _rel_err(logits, out["logits"]) <= TOL
    np.testing.assert_allclose(extractor.offsets(out["video_features"], out["audio_features"]), out["offsets"],
                               atol=1e-6)


def test_desync_from_frames_and_audio_equals_reference_evaluate(golden, port_run):
    """The whole path: uint8 frames + 16-kHz audio -> per-clip mean |offset| -> DeSync (av-benchmark's evaluate)."""
    per_clip = port_run["per_clip"]
    want = golden["outputs"]
    np.testing.assert_allclose(per_clip, np.abs(want["offsets"]).mean(axis=1), atol=1e-6)
    assert abs(float(np.mean(per_clip)) - float(want["desync"])) <= 1e-6
    # The goldens are chosen so that the two windows of each clip disagree (a swap or a wrong grid shows).
    assert (want["offsets"][:, 0] != want["offsets"][:, 1]).all()


def test_offset_grid_is_21_classes_of_0_2_s_over_plus_minus_2():
    grid = sf.offset_grid()
    assert grid.shape == (21,) and grid[0] == pytest.approx(-2.0) and grid[-1] == pytest.approx(2.0)
    np.testing.assert_allclose(np.diff(grid), 0.2, atol=1e-6)
    assert sf.desync(np.array([[0.4, -1.2], [-1.2, 0.4]])) == pytest.approx(0.8)


def test_segments_follow_av_benchmark_windows():
    """8 s at 25 fps: 24 video segments of 16 frames every 8; the audio segments cover the same spans."""
    assert len(sf.segment_starts(200, 16, 8)) == 24
    frames = np.zeros((200, 20, 30, 3), np.uint8)
    assert tuple(sf.video_segments(frames, 224).shape) == (24, 16, 3, 224, 224)
    spec = sf.audio_segments(np.zeros(128000, np.float32))
    assert tuple(spec.shape) == (24, 128, 66)


def test_too_short_or_mismatched_inputs_fail_in_one_line(golden, extractor):
    out = golden["outputs"]
    with pytest.raises(ValueError, match="at least 14"):
        extractor.offsets([out["video_features"][0][:13]], [out["audio_features"][0][:13]])
    with pytest.raises(ValueError, match="same length"):
        extractor.offsets([out["video_features"][0]], [out["audio_features"][0][:20]])
    with pytest.raises(ValueError, match="a segment needs 16"):
        sf.video_segments(np.zeros((10, 8, 8, 3), np.uint8))


def test_random_weight_profiles_build_and_a_bad_section_is_refused():
    tiny = sf.build({**json.loads((GOLDENS / "config.json").read_text())["tiny"], "seed": 3})
    assert tiny.model_id.startswith("synchformer@random-seed3:")
    with pytest.raises(Exception, match="video_embed_dim 30 is not divisible by video_heads 4"):
        sf.build({"video_embed_dim": 30, "video_heads": 4})
