"""The synthetic VGGSound-shaped dataset: layout, formats, signatures, determinism."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from v2a.tools.synth import build_class_table, make_synthetic_dataset

CLASSES, CLIPS, SECONDS, FPS, RATE, W, H = 6, 8, 2.0, 10, 44100, 160, 120
ONE_TO_MANY = 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = make_synthetic_dataset(out, classes=CLASSES, clips_per_class=CLIPS, seconds=SECONDS,
                                     one_to_many=ONE_TO_MANY, fps=FPS, audio_rate=RATE, width=W, height=H,
                                     progress=False)
    return summary


@pytest.fixture(scope="module")
def rows(dataset):
    with open(dataset.csv_path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def clips(dataset):
    return json.loads(dataset.clips_json.read_text())


@pytest.fixture(scope="module")
def class_table(dataset):
    return {c["label"]: c for c in json.loads(dataset.classes_json.read_text())["classes"]}


@pytest.fixture(scope="module")
def audio(dataset, clips):
    return {cid: decode_audio(dataset.videos_dir / f"{cid}.mp4") for cid in clips}


def decode_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1).mean(axis=0)


def decode_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def dominant_hz(x: np.ndarray, rate: int = RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def dominant_colour(rgb: np.ndarray) -> np.ndarray:
    """Median colour of the object: the pixels farthest from the (grey, corner) background."""
    px = rgb.reshape(-1, 3).astype(float)
    dist = np.linalg.norm(px - rgb[0, 0].astype(float), axis=1)
    foreground = dist > 30
    # Anti-aliased edges (many of them on thin stripes) blend towards the background; skip them.
    core = foreground & (dist >= np.median(dist[foreground]))
    return np.median(px[core], axis=0)


def check_signature(sig: dict, x: np.ndarray, pitch: float, rate: int = RATE, seconds: float = SECONDS) -> None:
    """Assert that audio x carries signature sig (as written to classes.json) at pitch factor `pitch`."""
    x = x[: int(seconds * rate)]  # the decoder pads the last AAC frame with silence
    f = sig["freq_hz"] * pitch
    kind = sig["kind"]
    if kind in ("tone", "tone_pulses"):
        assert dominant_hz(x, rate) == pytest.approx(f, rel=0.05)
    elif kind == "pulses":
        assert dominant_hz(x, rate) == pytest.approx(2 * f, rel=0.05)
        hop = rate // 100
        envelope = np.abs(x[: len(x) // hop * hop]).reshape(-1, hop).max(axis=1)  # 100 Hz envelope
        assert dominant_hz(envelope - envelope.mean(), rate=100) == pytest.approx(sig["rate_hz"], rel=0.15)
    elif kind in ("chirp_up", "chirp_down"):
        quarter = len(x) // 4
        first, last = dominant_hz(x[:quarter], rate), dominant_hz(x[-quarter:], rate)
        ratio = last / first if kind == "chirp_up" else first / last
        assert 1.4 < ratio < 2.2, (first, last)
    elif kind == "noise":
        lo, hi = sig["band_hz"]
        assert lo * 0.9 < dominant_hz(x, rate) < hi * 1.1
        # Noise spreads its energy: the strongest bin holds a small share of it (a tone's holds > 20 %).
        power = np.abs(np.fft.rfft(x)) ** 2
        assert power.max() / power.sum() < 0.05
    else:
        raise AssertionError(f"unknown kind {kind}")


def test_writes_one_mp4_per_csv_row_and_the_images(dataset, rows):
    assert dataset.n_clips == len(rows) == CLASSES * CLIPS
    videos = sorted(p.name for p in dataset.videos_dir.glob("*.mp4"))
    assert videos == sorted(f"{yid}_{int(start):06d}.mp4" for yid, start, _, _ in rows)
    assert not list(dataset.out_dir.rglob("*.part"))
    for spec in dataset.classes:
        assert sorted(p.name for p in (dataset.images_dir / spec.slug).iterdir()) == ["0.png", "1.png", "2.png"]
    assert dataset.n_images == CLASSES * 3


def test_csv_is_headerless_vggsound_format(rows, class_table):
    assert all(len(r) == 4 for r in rows)
    for yid, start, label, split in rows:
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", yid)
        assert start.isdigit() and int(start) % 10 == 0 and 0 <= int(start) <= 290
        assert label in class_table
        assert split in ("train", "test")
    assert len({r[0] for r in rows}) == len(rows)


def test_every_class_is_split_by_test_fraction(rows):
    for label in {r[2] for r in rows}:
        splits = [r[3] for r in rows if r[2] == label]
        assert splits.count("test") == round(0.25 * CLIPS)
        assert splits.count("train") == CLIPS - round(0.25 * CLIPS)


def test_mp4_has_h264_video_and_aac_audio_of_the_requested_length(dataset):
    for clip in dataset.clips[:: CLIPS // 2]:
        with av.open(str(clip.path)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
            assert (v.codec_context.width, v.codec_context.height) == (W, H)
            assert a.codec_context.name == "aac" and a.codec_context.sample_rate == RATE
            assert a.codec_context.channels in (1, 2)
            assert float(v.duration * v.time_base) == pytest.approx(SECONDS, abs=1 / FPS)
            assert float(a.duration * a.time_base) == pytest.approx(SECONDS, abs=1 / FPS)
        assert len(decode_frames(clip.path)) == round(SECONDS * FPS)


def test_every_clip_carries_its_class_sound_signature(dataset, clips, audio, class_table):
    for cid, info in clips.items():
        sig = class_table[info["label"]]["sounds"][info["sound_variant"]]
        assert info["sound_kind"] == sig["kind"]
        check_signature(sig, audio[cid], info["pitch_factor"])


def test_16khz_audio_keeps_every_signature(tmp_path):
    summary = make_synthetic_dataset(tmp_path, classes=6, clips_per_class=2, seconds=1.0, one_to_many=6,
                                     audio_rate=16000, images_per_class=0, progress=False)
    table = {c.label: c for c in summary.classes}
    for clip in summary.clips:
        sig = table[clip.label].sounds[clip.sound_variant].to_json()
        with av.open(str(clip.path)) as c:
            assert c.streams.audio[0].codec_context.sample_rate == 16000
        check_signature(sig, decode_audio(clip.path), clip.pitch_factor, rate=16000, seconds=1.0)


def test_tone_class_peaks_within_5_percent_of_its_pitch(clips, audio, class_table):
    tone_clips = [(cid, i) for cid, i in clips.items()
                  if class_table[i["label"]]["sounds"][i["sound_variant"]]["kind"] == "tone"]
    assert tone_clips
    for cid, info in tone_clips:
        pitch = class_table[info["label"]]["sounds"][info["sound_variant"]]["freq_hz"]
        assert dominant_hz(audio[cid]) == pytest.approx(pitch, rel=0.05)


def test_decoded_audio_peaks_below_0_9_and_loudness_varies(audio):
    peaks = np.array([np.abs(x).max() for x in audio.values()])
    assert peaks.max() < 0.9
    assert peaks.max() / peaks.min() > 2  # ±6 dB jitter spans up to 4x


def test_frames_of_different_classes_differ_in_dominant_colour(dataset):
    colours = {}
    for clip in dataset.clips:
        if clip.class_index not in colours:
            frame = decode_frames(clip.path)[0]
            colours[clip.class_index] = dominant_colour(frame)
    for i, colour in colours.items():
        # yuv420p and edge anti-aliasing shift colours a little, never towards another class.
        expected = np.array(dataset.classes[i].visual.rgb)
        nearest = min(colours, key=lambda k: np.linalg.norm(np.array(dataset.classes[k].visual.rgb) - colour))
        assert nearest == i and np.linalg.norm(colour - expected) < 40
    assert min(np.linalg.norm(colours[a] - colours[b]) for a in colours for b in colours if a < b) > 80


def test_images_are_stills_of_their_class_pattern(dataset):
    for spec in dataset.classes:
        for png in (dataset.images_dir / spec.slug).glob("*.png"):
            rgb = np.array(Image.open(png).convert("RGB"))
            assert rgb.shape == (H, W, 3)
            assert np.linalg.norm(dominant_colour(rgb) - np.array(spec.visual.rgb)) < 20


def test_classes_json_describes_each_class(dataset, class_table):
    doc = json.loads(dataset.classes_json.read_text())
    assert doc["params"]["seed"] == 0 and doc["params"]["classes"] == CLASSES
    assert [c["label"] for c in doc["classes"]] == [c.label for c in dataset.classes]
    for c in doc["classes"]:
        assert {"colour", "rgb", "shape", "motion"} <= set(c["visual"])
        assert c["one_to_many"] == (c["index"] < ONE_TO_MANY) == (len(c["sounds"]) == 2)
        assert all(s["description"] for s in c["sounds"])
    assert len({(c["visual"]["colour"], c["visual"]["shape"]) for c in doc["classes"]}) == CLASSES


def test_one_to_many_classes_use_two_distinct_sounds(clips, audio, class_table):
    for label, c in class_table.items():
        variants = {i["sound_variant"] for i in clips.values() if i["label"] == label}
        assert variants == ({0, 1} if c["one_to_many"] else {0})
        if c["one_to_many"]:
            assert c["sounds"][0]["kind"] != c["sounds"][1]["kind"]
            by_variant = {v: [dominant_hz(audio[cid]) for cid, i in clips.items()
                              if i["label"] == label and i["sound_variant"] == v] for v in (0, 1)}
            # Dominant frequencies of the two sounds form two clusters that do not overlap.
            low, high = sorted(by_variant.values(), key=min)
            assert max(low) < min(high)


def test_same_seed_gives_identical_files_and_other_seed_does_not(tmp_path):
    kw = dict(classes=2, clips_per_class=2, seconds=1.0, one_to_many=1, images_per_class=1, progress=False)
    a = make_synthetic_dataset(tmp_path / "a", seed=3, **kw)
    b = make_synthetic_dataset(str(tmp_path / "b"), seed=3, **kw)
    files_a = sorted(p.relative_to(a.out_dir) for p in a.out_dir.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.out_dir) for p in b.out_dir.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a.out_dir / rel).read_bytes() == (b.out_dir / rel).read_bytes(), rel

    c = make_synthetic_dataset(tmp_path / "c", seed=4, **kw)
    assert c.csv_path.read_bytes() != a.csv_path.read_bytes()
    # Same class, same position in the class, other seed: other jitter, so other decoded audio.
    xa, xc = decode_audio(a.clips[0].path), decode_audio(c.clips[0].path)
    assert not np.array_equal(xa, xc)


def test_small_class_tables_are_prefixes_of_big_ones():
    small, big = build_class_table(3), build_class_table(20)
    assert small == big[:3]
    assert len({c.label for c in big}) == 20


def test_progress_bar_is_shown_unless_disabled(tmp_path, capsys):
    kw = dict(classes=1, clips_per_class=2, seconds=0.5, images_per_class=0)
    make_synthetic_dataset(tmp_path / "quiet", progress=False, **kw)
    assert "synth clips" not in capsys.readouterr().err
    make_synthetic_dataset(tmp_path / "loud", progress=True, **kw)
    assert "synth clips" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, name", [
    (dict(classes=0), "classes"),
    (dict(clips_per_class=1), "clips_per_class"),
    (dict(seconds=0), "seconds"),
    (dict(seconds=-1.0), "seconds"),
    (dict(classes=2, one_to_many=3), "one_to_many"),
    (dict(one_to_many=-1), "one_to_many"),
    (dict(test_fraction=1.0), "test_fraction"),
    (dict(seed=-1), "seed"),
    (dict(width=161), "width"),
    (dict(images_per_class=-1), "images_per_class"),
    (dict(audio_rate=8000), "audio_rate"),
])
def test_bad_arguments_raise_naming_the_argument(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        make_synthetic_dataset(tmp_path, progress=False, **kwargs)
    assert not (tmp_path / "vggsound.csv").exists()
