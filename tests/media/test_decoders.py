"""Decoder backends: the same frames and audio from each, sampled by count or rate, bounded memory."""

import tracemalloc

import numpy as np
import pytest

from tests.media_variants import variants
from v2a.media import decoders
from v2a.media import MediaError, read_clip

BACKENDS = decoders.available_backends()


@pytest.fixture(scope="module")
def video(synth_dir):
    return sorted((synth_dir / "videos").glob("*.mp4"))[0]  # 2 s, 160x120, 10 fps, AAC at 44.1 kHz


@pytest.fixture(scope="module")
def damaged(video, tmp_path_factory):
    return variants(video, tmp_path_factory.mktemp("damaged"))


def test_pyav_is_always_there_and_auto_picks_an_installed_backend():
    assert "pyav" in BACKENDS
    assert decoders.resolve_backend("auto") in BACKENDS


def test_an_unknown_backend_is_refused_with_the_accepted_names():
    with pytest.raises(ValueError, match="pyav"):
        decoders.resolve_backend("ffmpeg-cli")


@pytest.mark.parametrize("sampling", [{"num_frames": 4}, {"frame_rate": 3.0}, {"num_frames": 7, "max_seconds": 1.3}])
def test_every_backend_gives_the_same_frames_and_audio(video, sampling):
    clips = {b: read_clip(str(video), backend=b, **sampling) for b in BACKENDS}
    ref = clips["pyav"]
    for backend, clip in clips.items():
        assert clip.frames.shape == ref.frames.shape, backend
        # the same frame: pixel values may differ by a rounding step between FFmpeg builds
        assert np.abs(clip.frames.astype(int) - ref.frames.astype(int)).mean() < 1.0, backend
        np.testing.assert_allclose(clip.frame_times, ref.frame_times, atol=1e-3, err_msg=backend)
        assert clip.audio.shape == ref.audio.shape, backend
        np.testing.assert_allclose(clip.audio, ref.audio, atol=1e-4, err_msg=backend)


def test_frames_are_the_ones_played_at_evenly_spaced_times(video):
    clip = read_clip(str(video), num_frames=4)  # targets 0.25, 0.75, 1.25, 1.75 s; frames every 0.1 s
    np.testing.assert_allclose(clip.frame_times, [0.2, 0.7, 1.2, 1.7], atol=1e-3)
    assert clip.sample_rate == 16000 and clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert abs(len(clip.audio) / 16000 - 2.0) < 0.05


def test_a_frame_rate_samples_one_frame_per_period(video):
    clip = read_clip(str(video), frame_rate=2.0)  # 2 s at 2 per second: the centres of 4 half-second segments
    np.testing.assert_allclose(clip.frame_times, [0.2, 0.7, 1.2, 1.7], atol=1e-3)
    assert len(read_clip(str(video), frame_rate=0.25).frames) == 1  # shorter than one period: its middle frame


def test_frame_count_and_rate_agree_when_they_ask_for_the_same_frames():
    count = decoders.target_times(10.0, decoders.Sampling(num_frames=10))
    rate = decoders.target_times(10.0, decoders.Sampling(frame_rate=1.0))
    np.testing.assert_allclose(count, rate)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_clip_shorter_than_asked_for_spreads_its_frames_over_what_it_has(video, backend):
    clip = read_clip(str(video), num_frames=10, max_seconds=10.0, backend=backend)
    assert clip.duration == pytest.approx(2.0, abs=0.05)
    assert len(clip.frames) == 10 and clip.frame_times.max() < 2.0
    assert abs(len(clip.audio) / 16000 - 2.0) < 0.05  # the audio is what there is, not padded


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_frames_than_the_video_has_repeat_the_nearest(video, backend):
    clip = read_clip(str(video), num_frames=32, backend=backend)  # 20 frames in the file
    assert len(clip.frames) == 32 and np.all(np.diff(clip.frame_times) >= 0)
    assert len(np.unique(clip.frame_times)) <= 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_video_without_sound_has_no_audio(damaged, backend):
    clip = read_clip(str(damaged["no_audio"]), num_frames=3, backend=backend)
    assert clip.audio is None and len(clip.frames) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_audio_only_file_is_refused(damaged, backend):
    with pytest.raises(MediaError, match="no video stream"):
        read_clip(str(damaged["audio_only"]), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["truncated", "truncated_faststart"])
def test_a_truncated_file_is_refused(damaged, backend, kind):
    with pytest.raises(MediaError, match="truncated"):
        read_clip(str(damaged[kind]), num_frames=4, backend=backend)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    from v2a.tools.synth import make_synthetic_dataset

    out = tmp_path_factory.mktemp("long")
    make_synthetic_dataset(out, classes=1, clips_per_class=2, seconds=20.0, width=320, height=240, fps=25,
                           images_per_class=0, progress=False)
    return next((out / "videos").glob("*.mp4"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_long_video_is_never_held_whole(long_video, backend):
    # 500 frames of 320x240 RGB are 115 MB, four of them 0.9 MB (numpy allocations are traced)
    read_clip(str(long_video), num_frames=4, backend=backend, audio=False)  # warm-up: library start-up
    tracemalloc.start()
    try:
        clip = read_clip(str(long_video), num_frames=4, backend=backend, audio=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert clip.frames.shape == (4, 240, 320, 3)
    assert peak < 12 * 320 * 240 * 3, f"{backend}: peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_remote_object_decodes_like_the_local_file(video, backend):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe(f"/clips/{backend}.mp4", video.read_bytes())
    remote = read_clip(f"memory://clips/{backend}.mp4", num_frames=3, backend=backend)
    local = read_clip(str(video), num_frames=3, backend=backend)
    np.testing.assert_array_equal(remote.frames, local.frames)
    np.testing.assert_array_equal(remote.audio, local.audio)


@pytest.fixture(scope="module")
def long_sound_video(tmp_path_factory):
    """24 s at 32x32 and 2 fps with sound (PyAV, via the synthetic dataset): past CLAP's window, quick to write."""
    from v2a.tools.synth import make_synthetic_dataset

    out = tmp_path_factory.mktemp("long_sound")
    make_synthetic_dataset(out, classes=1, clips_per_class=2, seconds=24.0, width=32, height=32, fps=2,
                           images_per_class=0, progress=False)
    return next((out / "videos").glob("*.mp4"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_max_seconds_the_audio_stops_at_clap_window_and_frames_span_the_video(long_sound_video, backend):
    clip = read_clip(str(long_sound_video), num_frames=4, max_seconds=None, backend=backend)
    assert clip.audio.shape == (int(decoders.CLAP_SECONDS * 16000),)
    assert clip.duration > 23
    np.testing.assert_allclose(clip.frame_times, [3.0, 9.0, 15.0, 21.0], atol=0.5)  # centres of 4 quarters


def test_without_max_seconds_every_backend_keeps_the_same_audio(long_sound_video):
    waves = [read_clip(str(long_sound_video), num_frames=2, backend=b).audio for b in BACKENDS]
    for other in waves[1:]:
        np.testing.assert_allclose(other, waves[0], atol=1e-6)
