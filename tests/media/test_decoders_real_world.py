"""Videos as phones and users make them: rotated by a display matrix or an old `rotate` tag, with a
variable frame rate, 5.1 sound, AV1, tiny frames. Every backend must give what a player shows, which
`ffmpeg` (it autorotates, and with passthrough timing writes every frame) is the independent witness of."""

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.bad_media import write_video
from tests.media_variants import VFR_MS, constant_rate_ms, marked_frame, write_marked
from v2a.media import decoders
from v2a.media.decoders.base import display_rotation, upright
from v2a.media import MediaError, read_clip

BACKENDS = decoders.available_backends()
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="the ffmpeg command is not installed")


def ffmpeg_frames(path: Path, folder: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Every frame as ffmpeg shows it (autorotated, one image per stored frame) and their times."""
    folder.mkdir(parents=True, exist_ok=True)
    for timing in (["-fps_mode", "passthrough"], ["-vsync", "0"]):  # the option's name before ffmpeg 5.1
        done = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), *timing, str(folder / "%05d.png")],
                              capture_output=True)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr.decode()
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    times = np.array(sorted(float(t.split(",")[0]) for t in probe.stdout.split() if t.strip()))
    assert len(times) == len(frames)
    return frames, times - times[0]


def assert_same_pictures(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: {got.shape} vs {want.shape}"
    # one rounding step between FFmpeg builds' colour conversion; a wrong turn moves the white block
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 1.0, what


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rotated")
    return {deg: write_marked(folder / f"rot{deg}.mp4", constant_rate_ms(), 1000, rotation=deg)
            for deg in (0, 90, 180, 270)}


@needs_ffmpeg
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_a_rotated_video_comes_out_as_ffmpeg_shows_it(rotated, tmp_path, backend, degrees):
    shown, times = ffmpeg_frames(rotated[degrees], tmp_path / "ffmpeg")
    clip = read_clip(str(rotated[degrees]), num_frames=4, backend=backend, audio=False)
    for frame, t in zip(clip.frames, clip.frame_times):
        assert_same_pictures(frame, shown[int(np.argmin(np.abs(times - t)))], f"{backend} {degrees} deg at {t:.2f} s")


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_turns_the_stored_frame_counter_clockwise(rotated, degrees):
    # Without ffmpeg: the display matrix says "turn this many degrees counter-clockwise".
    stored = read_clip(str(rotated[0]), num_frames=2, backend="pyav", audio=False).frames
    for backend in BACKENDS:
        turned = read_clip(str(rotated[degrees]), num_frames=2, backend=backend, audio=False).frames
        assert_same_pictures(turned, np.rot90(stored, k=degrees // 90, axes=(1, 2)), f"{backend} {degrees}")
    if degrees == 90:  # the block in the top-left corner ends up bottom-left
        h, w = turned.shape[1:3]
        assert turned[0, h - 2, 1].min() > 200 and turned[0, 1, 1].max() < 230


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_old_style_rotate_tag_is_honoured(tmp_path, backend):
    # FFmpeg before 5.0 exported rotation as a `rotate` stream tag in clockwise degrees; Matroska keeps such tags.
    tagged = write_marked(tmp_path / "tagged.mkv", constant_rate_ms(), 1000, tags={"rotate": "90"})
    plain = write_marked(tmp_path / "plain.mkv", constant_rate_ms(), 1000)
    stored = read_clip(str(plain), num_frames=3, backend="pyav", audio=False).frames
    got = read_clip(str(tagged), num_frames=3, backend=backend, audio=False).frames
    assert_same_pictures(got, np.rot90(stored, k=-1, axes=(1, 2)), backend)


class _Frame:
    def __init__(self, rotation):
        self.side_data = {"DISPLAYMATRIX": b""} if rotation is not None else {}
        self.rotation = rotation


@pytest.mark.parametrize("matrix, tags, expected", [
    (None, {}, 0), (90, {}, 90), (-90, {}, 270), (-180, {}, 180), (89.6, {}, 90),
    (45, {}, 0),                      # not a quarter turn: ignored, as ffmpeg ignores it
    (None, {"rotate": "90"}, 270),    # clockwise tag
    (None, {"ROTATE": "-90"}, 90), (None, {"rotate": "sideways"}, 0),
    (0, {"rotate": "90"}, 0),         # the matrix wins over a tag
])
def test_display_rotation_reads_the_matrix_then_the_tag(matrix, tags, expected):
    assert display_rotation(_Frame(matrix), tags) == expected


def test_upright_keeps_an_unrotated_array_as_it_is():
    frames = np.stack([marked_frame(0), marked_frame(1)])
    assert upright(frames, 0) is frames
    assert upright(frames, 90).shape == (2, 64, 48, 3) and upright(frames, 90).flags.c_contiguous


@pytest.fixture(scope="module")
def vfr(tmp_path_factory):
    return write_marked(tmp_path_factory.mktemp("vfr") / "vfr.mp4", VFR_MS, 3000)


@pytest.mark.parametrize("sampling", [{"num_frames": 12}, {"frame_rate": 7.0}])
def test_variable_frame_rate_gives_the_frames_played_at_each_time_from_every_backend(vfr, sampling):
    clips = {b: read_clip(str(vfr), backend=b, audio=False, **sampling) for b in BACKENDS}
    ref = clips["pyav"]
    # the frame played at each target: the last one starting at or before it (times from the file itself)
    starts = np.array(VFR_MS) / 1000
    targets = decoders.target_times(ref.duration, decoders.Sampling(**sampling))
    expected = starts[np.searchsorted(starts, targets + 1e-6, side="right") - 1]
    for backend, clip in clips.items():
        np.testing.assert_allclose(clip.frame_times, expected, atol=1e-3, err_msg=backend)
        assert_same_pictures(clip.frames, ref.frames, backend)


@needs_ffmpeg
@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_frames_are_the_ones_ffmpeg_shows_at_those_times(vfr, tmp_path, backend):
    shown, times = ffmpeg_frames(vfr, tmp_path / "ffmpeg")
    np.testing.assert_allclose(times, np.array(VFR_MS) / 1000, atol=1e-3)
    clip = read_clip(str(vfr), num_frames=9, backend=backend, audio=False)
    for frame, t in zip(clip.frames, clip.frame_times):
        i = int(np.argmin(np.abs(times - t)))
        assert abs(times[i] - t) < 1e-3
        assert_same_pictures(frame, shown[i], f"{backend} at {t:.2f} s")


def test_surround_audio_is_the_same_from_every_backend(tmp_path):
    path = write_video(tmp_path / "surround.mp4", layout="5.1", audio_rate=48000, seconds=1.0)
    waves = {b: read_clip(str(path), num_frames=2, backend=b).audio for b in BACKENDS}
    tone = waves["pyav"]
    assert np.isfinite(tone).all() and 0.2 < np.abs(tone).max() < 0.4  # six copies of a 0.3 tone, averaged
    for backend, wave in waves.items():
        np.testing.assert_allclose(wave, tone, atol=1e-4, err_msg=backend)


needs_decord = pytest.mark.skipif("decord" not in BACKENDS, reason="decord is not installed")


@needs_decord
def test_decord_refuses_av1_per_clip_naming_another_decoder(tmp_path):
    encoder = next((c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), None)
    if encoder is None:
        pytest.skip("this PyAV has no AV1 encoder")
    path = write_video(tmp_path / "av1.mp4", codec=encoder, size=(64, 64), seconds=0.5)
    with pytest.raises(MediaError, match=r"cannot decode AV1.*--decoder pyav"):
        read_clip(str(path), num_frames=2, backend="decord")
    assert read_clip(str(path), num_frames=2, backend="pyav").frames.shape == (2, 64, 64, 3)


@needs_decord
def test_decord_refuses_frames_it_cannot_copy_naming_another_decoder(tmp_path):
    path = write_video(tmp_path / "tiny.mp4", size=(2, 2))
    with pytest.raises(MediaError, match=r"cannot return 2x2 frames.*--decoder pyav"):
        read_clip(str(path), num_frames=2, backend="decord")


def test_auto_never_picks_decord():
    assert "decord" not in decoders.PREFERENCE and decoders.resolve_backend("auto") != "decord"
