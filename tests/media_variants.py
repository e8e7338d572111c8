"""Damaged and partial copies of a good clip, made by remuxing it with PyAV (no re-encoding), and
rotated or variable-frame-rate clips written from scratch."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def remux(src: Path, dst: Path, video: bool = True, audio: bool = True, faststart: bool = False) -> Path:
    """Copy src's streams (all, or without video / audio) into a new mp4; faststart puts the index first."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4",
                                           options={"movflags": "+faststart"} if faststart else {}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams
                   if (s.type == "video" and video) or (s.type == "audio" and audio)}
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    """The first `fraction` of src's bytes, as a download cut short would leave them."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return dst


def variants(src: Path, folder: Path) -> dict[str, Path]:
    """no_audio, audio_only, truncated (index at the end, cut off) and truncated_faststart
    (index first, the last 40 % of the media data cut off)."""
    folder.mkdir(parents=True, exist_ok=True)
    fast = remux(src, folder / "faststart.mp4", faststart=True)
    return {
        "no_audio": remux(src, folder / "no_audio.mp4", audio=False),
        "audio_only": remux(src, folder / "audio_only.mp4", video=False),
        "truncated": truncate(src, folder / "truncated.mp4", 0.6),
        "truncated_faststart": truncate(fast, folder / "truncated_faststart.mp4", 0.6),
    }


# --- Real-world orientation and timing, written with PyAV (its FFmpeg writes display matrices) ---

def marked_frame(i: int, size=(64, 48)) -> np.ndarray:
    """An RGB frame whose orientation and index can be read back: a white block in the top-left
    corner (a third of the width, half the height) and the frame index in the green channel."""
    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 2] = np.linspace(40, 200, w, dtype=np.uint8)[None, :]
    rgb[: h // 2, : w // 3] = 255
    rgb[h // 2:, ..., 1] = (8 * i) % 256
    return rgb


def write_marked(path: Path, times_ms: list[int], end_ms: int, size=(64, 48), rotation: int | None = None,
                 tags: dict | None = None) -> Path:
    """H.264 frames of ``marked_frame`` at the given presentation times (milliseconds; uneven gaps make a
    variable-frame-rate file), no B-frames (so decode and presentation order agree, as phones record).
    ``rotation``: a display matrix turning the frames that many degrees counter-clockwise for display;
    ``tags``: stream metadata, e.g. an old-style ``{"rotate": "90"}`` (clockwise degrees)."""
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(1000, max(1, min(np.diff(times_ms + [end_ms])))))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 1000)
        vs.options = {"bf": "0"}
        if rotation is not None:
            vs.set_display_rotation(rotation)
        for key, value in (tags or {}).items():
            vs.metadata[key] = value
        for i, pts in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(marked_frame(i, size), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            frame.duration = (times_ms + [end_ms])[i + 1] - pts
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return path


def constant_rate_ms(seconds: float = 1.0, fps: int = 10) -> list[int]:
    return [int(round(1000 * i / fps)) for i in range(int(round(seconds * fps)))]


# 1 s at 10 fps, 1 s at 50 fps, 1 s at 5 fps: a phone's frame rate as the light changes.
VFR_MS = list(range(0, 1000, 100)) + list(range(1000, 2000, 20)) + list(range(2000, 3000, 200))
