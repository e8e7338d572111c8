"""Video frames as FFmpeg's `fps` filter picks them, for metrics whose reference decodes through it.

av-benchmark (hkchengrex/av-benchmark `av_bench/data/video_dataset.py`) reads ImageBind's frames with
torio's `StreamingMediaDecoder(...).add_basic_video_stream(frame_rate=0.5)`, i.e. FFmpeg's filter graph
`fps=0.5` with its default options (FFmpeg filter documentation, "fps": `round=near`, no `start_time`,
`eof_action=round`). What that filter does, in exact rational arithmetic:

- every input frame's timestamp t is moved to the output time base 1/fps with the `near` rounding
  (half away from zero): its slot is round(t * fps);
- the output starts at the first frame's slot n0 (no `start_time`: the stream's own first timestamp,
  which torio does not shift to 0);
- output slot n (n = n0, n0 + 1, ...) carries the *last* frame whose slot is <= n: a frame whose
  rounded slot is later never shows before it, an earlier one is dropped once a later one also
  qualifies, and a slot no frame reaches repeats the frame before it;
- the stream ends where the last frame ends (its timestamp plus its duration, where the `ffmpeg` command
  closes the filter's input): slots up to that end's rounded slot, exclusive, and never fewer than one.

At 0.5 fps, slot n covers the frames with t < 2n + 1 s: a 10-fps video gives its frames at 0.9, 2.9,
4.9, 6.9 s (indices 9, 29, 49, 69), not the ones at 1, 3, 5, 7 s, because t = 1 s rounds up to slot 1.
`tests/media/test_fps_filter.py` holds this against `ffmpeg -vf fps=0.5` on 10, 24, 25, 29.97 and
30 fps files and a variable-frame-rate one.

Frames are not turned by a display matrix: torio's graph has no `autorotate`, so av-benchmark sees the
stored pixels.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np


def _round_near(x: Fraction) -> int:
    """FFmpeg's AV_ROUND_NEAR_INF: to the nearest integer, halves away from zero."""
    whole = (abs(x.numerator) * 2 + x.denominator) // (2 * x.denominator)
    return whole if x >= 0 else -whole


def fps_slots(times: Sequence[Fraction], fps: Fraction) -> list[int]:
    """Each frame's output slot: its timestamp in the output time base 1/fps, rounded `near`."""
    return [_round_near(Fraction(t) * fps) for t in times]


def _rate(fps) -> Fraction:
    rate = Fraction(fps).limit_denominator(1_000_000) if isinstance(fps, float) else Fraction(fps)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return rate


def fps_picks(times: Sequence[Fraction], fps: Fraction | float | str, end: Fraction | None = None,
              end_slot: int | None = None) -> list[int]:
    """Indices (into `times`, frames in presentation order) of the frames `fps=<fps>` outputs, one per slot.

    `times` are the frames' exact timestamps in seconds (pts x time base, as Fractions); `end`: where the
    stream ends in seconds (the last frame's end; default its timestamp); `end_slot` instead names the first
    slot not wanted."""
    if not len(times):
        return []
    rate = _rate(fps)
    slots = fps_slots(times, rate)
    first = slots[0]
    if end_slot is None:
        end_slot = _round_near(Fraction(times[-1] if end is None else end) * rate)
    end = max(end_slot, first + 1)
    picks, i = [], 0
    for n in range(first, end):
        while i + 1 < len(slots) and slots[i + 1] <= n:
            i += 1
        picks.append(i)
    return picks


def read_fps_frames(uri: str, fps: Fraction | float | str, max_frames: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """((F, H, W, 3) uint8 RGB, (F,) float seconds) of the frames `fps=<fps>` gives, the first `max_frames`.

    One pass with PyAV: every frame's timestamp is read, only the picked frames are converted to RGB,
    and decoding stops once `max_frames` slots are settled."""
    import av

    from v2a.media.decoders.base import MediaError, Source, corrupt, unreadable

    source = Source(uri)
    rate = _rate(fps)
    try:
        container = av.open(source.open_arg())
    except (av.FFmpegError, EOFError) as err:
        raise unreadable(err, source) from err
    times: list[Fraction] = []
    kept: dict[int, np.ndarray] = {}
    with container:
        if not container.streams.video:
            raise MediaError("file has no video stream")
        stream = container.streams.video[0]
        first_slot, end_slot = None, None
        last: tuple[int, object] | None = None   # the latest frame, a candidate for the open slot
        try:
            for frame in container.decode(stream):
                t = _frame_time(frame, stream)
                if t is None:
                    continue
                slot = _round_near(t * rate)
                first_slot = slot if first_slot is None else first_slot
                if last is not None and slot > _round_near(times[-1] * rate):
                    # every slot before this frame's is settled: they all carry the previous frame
                    kept[last[0]] = last[1].to_ndarray(format="rgb24")
                    if max_frames is not None and slot - first_slot >= max_frames:
                        end_slot = slot  # the slots wanted are all settled; the rest is never decoded
                        break
                times.append(t)
                last = (len(times) - 1, frame)
        except (av.FFmpegError, EOFError) as err:
            raise corrupt(err) from err
        if last is None:
            raise MediaError("video stream has no decodable frames")
        if end_slot is None:
            end_slot = _round_near((times[-1] + _frame_duration(last[1], stream)) * rate)
        if last[0] not in kept:
            kept[last[0]] = last[1].to_ndarray(format="rgb24")
    picks = fps_picks(times, rate, end_slot=end_slot)
    if max_frames is not None:
        picks = picks[:max_frames]
    frames = np.stack([kept[i] for i in picks])
    return frames, np.array([float(times[i]) for i in picks], dtype=np.float64)


def _frame_duration(frame, stream) -> Fraction:
    """The frame's duration in seconds: its own where the container gives one, else one period of the stream's rate."""
    base = frame.time_base or stream.time_base
    if getattr(frame, "duration", None):
        return Fraction(int(frame.duration)) * Fraction(base.numerator, base.denominator)
    rate = stream.average_rate or stream.guessed_rate
    return 1 / Fraction(rate.numerator, rate.denominator) if rate else Fraction(0)


def _frame_time(frame, stream) -> Fraction | None:
    """The frame's exact timestamp in seconds (its pts, else its best-effort time), as FFmpeg's graph sees it."""
    pts = frame.pts if frame.pts is not None else getattr(frame, "dts", None)
    if pts is None:
        return None
    base = frame.time_base or stream.time_base
    return Fraction(int(pts)) * Fraction(base.numerator, base.denominator)
