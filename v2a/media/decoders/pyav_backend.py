"""PyAV backend: one pass over the file, video and audio packets demuxed together.

Frames stream through in presentation order; a frame is converted to RGB only once it is known to
be the one shown at a target time (the next frame starts after the target), so at most one
undecided frame plus the chosen ones are held, never the whole video. Decoding stops as soon as
every target is resolved and the audio has reached ``max_seconds`` (without it, CLAP's 10 s): past
that, audio packets are demuxed but never decoded. Frames come out upright: the first frame's display
matrix (or the stream's ``rotate`` tag) says how to turn them (``base.display_rotation``).
"""

from __future__ import annotations

import av
import numpy as np

from .base import (DecodedClip, MediaError, Sampling, check_coverage, clip_duration, corrupt, display_rotation,
                   native_audio_limit, target_times, to_mono, unreadable, upright)

NAME = "pyav"


def _stream_seconds(container, vstream) -> tuple[float, float]:
    """(start, duration) of the video stream in seconds."""
    start = float(vstream.start_time * vstream.time_base) if vstream.start_time is not None else 0.0
    if vstream.duration is not None and vstream.time_base is not None:
        return start, float(vstream.duration * vstream.time_base)
    if container.duration is not None:
        return start, container.duration / 1_000_000
    raise MediaError("cannot tell the duration of the video")


def decode(source, sampling: Sampling) -> DecodedClip:
    try:
        container = av.open(source.open_arg())
    except (av.FFmpegError, EOFError) as err:
        raise unreadable(err, source) from err
    with container:
        if not container.streams.video:
            raise MediaError("file has no video stream")
        vstream = container.streams.video[0]
        astream = container.streams.audio[0] if (sampling.audio and container.streams.audio) else None
        vstream.thread_count = sampling.threads
        vstream.thread_type = "AUTO" if sampling.threads != 1 else "SLICE"
        start, stream_duration = _stream_seconds(container, vstream)
        duration = clip_duration(stream_duration, sampling)
        targets = target_times(duration, sampling)
        chosen, times, audio, first = _one_pass(container, vstream, astream, start, targets, duration, sampling)
        rotation = display_rotation(first, vstream.metadata)
    frames = upright(_to_rgb(chosen), rotation)
    wave = to_mono(audio, astream.rate, sampling) if astream is not None else None
    return DecodedClip(frames, (np.asarray(times) - start).astype(np.float32), wave, sampling.sample_rate, duration)


def _one_pass(container, vstream, astream, start: float, rel_targets: np.ndarray, duration: float,
              sampling: Sampling):
    targets = start + rel_targets
    n = len(targets)
    chosen: list = [None] * n
    times = np.zeros(n, np.float64)
    pending = 0                   # first target whose frame is not known yet
    prev, prev_t = None, 0.0      # the latest frame, still a candidate for the pending target
    first = None                  # the first decoded frame: it carries the display matrix
    last_end = 0.0
    audio_parts: list[np.ndarray] = []
    audio_samples = 0
    audio_limit = native_audio_limit(astream.rate, sampling) if astream is not None else None
    # planar float at the stream's own layout and rate: a no-op for AAC, a format change for the rest
    to_float = (av.AudioResampler(format="fltp", layout=astream.layout.name, rate=astream.rate)
                if astream is not None else None)
    audio_done = astream is None
    streams = [s for s in (vstream, astream) if s is not None]
    try:
        for packet in container.demux(*streams):
            is_video = packet.stream.type == "video"
            if (is_video and pending == n) or (not is_video and audio_done):
                if pending == n and audio_done:
                    break
                continue
            for frame in packet.decode():
                if frame.time is None:
                    continue
                if is_video:
                    t = float(frame.time)
                    first = frame if first is None else first
                    while pending < n and t > targets[pending] + 1e-6:
                        # this frame starts after the target: the one before it is on screen then
                        chosen[pending], times[pending] = (prev, prev_t) if prev is not None else (frame, t)
                        pending += 1
                    prev, prev_t = frame, t
                    last_end = t + _frame_seconds(frame, vstream)
                else:
                    for out in to_float.resample(frame):
                        audio_parts.append(out.to_ndarray())
                        audio_samples += out.samples
                    audio_done = audio_samples >= audio_limit
    except (av.FFmpegError, EOFError) as err:
        # Only reached before every target and the audio were in: what is missing is damaged.
        raise corrupt(err) from err
    if prev is None:
        raise MediaError("video stream has no decodable frames")
    if pending < n:
        check_coverage(last_end - start, rel_targets[-1], duration)
    for i in range(pending, n):  # targets after the last frame: the last frame stays on screen
        chosen[i], times[i] = prev, prev_t
    audio = None
    if astream is not None:
        audio = (np.concatenate(audio_parts, axis=1) if audio_parts
                 else np.zeros((astream.layout.nb_channels, 0), np.float32))
    return chosen, times, audio, first


def decode_audio(source, sampling: Sampling) -> np.ndarray | None:
    """Only the audio track, as every backend returns it (None without one): for backends whose own
    audio reader cannot be trusted (decord's with more than two channels)."""
    try:
        container = av.open(source.open_arg())
    except (av.FFmpegError, EOFError) as err:
        raise unreadable(err, source) from err
    with container:
        if not container.streams.audio:
            return None
        astream = container.streams.audio[0]
        limit = native_audio_limit(astream.rate, sampling)
        to_float = av.AudioResampler(format="fltp", layout=astream.layout.name, rate=astream.rate)
        parts, samples = [], 0
        try:
            for packet in container.demux(astream):
                for frame in packet.decode():
                    for out in to_float.resample(frame):
                        parts.append(out.to_ndarray())
                        samples += out.samples
                if samples >= limit:
                    break
        except (av.FFmpegError, EOFError) as err:
            raise corrupt(err) from err
        native = np.concatenate(parts, axis=1) if parts else np.zeros((astream.layout.nb_channels, 0), np.float32)
        return to_mono(native, astream.rate, sampling)


def _frame_seconds(frame, vstream) -> float:
    if frame.duration and frame.time_base is not None:
        return float(frame.duration * frame.time_base)
    rate = vstream.average_rate or vstream.guessed_rate
    return float(1 / rate) if rate else 0.0


def _to_rgb(chosen) -> np.ndarray:
    converted: dict[int, np.ndarray] = {}
    for frame in chosen:
        if id(frame) not in converted:  # a frame shown at several targets is converted once
            converted[id(frame)] = frame.to_ndarray(format="rgb24")
    return np.stack([converted[id(f)] for f in chosen])
