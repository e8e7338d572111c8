"""FFmpeg's `fps` filter as v2a reproduces it (`v2a/media/fps_filter.py`), held against `ffmpeg -vf fps=0.5` itself.

The witness is the ffmpeg command: `showinfo` before and after `fps=0.5` logs each source frame's
timestamp and checksum and each output frame's checksum, so the source frame behind every output frame
is known without trusting any decoder of ours."""

from __future__ import annotations

import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from v2a.media.fps_filter import fps_picks, read_fps_frames

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg command is not installed")
_SHOWINFO = re.compile(r"Parsed_showinfo_(\d).*?\bn:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:(\S+).*?checksum:([0-9A-F]{8})")
_TIME_BASE = re.compile(r"Parsed_showinfo_0.*config in time_base: (\d+)/(\d+)")


def _cfr(folder: Path, rate: str, seconds: float) -> Path:
    path = folder / f"cfr_{rate.replace('/', '_')}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=96x64:rate={rate}:duration={seconds}", "-c:v", "mpeg4", "-q:v", "4",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def _vfr(folder: Path) -> Path:
    """Irregular frame times in milliseconds, with frames landing exactly on 1 s and 3 s and a 1.5-s gap."""
    import av

    times = sorted({0, 40, 120, 500, 999, 1000, 1001, 1400, 1950, 2000, 2050, 2999, 3000, 4600, 4999,
                    5001, 6200, 6900, 7000, 7001, 8000, 8400, 9100})
    path = folder / "vfr.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        rng = np.random.default_rng(0)
        for ms in times:
            img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _ffmpeg_fps(path: Path) -> tuple[list[Fraction], list[int]]:
    """(every source frame's time, the source index behind each `fps=0.5` output frame), from ffmpeg's log."""
    log = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-vf", "showinfo,fps=0.5,showinfo",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    num, den = _TIME_BASE.search(log).groups()
    src_times, src_sums, out_sums = [], [], []
    for which, _, pts, _, checksum in _SHOWINFO.findall(log):
        if which == "0":
            src_times.append(Fraction(int(pts) * int(num), int(den)))
            src_sums.append(checksum)
        else:
            out_sums.append(checksum)
    assert len(set(src_sums)) == len(src_sums), "source frames must be told apart by their checksums"
    return src_times, [src_sums.index(s) for s in out_sums]


def _nearest(times: list[Fraction], t: float) -> int:
    return int(np.argmin([abs(float(s) - t) for s in times]))


def _ffmpeg_rgb(path: Path, shape: tuple[int, int]) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", "fps=0.5", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, *shape, 3)


@needs_ffmpeg
@pytest.mark.parametrize("rate, seconds", [("10", 9), ("24", 9.5), ("25", 10), ("30000/1001", 9), ("30", 8.5)])
def test_constant_rate_files_pick_ffmpegs_frames(tmp_path, rate, seconds):
    path = _cfr(tmp_path, rate, seconds)
    src_times, theirs = _ffmpeg_fps(path)
    frames, times = read_fps_frames(str(path), 0.5)
    ours = [_nearest(src_times, t) for t in times]
    assert ours == theirs
    assert fps_picks(src_times, Fraction(1, 2), end=src_times[-1] + 1 / Fraction(rate)) == theirs
    np.testing.assert_array_equal(frames, _ffmpeg_rgb(path, frames.shape[1:3]))
    if rate == "10":  # the case of the issue: 0.9 / 2.9 / 4.9 / 6.9 s, not 1 / 3 / 5 / 7 s; the stream ends
        assert theirs == [9, 29, 49, 69, 89]  # at 9.0 s, slot round(4.5) = 5, so 8.9 s is the fifth


@needs_ffmpeg
def test_variable_rate_file_picks_ffmpegs_frames(tmp_path):
    path = _vfr(tmp_path)
    src_times, theirs = _ffmpeg_fps(path)
    frames, times = read_fps_frames(str(path), 0.5)
    assert [_nearest(src_times, t) for t in times] == theirs
    np.testing.assert_array_equal(frames, _ffmpeg_rgb(path, frames.shape[1:3]))
    # 0.999 s (not 1.000 s) fills slot 0; the gap 3.0 -> 4.6 s repeats 3.0 s in slot 2 (t < 5 s)
    assert [float(src_times[i]) for i in theirs[:3]] == [0.999, 2.999, 4.999]


@needs_ffmpeg
def test_max_frames_stops_early_with_the_same_first_frames(tmp_path):
    path = _cfr(tmp_path, "25", 10)
    all_frames, all_times = read_fps_frames(str(path), 0.5)
    first, times = read_fps_frames(str(path), 0.5, max_frames=4)
    assert len(first) == 4
    np.testing.assert_array_equal(first, all_frames[:4])
    np.testing.assert_array_equal(times, all_times[:4])


def test_rounding_is_half_away_from_zero_and_slots_start_at_the_first_frame():
    # 10 fps from t = 0: the frame at exactly 1 s belongs to slot 1, so slot 0 is the one at 0.9 s
    times = [Fraction(i, 10) for i in range(80)]
    assert fps_picks(times, "1/2") == [9, 29, 49, 69]
    # a stream starting at 3.2 s starts at slot round(1.6) = 2 (no start_time: its own timestamps)
    later = [Fraction(32, 10) + Fraction(i, 10) for i in range(60)]
    assert fps_picks(later, 0.5)[0] == 17  # slot 2 runs to t < 5 s: 4.9 s, index 17
    with pytest.raises(ValueError, match="fps must be positive"):
        fps_picks(times, 0)
