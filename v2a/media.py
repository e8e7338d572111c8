"""Decoding of videos and images into sampled RGB frames and 16 kHz mono audio.

Frames are picked while decoding (never the whole video in memory), evenly spaced over the clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from PIL import Image

from v2a import storage

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


class MediaError(ValueError):
    """A media file cannot be used; the message says why in words a person understands."""


@dataclass
class DecodedClip:
    frames: np.ndarray          # (F, H, W, 3) uint8 RGB
    frame_times: np.ndarray     # (F,) seconds
    audio: np.ndarray | None    # (T,) float32 mono at `sample_rate`, None when the file has no sound
    sample_rate: int
    duration: float


def is_image(uri: str) -> bool:
    return str(uri).lower().endswith(IMAGE_EXTENSIONS)


def _open(uri: str):
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise MediaError(f"file not found: {uri}")
    if fs.size(path) == 0:
        raise MediaError("file is empty (0 bytes)")
    return fs.open(path, "rb")


def read_image(uri: str) -> DecodedClip:
    with _open(uri) as handle:
        try:
            img = Image.open(handle)
            img.load()
        except Exception as err:  # PIL raises many kinds for bad files
            raise MediaError(f"not a readable image: {err}") from err
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return DecodedClip(rgb[None], np.zeros(1, np.float32), None, 16000, 0.0)


def _target_times(duration: float, num_frames: int) -> np.ndarray:
    # Centres of num_frames equal segments: evenly spaced and never the very first/last instant.
    return (np.arange(num_frames) + 0.5) * duration / num_frames


def read_video(uri: str, num_frames: int = 10, sample_rate: int = 16000, max_seconds: float | None = None) -> DecodedClip:
    with _open(uri) as handle:
        try:
            container = av.open(handle)
        except av.FFmpegError as err:
            raise MediaError(f"not a readable media file: {err}") from err
        with container:
            if not container.streams.video:
                raise MediaError("file has no video stream")
            vstream = container.streams.video[0]
            astream = container.streams.audio[0] if container.streams.audio else None
            duration = _duration(container, vstream)
            if max_seconds is not None:
                duration = min(duration, max_seconds)
            targets = _target_times(duration, num_frames)
            frames, times = _decode(container, vstream, astream, targets, sample_rate, max_seconds)
    video, audio = frames
    picked, picked_times = _nearest(video, times, targets)
    wave = np.concatenate(audio).astype(np.float32) if audio else None
    if wave is not None and max_seconds is not None:
        wave = wave[: int(round(max_seconds * sample_rate))]
    return DecodedClip(picked, picked_times, wave, sample_rate, duration)


def _duration(container, vstream) -> float:
    if vstream.duration is not None and vstream.time_base is not None:
        return float(vstream.duration * vstream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    raise MediaError("cannot tell the duration of the video")


def _decode(container, vstream, astream, targets, sample_rate, max_seconds):
    """One pass over the file: keep only the frames closest to each target time, and all audio."""
    best: list = [None] * len(targets)
    best_dt = np.full(len(targets), np.inf)
    best_t = np.zeros(len(targets), np.float32)
    audio_parts: list[np.ndarray] = []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate) if astream is not None else None
    streams = [s for s in (vstream, astream) if s is not None]
    try:
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if frame.time is None:
                    continue
                if max_seconds is not None and frame.time > max_seconds + 1.0:
                    continue
                if packet.stream.type == "video":
                    dt = np.abs(targets - frame.time)
                    closer = dt < best_dt
                    if closer.any():
                        rgb = frame.to_ndarray(format="rgb24")
                        for i in np.flatnonzero(closer):
                            best[i], best_dt[i], best_t[i] = rgb, dt[i], frame.time
                else:
                    for out in resampler.resample(frame):
                        audio_parts.append(out.to_ndarray().reshape(-1))
        if resampler is not None:
            for out in resampler.resample(None):
                audio_parts.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as err:
        if not any(b is not None for b in best):
            raise MediaError(f"file is corrupt or truncated: {err}") from err
        # A truncated tail still leaves the decoded part usable.
    return (best, audio_parts), best_t


def _nearest(best, times, targets):
    if any(b is None for b in best):
        # Fewer decodable frames than requested: repeat the nearest decoded one.
        have = [i for i, b in enumerate(best) if b is not None]
        if not have:
            raise MediaError("video stream has no decodable frames")
        for i in range(len(best)):
            if best[i] is None:
                j = min(have, key=lambda k: abs(k - i))
                best[i], times[i] = best[j], times[j]
    return np.stack(best), np.asarray(times, np.float32)


def read_clip(uri: str, num_frames: int = 10, sample_rate: int = 16000, max_seconds: float | None = None) -> DecodedClip:
    if is_image(uri):
        return read_image(uri)
    return read_video(uri, num_frames=num_frames, sample_rate=sample_rate, max_seconds=max_seconds)
