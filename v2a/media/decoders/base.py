"""What every decoder backend shares: the clip it returns, the errors it raises, which frames it picks.

A backend decodes one video file into the frames *played at* a set of target times (the frame
whose presentation interval contains the time, as a player would show it) and the whole audio
track as 16 kHz mono float32, up to ``max_seconds`` or, without it, CLAP's 10 s. Targets are evenly spaced over the clip: either a fixed count
(the centres of ``num_frames`` equal segments) or a rate (one frame every ``1 / frame_rate``
seconds, again at segment centres), so ``num_frames=10`` and ``frame_rate=1`` pick the same frames
of a 10-s clip.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

from v2a.core.rates import CLAP_SECONDS, DECODE_SAMPLE_RATE  # CLAP_SECONDS: re-exported to the decoders' callers

# A player's notion of "the frame at t": slack for timestamps printed with limited precision.
_EPS = 1e-6
# A decoded stream that ends this long before the container says it should is a truncated file.
TRUNCATION_SLACK_S = 0.5


class MediaError(ValueError):
    """A media file cannot be used; the message says why in words a person understands."""


@dataclass
class DecodedClip:
    frames: np.ndarray          # (F, H, W, 3) uint8 RGB
    frame_times: np.ndarray     # (F,) seconds from the start of the video stream
    audio: np.ndarray | None    # (T,) float32 mono at `sample_rate` (at most max_seconds, else CLAP_SECONDS), None when silent
    sample_rate: int
    duration: float             # seconds of the clip the frames were spread over (after max_seconds)


@dataclass(frozen=True)
class Sampling:
    """What to take from a video: which frames, and the audio at which rate."""

    num_frames: int = 10                 # evenly spaced frames (ignored when frame_rate is set)
    frame_rate: float | None = None      # frames per second instead of a fixed count
    sample_rate: int = DECODE_SAMPLE_RATE  # AudioLDM's CLAP input rate
    max_seconds: float | None = None     # only the first max_seconds of the file (VGGSound: 10)
    audio: bool = True                   # False: skip the audio track (frames only)
    threads: int = 0                     # FFmpeg threads per clip; 0 lets FFmpeg choose (use 1 with many workers)
    channels: str = "mean"               # mean: channels averaged; first: channel 0 (AudioLDM's audio loading)

    def __post_init__(self):
        if self.frame_rate is None and (not isinstance(self.num_frames, int) or self.num_frames < 1):
            raise ValueError(f"num_frames must be a positive integer, got {self.num_frames!r}")
        if self.frame_rate is not None and not self.frame_rate > 0:
            raise ValueError(f"frame_rate must be > 0 frames per second, got {self.frame_rate!r}")
        if self.channels not in ("mean", "first"):
            raise ValueError(f"channels must be 'mean' or 'first', got {self.channels!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds!r}")


def clip_duration(stream_duration: float, sampling: Sampling) -> float:
    if not stream_duration or stream_duration <= 0 or not np.isfinite(stream_duration):
        raise MediaError("cannot tell the duration of the video")
    return min(stream_duration, sampling.max_seconds) if sampling.max_seconds is not None else stream_duration


def target_times(duration: float, sampling: Sampling) -> np.ndarray:
    """Times (seconds from the stream start) of the frames to keep, sorted."""
    if sampling.frame_rate is not None:
        count = int(np.floor(duration * sampling.frame_rate + _EPS))
        if count < 1:  # a clip shorter than one sampling period still gives one frame, its middle
            return np.array([duration / 2], dtype=np.float64)
        return (np.arange(count) + 0.5) / sampling.frame_rate
    # Centres of num_frames equal segments: evenly spaced and never the very first/last instant.
    return (np.arange(sampling.num_frames) + 0.5) * duration / sampling.num_frames


def played_at(starts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the frame shown at each target: the last frame starting at or before it (else the first)."""
    idx = np.searchsorted(np.asarray(starts, dtype=np.float64), targets + _EPS, side="right") - 1
    return np.clip(idx, 0, len(starts) - 1)


