"""A synthetic audio-visual dataset in VGGSound's layout, so the pipeline can be run and tested offline.

Each class pairs a visual pattern (colour, shape, motion) with a sound signature (tone, chirp,
band noise, pulses, or a mix). Clips vary a little per clip (position, phase, loudness, pitch),
so a model has to learn the class, not memorise a clip. With ``one_to_many=k`` the first k
classes have two sound signatures, which is the ambiguity the paper's generative mapper is for.

Layout written under ``out_dir``::

    videos/{youtube_id}_{start:06d}.mp4   H.264 yuv420p + mono AAC, `seconds` long
    vggsound.csv                          youtube_id,start_seconds,label,split  (no header)
    images/{label_slug}/{n}.png           ImageHear-like stills of each class's pattern
    classes.json                          the class table and the generation parameters
    clips.json                            clip id -> label, split, sound variant and jitter

Everything is a function of the arguments: the same seed gives byte-identical CSV, JSON, PNG
and MP4 files (the muxer runs bitexact, so no creation time or library version is embedded).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
from tqdm.auto import tqdm

from v2a.core.rates import DECODE_SAMPLE_RATE

GENERATOR_VERSION = 1

# Named colours first (they make readable labels and are far apart in hue); classes past the
# palette get golden-ratio hues, which stay distinct without knowing the class count.
PALETTE = (
    ("red", (220, 40, 40)),
    ("green", (40, 190, 60)),
    ("blue", (50, 90, 235)),
    ("yellow", (235, 215, 40)),
    ("magenta", (215, 50, 205)),
    ("cyan", (40, 210, 220)),
    ("orange", (245, 140, 30)),
    ("purple", (125, 60, 195)),
    ("white", (235, 235, 235)),
    ("pink", (250, 150, 190)),
    ("brown", (140, 85, 40)),
    ("olive", (130, 130, 20)),
)
SHAPES = ("circle", "square", "triangle", "stripes", "ring", "cross", "diamond")
# Five motions against six sound kinds and seven shapes: cycle lengths that share no factor
# with 6 keep motion from being a stand-in for the sound kind.
MOTIONS = ("static", "horizontal", "vertical", "rotating", "pulsing")
SOUND_KINDS = ("tone", "chirp_up", "noise", "pulses", "chirp_down", "tone_pulses")
SOUND_WORDS = {
    "tone": "humming",
    "chirp_up": "rising whistle",
    "noise": "hissing",
    "pulses": "beeping",
    "chirp_down": "falling whistle",
    "tone_pulses": "ringing",
}

BACKGROUND_GREY = 28
BASE_LEVEL = 0.35  # peak before the ±6 dB jitter: at most 0.70, leaving room for AAC overshoot
GAIN_DB = 6.0
PITCH_JITTER = 0.03
FADE_S = 0.02

# Independent random streams per purpose, so e.g. adding images never changes the clips.
_STREAM_CLIP, _STREAM_SPLIT, _STREAM_VARIANT, _STREAM_IMAGE, _STREAM_JITTER = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class SoundSignature:
    kind: str
    freq_hz: float
    rate_hz: float | None = None  # pulse rate, for pulses and tone_pulses
    band_hz: tuple[float, float] | None = None  # pass band, for noise

    @property
    def description(self) -> str:
        f = self.freq_hz
        if self.kind == "tone":
            return f"steady {f:.0f} Hz tone"
        if self.kind == "chirp_up":
            return f"chirp rising {f:.0f} to {2 * f:.0f} Hz"
        if self.kind == "chirp_down":
            return f"chirp falling {2 * f:.0f} to {f:.0f} Hz"
        if self.kind == "noise":
            lo, hi = self.band_hz
            return f"noise band {lo:.0f}-{hi:.0f} Hz"
        if self.kind == "pulses":
            return f"{2 * f:.0f} Hz beeps at {self.rate_hz:g} per second"
        return f"steady {f:.0f} Hz tone with {1.5 * f:.0f} Hz beeps at {self.rate_hz:g} per second"

    def to_json(self) -> dict:
        out = {"kind": self.kind, "freq_hz": self.freq_hz, "description": self.description}
        if self.rate_hz is not None:
            out["rate_hz"] = self.rate_hz
        if self.band_hz is not None:
            out["band_hz"] = list(self.band_hz)
        return out


@dataclass(frozen=True)
class VisualPattern:
    colour: str
    rgb: tuple[int, int, int]
    shape: str
    motion: str


@dataclass(frozen=True)
class ClassSpec:
    index: int
    label: str
    slug: str
    visual: VisualPattern
    sounds: tuple[SoundSignature, ...]

    @property
    def one_to_many(self) -> bool:
        return len(self.sounds) > 1

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "label": self.label,
            "slug": self.slug,
            "visual": asdict(self.visual) | {"rgb": list(self.visual.rgb)},
            "sounds": [s.to_json() for s in self.sounds],
            "one_to_many": self.one_to_many,
        }


@dataclass(frozen=True)
class ClipSpec:
    clip_id: str  # "{youtube_id}_{start:06d}", the file stem
    youtube_id: str
    start_seconds: int
    class_index: int
    index_in_class: int
    label: str
    split: str
    sound_variant: int  # index into the class's sounds
    gain_db: float
    pitch_factor: float
    path: Path


@dataclass
class SynthSummary:
    out_dir: Path
    csv_path: Path
    classes_json: Path
    clips_json: Path
    videos_dir: Path
    images_dir: Path
    n_clips: int
    n_train: int
    n_test: int
    n_images: int
    seconds: float
    fps: int
    audio_rate: int
    width: int
    height: int
    classes: list[ClassSpec] = field(repr=False)
    clips: list[ClipSpec] = field(repr=False)
    elapsed_s: float = 0.0


def slugify(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _class_colour(i: int) -> tuple[str, tuple[int, int, int]]:
    if i < len(PALETTE):
        return PALETTE[i]
    hue = (i * 0.6180339887) % 1.0
    r, g, b = _hsv_to_rgb(hue, 0.8, 0.9)
    return f"hue{round(hue * 360):03d}", (r, g, b)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    k = np.array([5.0, 3.0, 1.0])
    rgb = v - v * s * np.clip(np.minimum((k + h * 6) % 6, 4 - (k + h * 6) % 6), 0, 1)
    return tuple(int(round(255 * c)) for c in rgb)


def _signature(kind: str, freq: float, i: int) -> SoundSignature:
    freq = round(freq, 3)
    if kind in ("pulses", "tone_pulses"):
        return SoundSignature(kind, freq, rate_hz=float(2 + (i * 3) % 7))
    if kind == "noise":
        # A hiss sits higher than the tones; a 2/3-octave band keeps classes apart.
        centre = 4 * freq
        return SoundSignature(kind, freq, band_hz=(round(centre * 2 ** (-1 / 3), 1), round(centre * 2 ** (1 / 3), 1)))
    return SoundSignature(kind, freq)


def build_class_table(classes: int, one_to_many: int = 0) -> list[ClassSpec]:
    """The class table; class i is the same whatever the class count, so small sets are prefixes of big ones."""
    table = []
    for i in range(classes):
        colour, rgb = _class_colour(i)
        visual = VisualPattern(colour, rgb, SHAPES[i % len(SHAPES)], MOTIONS[i % len(MOTIONS)])
        kind = SOUND_KINDS[i % len(SOUND_KINDS)]
        # Stepping by a fifth over three octaves (7 is coprime with 36) spreads class pitches
        # at least a semitone (6 %) apart, twice the ±3 % per-clip jitter.
        freq = 220.0 * 2 ** (((i * 7) % 36) / 12)
        sounds = [_signature(kind, freq, i)]
        if i < one_to_many:
            # A different kind (offset 2 never lands on the same kind) a fifth higher, so the
            # second sound is unmistakably another one.
            alt_kind = SOUND_KINDS[(i + 2) % len(SOUND_KINDS)]
            sounds.append(_signature(alt_kind, freq * 1.5, i + 1))
        words = " or ".join(SOUND_WORDS[s.kind] for s in sounds)
        label = f"{colour} {visual.shape} {words}"
        table.append(ClassSpec(i, label, slugify(label), visual, tuple(sounds)))
    labels = [c.label for c in table]
    assert len(set(labels)) == len(labels), "class labels must be unique"
    return table


def _youtube_id(seed: int, class_index: int, clip_index: int) -> tuple[str, int]:
    digest = hashlib.sha256(f"v2a-synth/{seed}/{class_index}/{clip_index}".encode()).digest()
    yid = base64.urlsafe_b64encode(digest[:9]).decode()[:11]  # 9 bytes -> 12 chars of [A-Za-z0-9_-]
    start = (int.from_bytes(digest[9:11], "little") % 30) * 10  # VGGSound-like 0..290, multiple of 10
    return yid, start


# ---------------------------------------------------------------- audio


def _fade(n: int, rate: int) -> np.ndarray:
    env = np.ones(n)
    k = min(n // 2, int(FADE_S * rate))
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, k))
        env[:k] = ramp
        env[n - k:] = ramp[::-1]
    return env


def _harmonic(phase: np.ndarray, top_hz: float, rate: int) -> np.ndarray:
    # A couple of weak overtones make it sound like a thing rather than a test tone, while the
    # fundamental stays the spectral peak; an overtone that would pass Nyquist is left out, not aliased.
    x = np.sin(phase)
    for k, amp in ((2, 0.3), (3, 0.1)):
        if k * top_hz < 0.45 * rate:
            x += amp * np.sin(k * phase)
    return x


def _pulse_envelope(t: np.ndarray, rate: float, phase: float) -> np.ndarray:
    period = 1.0 / rate
    local = ((t / period + phase) % 1.0) * period
    return np.minimum(1.0, local / 0.005) * np.exp(-local / 0.06)


def synthesize_audio(sig: SoundSignature, seconds: float, rate: int, rng: np.random.Generator,
                     pitch_factor: float = 1.0) -> np.ndarray:
    """One channel of float64 audio with unit peak; the caller sets loudness."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f = sig.freq_hz * pitch_factor
    phase0 = rng.uniform(0, 2 * math.pi)
    if sig.kind == "tone":
        x = _harmonic(2 * math.pi * f * t + phase0, f, rate)
    elif sig.kind in ("chirp_up", "chirp_down"):
        # Exponential sweep over one octave across the whole clip; phase is the integral of frequency.
        f0, f1 = (f, 2 * f) if sig.kind == "chirp_up" else (2 * f, f)
        k = math.log(f1 / f0) / seconds
        x = _harmonic(2 * math.pi * f0 * np.expm1(k * t) / k + phase0, max(f0, f1), rate)
    elif sig.kind == "noise":
        lo, hi = (b * pitch_factor for b in sig.band_hz)
        if hi > 0.45 * rate:
            # Keep the band's shape, moved down under Nyquist, rather than cut it to nothing.
            lo, hi = lo * 0.45 * rate / hi, 0.45 * rate
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        # Smooth band edges (raised cosine over 10 % of the edge) avoid ringing in time.
        edge_lo, edge_hi = 0.1 * lo, 0.1 * hi
        w = np.clip(np.minimum((freqs - lo + edge_lo) / (2 * edge_lo), (hi + edge_hi - freqs) / (2 * edge_hi)), 0, 1)
        x = np.fft.irfft(spec * (0.5 - 0.5 * np.cos(math.pi * w)), n)
    elif sig.kind == "pulses":
        x = np.sin(2 * math.pi * 2 * f * t + phase0) * _pulse_envelope(t, sig.rate_hz, rng.uniform())
    elif sig.kind == "tone_pulses":
        beeps = np.sin(2 * math.pi * 1.5 * f * t) * _pulse_envelope(t, sig.rate_hz, rng.uniform())
        x = 0.6 * _harmonic(2 * math.pi * f * t + phase0, f, rate) + 0.6 * beeps
    else:
        raise ValueError(f"unknown sound kind {sig.kind!r}; accepted: {', '.join(SOUND_KINDS)}")
    x = x * _fade(n, rate)
    peak = float(np.max(np.abs(x))) if n else 0.0
    return x / peak if peak > 0 else x


