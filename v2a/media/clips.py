"""Decoding of videos and images into sampled RGB frames and 16 kHz mono audio.

Videos go through a decoder backend (``v2a.media.decoders``: PyAV, decord or torchcodec) that picks the
frames while decoding (never the whole video in memory), evenly spaced over the clip by count
(``num_frames``) or by rate (``frame_rate``).
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageOps

from v2a.core.rates import DECODE_SAMPLE_RATE
from v2a.core import storage
from v2a.media.decoders import CLAP_SECONDS, DecodedClip, MediaError, Sampling, decode

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")

__all__ = ["CLAP_SECONDS", "DecodedClip", "MediaError", "is_image", "read_clip", "read_image", "read_video"]


def is_image(uri: str) -> bool:
    return str(uri).lower().endswith(IMAGE_EXTENSIONS)


def _open(uri: str):
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise MediaError(f"file not found: {uri}")
    if fs.size(path) == 0:
        raise MediaError("file is empty (0 bytes)")
    return fs.open(path, "rb")


def _too_many_pixels(err: BaseException) -> MediaError:
    size = str(err).split("(", 1)[-1].split(" pixels", 1)[0]
    size = f"{int(size):,}" if size.isdigit() else "too many"
    return MediaError(f"image refused as a possible decompression bomb: it claims {size} pixels, over the "
                      f"{Image.MAX_IMAGE_PIXELS:,}-pixel limit (PIL.Image.MAX_IMAGE_PIXELS)")


def read_image(uri: str) -> DecodedClip:
    """The image as one RGB frame, upright. Palette, 16-bit, alpha and CMYK images are converted; an EXIF
    orientation (how a camera says its pixels are turned) is applied as a viewer applies it; an image over
    PIL's pixel limit is refused before it is decoded, since a few kilobytes of PNG can claim gigabytes."""
    with _open(uri) as handle:
        try:
            with warnings.catch_warnings():
                # PIL only warns between its limit and twice it; a worker would still decode it
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(handle)
                img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _too_many_pixels(err) from err
        except Image.UnidentifiedImageError as err:
            raise MediaError("not a readable image: its content is not an image format PIL knows") from err
        except Exception as err:  # PIL raises many kinds for bad files
            raise MediaError(f"not a readable image: {err}") from err
        rgb = _to_rgb(_exif_upright(img))
    return DecodedClip(rgb[None], np.zeros(1, np.float32), None, DECODE_SAMPLE_RATE, 0.0)


def _exif_upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # an unreadable EXIF block says nothing reliable about orientation: keep the pixels as stored
        return img


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # convert("RGB") clips 16-bit values at 255 (a white image); scale to 8 bits instead
        wide = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") else max(float(wide.max()), 1.0)
        gray = np.clip(wide / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_video(uri: str, num_frames: int = 10, sample_rate: int = DECODE_SAMPLE_RATE, max_seconds: float | None = None,
               frame_rate: float | None = None, backend: str | None = "auto", audio: bool = True,
               threads: int = 0, channels: str = "mean") -> DecodedClip:
    """Frames evenly spaced over the first ``max_seconds`` (``num_frames`` of them, or ``frame_rate``
    per second when given) and the audio as mono float32 at ``sample_rate`` over the first ``max_seconds``;
    without ``max_seconds`` the frames span the whole video but the audio stops at ``CLAP_SECONDS``."""
    sampling = Sampling(num_frames=num_frames, frame_rate=frame_rate, sample_rate=sample_rate,
                        max_seconds=max_seconds, audio=audio, threads=threads, channels=channels)
    return decode(uri, sampling, backend)


def read_clip(uri: str, num_frames: int = 10, sample_rate: int = DECODE_SAMPLE_RATE, max_seconds: float | None = None,
              frame_rate: float | None = None, backend: str | None = "auto", audio: bool = True,
              threads: int = 0, channels: str = "mean") -> DecodedClip:
    if is_image(uri):
        return read_image(uri)
    return read_video(uri, num_frames=num_frames, sample_rate=sample_rate, max_seconds=max_seconds,
                      frame_rate=frame_rate, backend=backend, audio=audio, threads=threads, channels=channels)