def check_coverage(last_frame_end: float, last_target: float, duration: float) -> None:
    """A frame asked for past the end of what decodes means the file was cut short: its frames and
    sound would describe only the part that survived, so the clip is refused rather than padded.
    (Times in seconds from the stream start.)"""
    if last_target > last_frame_end + TRUNCATION_SLACK_S:
        raise MediaError(f"file is truncated or corrupt: video decodes to {last_frame_end:.2f} s "
                         f"of the {duration:.2f} s its header announces")


def audio_seconds(sampling: Sampling) -> float:
    """Seconds of audio a clip keeps: ``max_seconds`` when set, else the CLAP window."""
    # AudioLDM's CLAP hears the first CLAP_SECONDS of a clip and nothing after. Without max_seconds the frames
    # still span the whole video, but the audio stops there: decoding and resampling an hour-long track
    # only for CLAP to drop all but its first 10 s would make memory grow with the video's length.
    return sampling.max_seconds if sampling.max_seconds is not None else CLAP_SECONDS


# Native samples kept past the audio's end before resampling, so the resampler's edge (a few taps) falls
# outside the kept audio and every backend, whatever it decodes beyond, gives the same samples.
_AUDIO_MARGIN_S = 0.1


def native_audio_limit(rate: int, sampling: Sampling) -> int:
    """Samples at the stream's own rate worth decoding."""
    return int(np.ceil((audio_seconds(sampling) + _AUDIO_MARGIN_S) * rate))


def to_mono(samples: np.ndarray, rate: int, sampling: Sampling) -> np.ndarray:
    """(C, T) float samples at the stream's rate → (T',) float32 mono at ``sampling.sample_rate``,
    cut to ``audio_seconds(sampling)``.

    Channels are averaged (``sampling.channels="first"``: channel 0 is kept); the rate changes with torchaudio's windowed-sinc resampler (``v2a.media.resample``),
    the one AudioLDM's data loading uses. Every backend hands its native samples here, so their
    audio is identical whatever FFmpeg build each one carries.
    """
    import torch

    from v2a.media.resample import resample

    wave = np.asarray(samples, dtype=np.float32)
    wave = wave.reshape(1, -1) if wave.ndim == 1 else wave
    wave = wave[:, :native_audio_limit(rate, sampling)]
    mono = torch.from_numpy(np.ascontiguousarray(wave[0] if sampling.channels == "first" else wave.mean(axis=0)))
    if mono.numel() and int(rate) != int(sampling.sample_rate):
        mono = resample(mono, int(rate), int(sampling.sample_rate))
    out = mono.numpy().astype(np.float32, copy=False)[: int(round(audio_seconds(sampling) * sampling.sample_rate))]
    return np.ascontiguousarray(out)


def display_rotation(frame, tags) -> int:
    """Counter-clockwise degrees (0, 90, 180 or 270) that turn a stored frame upright, as a player shows it.

    Phones store the sensor's pixels and say how to turn them: a display matrix (FFmpeg attaches
    it to every decoded frame as side data), or, in files from older muxers, a ``rotate`` tag in
    the stream's metadata (clockwise degrees; FFmpeg before 5.0 exported the matrix that way). The
    matrix wins when both are there, as in FFmpeg. Angles that are not a quarter turn are ignored,
    as FFmpeg's autorotation ignores them; a mirrored matrix is read for its rotation only.
    """
    degrees = None
    if frame is not None and "DISPLAYMATRIX" in frame.side_data:
        degrees = float(frame.rotation or 0)
    else:
        tag = next((v for k, v in dict(tags or {}).items() if k.lower() == "rotate"), None)
        try:
            degrees = -float(tag) if tag is not None else None
        except ValueError:
            degrees = None
    if degrees is None or not np.isfinite(degrees):
        return 0
    turns = round(degrees / 90)
    return int(turns % 4) * 90 if abs(degrees - 90 * turns) < 1.0 else 0