# ---------------------------------------------------------------- video


@dataclass(frozen=True)
class _DrawParams:
    """Per-clip draw parameters; positions and sizes in pixels, times in seconds."""

    cx: float
    cy: float
    radius: float
    amp_x: float
    amp_y: float
    freq: float  # oscillation (horizontal/vertical/pulsing) or turns per second (rotating)
    phase: float
    angle: float
    background: int


def _draw_params(visual: VisualPattern, width: int, height: int, rng: np.random.Generator) -> _DrawParams:
    side = min(width, height)
    radius = 0.2 * side * rng.uniform(0.85, 1.15)
    amp_x = 0.22 * width if visual.motion == "horizontal" else 0.0
    amp_y = 0.15 * height if visual.motion == "vertical" else 0.0
    return _DrawParams(
        cx=width / 2 + rng.uniform(-0.05, 0.05) * width,
        cy=height / 2 + rng.uniform(-0.05, 0.05) * height,
        radius=radius,
        amp_x=amp_x,
        amp_y=amp_y,
        freq=rng.uniform(0.4, 0.6),
        phase=rng.uniform(0, 2 * math.pi),
        angle=rng.uniform(0, 2 * math.pi),
        background=BACKGROUND_GREY + int(rng.integers(-6, 7)),
    )


def _signed_distance(shape: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return np.hypot(u, v) - r
    if shape in ("square", "stripes"):
        return np.maximum(np.abs(u), np.abs(v)) - 0.85 * r
    if shape == "triangle":
        # Equilateral, circumradius r: the max over three edge half-planes at distance r/2.
        d = None
        for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
            e = u * math.cos(a) + v * math.sin(a) - r / 2
            d = e if d is None else np.maximum(d, e)
        return d
    if shape == "ring":
        return np.abs(np.hypot(u, v) - 0.75 * r) - 0.25 * r
    if shape == "cross":
        au, av_ = np.abs(u), np.abs(v)
        return np.minimum(np.maximum(au - r / 3, av_ - r), np.maximum(au - r, av_ - r / 3))
    if shape == "diamond":
        return (np.abs(u) + np.abs(v)) / math.sqrt(2) - 0.75 * r
    raise ValueError(f"unknown shape {shape!r}; accepted: {', '.join(SHAPES)}")


def _coverage(visual: VisualPattern, m: _DrawParams, t: float, width: int, height: int):
    """The object's anti-aliased coverage at time t: (y0, x0, alpha) over its bounding box, or None.

    The box starts and ends on even pixels so that it maps onto whole 2x2 chroma blocks.
    """
    w = 2 * math.pi * m.freq * t + m.phase
    cx = m.cx + m.amp_x * math.sin(w)
    cy = m.cy + m.amp_y * math.sin(w)
    r = m.radius * (1 + 0.25 * math.sin(w)) if visual.motion == "pulsing" else m.radius
    angle = m.angle + (2 * math.pi * m.freq * t if visual.motion == "rotating" else 0.0)
    # The farthest corner of any shape is under 1.25 r from its centre.
    reach = 1.25 * r + 2
    x0, x1 = max(0, int(cx - reach) // 2 * 2), min(width, (int(math.ceil(cx + reach)) + 2) // 2 * 2)
    y0, y1 = max(0, int(cy - reach) // 2 * 2), min(height, (int(math.ceil(cy + reach)) + 2) // 2 * 2)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    alpha = np.clip(0.5 - _signed_distance(visual.shape, u, v, r), 0.0, 1.0)
    if visual.shape == "stripes":
        alpha *= np.clip(0.5 + 2.0 * np.sin(2 * math.pi * u / (0.45 * r)), 0.0, 1.0)
    return y0, x0, alpha


def render_frame(visual: VisualPattern, m: _DrawParams, t: float, width: int, height: int) -> np.ndarray:
    """An (H, W, 3) uint8 RGB frame of the pattern at time t."""
    frame = np.full((height, width, 3), m.background, dtype=np.uint8)
    cov = _coverage(visual, m, t, width, height)
    if cov is not None:
        y0, x0, alpha = cov
        bg, fg = float(m.background), np.asarray(visual.rgb, dtype=np.float32)
        box = bg + alpha[..., None] * (fg - bg)
        frame[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]] = np.rint(box).astype(np.uint8)
    return frame


# ---------------------------------------------------------------- encoding

# BT.601 limited range, what decoders assume for untagged SD video.
_RGB_TO_YUV = np.array([
    [65.481, 128.553, 24.966],
    [-37.797, -74.203, 112.0],
    [112.0, -93.786, -18.214],
]) / 255.0
_YUV_OFFSET = np.array([16.0, 128.0, 128.0])


def _to_yuv(rgb) -> np.ndarray:
    return _YUV_OFFSET + _RGB_TO_YUV @ np.asarray(rgb, dtype=float)


def _yuv420p_frame(visual: VisualPattern, m: _DrawParams, t: float, width: int, height: int) -> av.VideoFrame:
    """The same picture as render_frame, composed straight into yuv420p planes.

    Doing the colour conversion here, not in swscale, keeps the bytes identical run to run
    (swscale picks SIMD paths by buffer alignment), and since a frame is background plus
    alpha * (colour - background), only the object's box needs any arithmetic.
    """
    bg, fg = _to_yuv([m.background] * 3), _to_yuv(visual.rgb)
    frame = av.VideoFrame(width, height, "yuv420p")
    views = []
    for k, plane in enumerate(frame.planes):
        view = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        view[:] = int(round(bg[k]))  # row padding too, so nothing uninitialised reaches the encoder
        views.append(view)
    cov = _coverage(visual, m, t, width, height)
    if cov is not None:
        y0, x0, alpha = cov
        # Chroma of a 2x2 block is the mean of its pixels' chroma, which is linear in alpha.
        alpha2 = 0.25 * (alpha[0::2, 0::2] + alpha[1::2, 0::2] + alpha[0::2, 1::2] + alpha[1::2, 1::2])
        for k, view in enumerate(views):
            a, oy, ox = (alpha, y0, x0) if k == 0 else (alpha2, y0 // 2, x0 // 2)
            view[oy:oy + a.shape[0], ox:ox + a.shape[1]] = np.clip(np.rint(bg[k] + a * (fg[k] - bg[k])), 0, 255)
    return frame


def _write_mp4(path: Path, frames, audio: np.ndarray, fps: int, width: int, height: int, audio_rate: int) -> None:
    tmp = path.with_name(path.name + ".part")
    # bitexact keeps library versions and timestamps out of the file, so a seed gives the same bytes.
    with av.open(str(tmp), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # Frame threading costs more than it saves on thumbnail-sized frames. With x264's macroblock
        # tree on, identical input encoded differently from run to run for about one clip in 16-24
        # (single-threaded too); with it off, 0 of 192. Flat synthetic frames do not need it.
        threads = "1" if width * height <= 320 * 240 else "0"
        video.options = {"preset": "veryfast", "crf": "20", "threads": threads, "x264-params": "mbtree=0"}
        sound = container.add_stream("aac", rate=audio_rate)
        sound.layout = "mono"
        sound.bit_rate = 128_000
        # FFmpeg's default "twoloop" AAC coder overshoots onsets by up to 80 %; "fast" stays within
        # about 6 %, which is what keeps decoded peaks under 0.9.
        sound.options = {"aac_coder": "fast"}
        for i, frame in enumerate(frames):
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        aframe = av.AudioFrame.from_ndarray(audio.astype(np.float32)[None, :], format="fltp", layout="mono")
        aframe.sample_rate = audio_rate
        aframe.pts = 0
        container.mux(sound.encode(aframe))
        container.mux(sound.encode())
    os.replace(tmp, path)


def _make_clip(spec: ClassSpec, clip: ClipSpec, seed: int, seconds: float, fps: int,
               width: int, height: int, audio_rate: int) -> None:
    rng = np.random.default_rng([seed, _STREAM_CLIP, spec.index, clip.index_in_class])
    # Draw parameters first, audio second: a fixed order keeps each clip reproducible.
    motion = _draw_params(spec.visual, width, height, rng)
    audio = synthesize_audio(spec.sounds[clip.sound_variant], seconds, audio_rate, rng, clip.pitch_factor)
    audio *= BASE_LEVEL * 10 ** (clip.gain_db / 20)
    n_frames = max(1, int(round(seconds * fps)))
    frames = (_yuv420p_frame(spec.visual, motion, i / fps, width, height) for i in range(n_frames))
    _write_mp4(clip.path, frames, audio, fps, width, height, audio_rate)


# ---------------------------------------------------------------- the dataset


def _validate(classes, clips_per_class, seconds, seed, one_to_many, test_fraction, images_per_class,
              width, height, fps, audio_rate) -> None:
    def need(ok: bool, name: str, value, accepted: str) -> None:
        if not ok:
            raise ValueError(f"{name}={value!r} is invalid; accepted: {accepted}")

    def is_int(x) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    need(is_int(classes) and classes >= 1, "classes", classes, "an integer >= 1")
    need(is_int(clips_per_class) and clips_per_class >= 2, "clips_per_class", clips_per_class,
         "an integer >= 2 (each class needs a train and a test clip)")
    need(isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
         and seconds > 0, "seconds", seconds, "a number > 0")
    need(is_int(seed) and seed >= 0, "seed", seed, "an integer >= 0")
    need(is_int(one_to_many) and 0 <= one_to_many <= (classes if is_int(classes) else 0), "one_to_many",
         one_to_many, f"an integer from 0 to classes ({classes})")
    need(isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1, "test_fraction", test_fraction,
         "a number strictly between 0 and 1")
    need(is_int(images_per_class) and images_per_class >= 0, "images_per_class", images_per_class,
         "an integer >= 0")
    # yuv420p halves chroma resolution, so H.264 needs even sides.
    need(is_int(width) and width >= 16 and width % 2 == 0, "width", width, "an even integer >= 16")
    need(is_int(height) and height >= 16 and height % 2 == 0, "height", height, "an even integer >= 16")
    need(is_int(fps) and 1 <= fps <= 120, "fps", fps, "an integer from 1 to 120")
    # 16 kHz (AudioLDM's rate) keeps every class's loudest partial, up to about 5.2 kHz, below Nyquist.
    need(is_int(audio_rate) and DECODE_SAMPLE_RATE <= audio_rate <= 96000, "audio_rate", audio_rate,
         f"an integer sample rate from {DECODE_SAMPLE_RATE} to 96000")


def _plan_clips(table: list[ClassSpec], clips_per_class: int, seed: int, test_fraction: float,
                videos_dir: Path) -> list[ClipSpec]:
    n_test = min(clips_per_class - 1, max(1, round(test_fraction * clips_per_class)))
    plan = []
    for spec in table:
        test_idx = set(np.random.default_rng([seed, _STREAM_SPLIT, spec.index])
                       .permutation(clips_per_class)[:n_test].tolist())
        if spec.one_to_many:
            # Balanced, shuffled variants: each clip's sound is random yet both are always present.
            variants = np.random.default_rng([seed, _STREAM_VARIANT, spec.index]).permutation(
                np.arange(clips_per_class) % len(spec.sounds)).tolist()
        else:
            variants = [0] * clips_per_class
        for j in range(clips_per_class):
            jitter = np.random.default_rng([seed, _STREAM_JITTER, spec.index, j])
            yid, start = _youtube_id(seed, spec.index, j)
            clip_id = f"{yid}_{start:06d}"
            plan.append(ClipSpec(
                clip_id=clip_id,
                youtube_id=yid,
                start_seconds=start,
                class_index=spec.index,
                index_in_class=j,
                label=spec.label,
                split="test" if j in test_idx else "train",
                sound_variant=int(variants[j]),
                gain_db=round(float(jitter.uniform(-GAIN_DB, GAIN_DB)), 3),
                pitch_factor=round(float(jitter.uniform(1 - PITCH_JITTER, 1 + PITCH_JITTER)), 5),
                path=videos_dir / f"{clip_id}.mp4",
            ))
    ids = [c.clip_id for c in plan]
    if len(set(ids)) != len(ids):
        raise RuntimeError("youtube id collision; change the seed")
    return plan


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(rgb, "RGB").save(path, format="PNG")


def make_synthetic_dataset(
    out_dir: str | os.PathLike,
    classes: int = 6,
    clips_per_class: int = 8,
    seconds: float = 2.0,
    seed: int = 0,
    one_to_many: int = 0,
    test_fraction: float = 0.25,
    images_per_class: int = 3,
    width: int = 160,
    height: int = 120,
    fps: int = 10,
    audio_rate: int = 44100,
    progress: bool = True,
) -> SynthSummary:
    """Write a VGGSound-shaped synthetic dataset under out_dir and describe it.

    Files already in out_dir are overwritten, never deleted: use a fresh folder per configuration.
    """
    _validate(classes, clips_per_class, seconds, seed, one_to_many, test_fraction, images_per_class,
              width, height, fps, audio_rate)
    began = time.perf_counter()
    seconds = float(seconds)
    out = Path(out_dir)
    videos_dir, images_dir = out / "videos", out / "images"
    videos_dir.mkdir(parents=True, exist_ok=True)
    images_dir.mkdir(parents=True, exist_ok=True)

    table = build_class_table(classes, one_to_many)
    plan = _plan_clips(table, clips_per_class, seed, test_fraction, videos_dir)

    for clip in tqdm(plan, desc="synth clips", unit="clip", disable=not progress):
        _make_clip(table[clip.class_index], clip, seed, seconds, fps, width, height, audio_rate)

    n_images = 0
    for spec in table:
        folder = images_dir / spec.slug
        folder.mkdir(exist_ok=True)
        for n in range(images_per_class):
            rng = np.random.default_rng([seed, _STREAM_IMAGE, spec.index, n])
            m = _draw_params(spec.visual, width, height, rng)
            _save_png(folder / f"{n}.png", render_frame(spec.visual, m, float(rng.uniform(0, seconds)), width, height))
            n_images += 1

    csv_path = out / "vggsound.csv"
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")  # VGGSound's csv has no header row
    for clip in plan:
        writer.writerow([clip.youtube_id, clip.start_seconds, clip.label, clip.split])
    _write_text(csv_path, rows.getvalue())

    params = {
        "classes": classes, "clips_per_class": clips_per_class, "seconds": seconds, "seed": seed,
        "one_to_many": one_to_many, "test_fraction": test_fraction, "images_per_class": images_per_class,
        "width": width, "height": height, "fps": fps, "audio_rate": audio_rate,
        "audio_channels": 1, "video_codec": "h264", "audio_codec": "aac", "pix_fmt": "yuv420p",
        "gain_jitter_db": GAIN_DB, "pitch_jitter": PITCH_JITTER, "base_level": BASE_LEVEL,
    }
    classes_json = out / "classes.json"
    _write_text(classes_json, json.dumps({
        "generator": "v2a.synth", "version": GENERATOR_VERSION, "params": params,
        "classes": [c.to_json() for c in table],
    }, indent=2) + "\n")

    clips_json = out / "clips.json"
    _write_text(clips_json, json.dumps({
        c.clip_id: {
            "label": c.label, "class_index": c.class_index, "split": c.split,
            "sound_variant": c.sound_variant, "sound_kind": table[c.class_index].sounds[c.sound_variant].kind,
            "youtube_id": c.youtube_id, "start_seconds": c.start_seconds,
            "gain_db": c.gain_db, "pitch_factor": c.pitch_factor,
        } for c in plan
    }, indent=2) + "\n")

    n_test = sum(c.split == "test" for c in plan)
    return SynthSummary(
        out_dir=out, csv_path=csv_path, classes_json=classes_json, clips_json=clips_json,
        videos_dir=videos_dir, images_dir=images_dir, n_clips=len(plan), n_train=len(plan) - n_test,
        n_test=n_test, n_images=n_images, seconds=seconds, fps=fps, audio_rate=audio_rate,
        width=width, height=height, classes=table, clips=plan, elapsed_s=time.perf_counter() - began,
    )

