"""A folder of awkward inputs, each made for real (PyAV, PIL, soundfile) and small enough to build in seconds.

``CASES`` maps a file name to what the embed stage must make of it: ``("row", audio)`` — a row with
finite embeddings, with (True) or without (False) an audio embedding — or ``("error", words)`` — an
errors row whose reason contains ``words``.
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image

ROW_WITH_AUDIO, ROW_WITHOUT_AUDIO = ("row", True), ("row", False)


def write_video(path: Path, seconds: float = 1.0, fps=10, size=(64, 48), codec: str = "libx264",
                pix_fmt: str = "yuv420p", audio_rate: int | None = 16000, layout: str = "mono",
                audio_codec: str = "aac", sound=None, frames: int | None = None) -> Path:
    """A moving gradient (and, when ``audio_rate`` is set, a tone or ``sound(t)``) in any container."""
    w, h = size
    rate = Fraction(fps).limit_denominator(1001)
    n = frames if frames is not None else max(1, int(round(seconds * float(rate))))
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        ast = None
        if audio_rate:
            ast = out.add_stream(audio_codec, rate=audio_rate, layout=layout)
        ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :]
        for i in range(n):
            img = np.broadcast_to((ramp + 25 * i) % 256, (h, w)).astype(np.uint8)
            rgb = np.stack([img, np.roll(img, i, axis=1), 255 - img], axis=-1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in vs.encode(frame.reformat(format=pix_fmt)):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if ast is not None:
            total = int(n / float(rate) * audio_rate)
            t = np.arange(total) / audio_rate
            mono = sound(t) if sound is not None else 0.3 * np.sin(2 * np.pi * 440 * t)
            channels = av.AudioLayout(layout).nb_channels
            # sound(t) may give one row per channel; a single row is copied to every channel
            data = (mono.astype(np.float32) if mono.ndim == 2 else np.repeat(mono[None].astype(np.float32), channels,
                                                                              axis=0))
            fmt = "fltp" if audio_codec in ("aac",) else "s16p" if audio_codec == "flac" else "s16"
            step = 1024
            for start in range(0, total, step):
                chunk = data[:, start:start + step]
                if fmt.startswith("s16"):
                    chunk = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
                    if fmt == "s16":
                        chunk = chunk.T.reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout=layout)
                frame.sample_rate = audio_rate
                frame.pts = start
                for packet in ast.encode(frame):
                    out.mux(packet)
            for packet in ast.encode():
                out.mux(packet)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels: what a decompression bomb looks like to a reader."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    body = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _image(path: Path, mode: str, size=(40, 30), **save) -> Path:
    grad = np.linspace(0, 1, size[0] * size[1]).reshape(size[1], size[0])
    if mode == "I;16":
        img = Image.fromarray((grad * 65535).astype(np.uint16))
    elif mode == "P":
        img = Image.fromarray((grad * 255).astype(np.uint8)).convert("RGB").quantize(16)
    else:
        rgb = Image.fromarray((np.stack([grad, grad[::-1], 1 - grad], -1) * 255).astype(np.uint8))
        img = rgb.convert(mode)
    img.save(path, **save)
    return path


def _truncated(src: Path, dst: Path, fraction: float = 0.6) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _wav(path: Path) -> Path:
    sf.write(path, 0.3 * np.sin(np.arange(8000) / 5.0).astype(np.float32), 16000)
    return path


def _clipped(t: np.ndarray) -> np.ndarray:
    return np.clip(3.0 * np.sin(2 * np.pi * 220 * t), -1.0, 1.0)


# name -> (builder(folder) -> path, expected outcome)
CASES = {
    "zero_bytes.mp4": (lambda d: _write(d / "zero_bytes.mp4", b""),
                       ("error", "empty")),
    "truncated.mp4": (lambda d: _truncated(write_video(d / "whole.mp4", seconds=2.0), d / "truncated.mp4"),
                      ("error", "truncated")),
    "not_media.mp4": (lambda d: _write(d / "not_media.mp4", b"id,label\n1,dog\n" * 50),
                      ("error", "not a readable media file")),
    "not_an_image.png": (lambda d: _write(d / "not_an_image.png", b"hello"),
                         ("error", "not a readable image")),
    "no_audio.mp4": (lambda d: write_video(d / "no_audio.mp4", audio_rate=None), ROW_WITHOUT_AUDIO),
    "audio_only.wav": (lambda d: _wav(d / "audio_only.wav"), ("error", "no video stream")),
    "short_0.3s.mp4": (lambda d: write_video(d / "short_0.3s.mp4", seconds=0.3), ROW_WITH_AUDIO),
    "long_12s.mp4": (lambda d: write_video(d / "long_12s.mp4", seconds=12.0, fps=2, size=(32, 32)), ROW_WITH_AUDIO),
    "fps_29.97.mp4": (lambda d: write_video(d / "fps_29.97.mp4", fps=Fraction(30000, 1001)), ROW_WITH_AUDIO),
    "fps_1.mp4": (lambda d: write_video(d / "fps_1.mp4", seconds=3.0, fps=1), ROW_WITH_AUDIO),
    "fps_120.mp4": (lambda d: write_video(d / "fps_120.mp4", seconds=0.5, fps=120, size=(32, 32)), ROW_WITH_AUDIO),
    "vertical.mp4": (lambda d: write_video(d / "vertical.mp4", size=(48, 96)), ROW_WITH_AUDIO),
    "tiny_2x2.mp4": (lambda d: write_video(d / "tiny_2x2.mp4", size=(2, 2)), ROW_WITH_AUDIO),
    "tiny_1x1.mkv": (lambda d: write_video(d / "tiny_1x1.mkv", size=(1, 1), codec="ffv1", pix_fmt="yuv444p",
                                           audio_codec="flac"), ROW_WITH_AUDIO),
    "uhd_4k.mp4": (lambda d: write_video(d / "uhd_4k.mp4", size=(3840, 2160), frames=2, fps=10), ROW_WITH_AUDIO),
    "grayscale.mkv": (lambda d: write_video(d / "grayscale.mkv", codec="ffv1", pix_fmt="gray", audio_codec="flac"),
                      ROW_WITH_AUDIO),
    "mpeg4_odd_size.avi": (lambda d: write_video(d / "mpeg4_odd_size.avi", size=(33, 17), codec="mpeg4",
                                                 audio_codec="pcm_s16le"), ROW_WITH_AUDIO),
    "audio_8k.mp4": (lambda d: write_video(d / "audio_8k.mp4", audio_rate=8000), ROW_WITH_AUDIO),
    "audio_22k.mp4": (lambda d: write_video(d / "audio_22k.mp4", audio_rate=22050), ROW_WITH_AUDIO),
    "audio_44k.mp4": (lambda d: write_video(d / "audio_44k.mp4", audio_rate=44100), ROW_WITH_AUDIO),
    "audio_48k.mp4": (lambda d: write_video(d / "audio_48k.mp4", audio_rate=48000), ROW_WITH_AUDIO),
    "audio_96k.mkv": (lambda d: write_video(d / "audio_96k.mkv", audio_rate=96000, audio_codec="flac"),
                      ROW_WITH_AUDIO),
    "stereo.mp4": (lambda d: write_video(d / "stereo.mp4", layout="stereo"), ROW_WITH_AUDIO),
    "surround_5.1.mp4": (lambda d: write_video(d / "surround_5.1.mp4", layout="5.1", audio_rate=48000),
                         ROW_WITH_AUDIO),
    "silence.mp4": (lambda d: write_video(d / "silence.mp4", sound=np.zeros_like), ROW_WITH_AUDIO),
    "clipped.mp4": (lambda d: write_video(d / "clipped.mp4", sound=_clipped), ROW_WITH_AUDIO),
    "palette.png": (lambda d: _image(d / "palette.png", "P"), ROW_WITHOUT_AUDIO),
    "gray16.png": (lambda d: _image(d / "gray16.png", "I;16"), ROW_WITHOUT_AUDIO),
    "alpha.png": (lambda d: _image(d / "alpha.png", "RGBA"), ROW_WITHOUT_AUDIO),
    "gray_alpha.png": (lambda d: _image(d / "gray_alpha.png", "LA"), ROW_WITHOUT_AUDIO),
    "cmyk.jpg": (lambda d: _image(d / "cmyk.jpg", "CMYK"), ROW_WITHOUT_AUDIO),
    "decompression_bomb.png": (lambda d: _png_header_only(d / "decompression_bomb.png", 20000, 20000),
                               ("error", "decompression bomb")),
    "bomb_warning_size.png": (lambda d: _png_header_only(d / "bomb_warning_size.png", 10000, 10000),
                              ("error", "decompression bomb")),
}


def build(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {name: Path(make(folder)) for name, (make, _) in CASES.items()}