def upright(frames: np.ndarray, rotation: int) -> np.ndarray:
    """(F, H, W, 3) stored frames turned ``rotation`` degrees counter-clockwise."""
    if not rotation % 360:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=(rotation // 90) % 4, axes=(1, 2)))


@dataclass(frozen=True)
class StreamInfo:
    has_video: bool
    has_audio: bool
    audio_rate: int | None
    rotation: int = 0           # counter-clockwise degrees that turn the video upright (display_rotation)
    video_codec: str | None = None
    width: int | None = None    # stored (unrotated) frame size
    height: int | None = None


def probe(source) -> StreamInfo:
    """Which streams a file has and how its video is turned, from the header and the first video frame
    (the display matrix reaches PyAV only on decoded frames; one keyframe costs milliseconds)."""
    try:
        with av.open(source.open_arg()) as container:
            audio = container.streams.audio
            video = container.streams.video
            rotation, codec, width, height = 0, None, None, None
            if video:
                ctx = video[0].codec_context
                codec, width, height = ctx.codec.canonical_name, ctx.width, ctx.height
                ctx.thread_count = 1  # one keyframe: starting a thread pool would cost more than it saves
                try:
                    first = next(container.decode(video[0]), None)
                except (av.FFmpegError, EOFError):
                    first = None  # the backend's own decode reports what is wrong with the stream
                rotation = display_rotation(first, video[0].metadata)
            return StreamInfo(bool(video), bool(audio), int(audio[0].rate) if audio else None, rotation,
                              codec, width, height)
    except (av.FFmpegError, EOFError) as err:
        raise unreadable(err, source) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def unreadable(err: BaseException, source: "Source | None" = None) -> MediaError:
    if isinstance(err, EOFError):  # e.g. an mp4 cut before its index (moov) was written
        return MediaError(f"file is truncated: it ends before its header is complete ({_first_line(err)})")
    if source is not None and source.looks_like_mp4():
        # FFmpeg says only "Invalid data" when an MP4 whose index comes last was cut before it
        return MediaError("file is truncated or corrupt: it starts as an MP4/MOV but its index (moov box) "
                          f"cannot be read ({_first_line(err)})")
    return MediaError(f"not a readable media file: {_first_line(err)}")


def corrupt(err: BaseException) -> MediaError:
    return MediaError(f"file is corrupt or truncated: {_first_line(err)}")


class Source:
    """A file to decode: a local path when it is one (every backend opens those fastest); a remote
    object (s3://, ...) is fetched once into memory and each pass reads its own in-memory handle."""

    def __init__(self, uri: str):
        from v2a.core import storage

        self.uri = str(uri)
        self._fs, self._path = storage.filesystem(self.uri)
        if not self._fs.exists(self._path):
            raise MediaError(f"file not found: {uri}")
        if self._fs.size(self._path) == 0:
            raise MediaError("file is empty (0 bytes)")
        protocol = self._fs.protocol if isinstance(self._fs.protocol, str) else self._fs.protocol[0]
        self.local_path = self._path if protocol in ("file", "local") else None
        self._bytes: bytes | None = None

    def looks_like_mp4(self) -> bool:
        """Whether the file opens with an ISO-BMFF 'ftyp' box (mp4, mov, m4v, 3gp)."""
        try:
            with self._fs.open(self._path, "rb") as handle:
                return handle.read(12)[4:8] == b"ftyp"
        except OSError:
            return False

    def open_arg(self):
        """A path or a readable, seekable file object for one pass over the file."""
        if self.local_path is not None:
            return self.local_path
        if self._bytes is None:  # remote: fetched once, even when a backend reads the file twice
            with self._fs.open(self._path, "rb") as handle:
                self._bytes = handle.read()
        return io.BytesIO(self._bytes)
