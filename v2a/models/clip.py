"""Frozen CLIP image (and text) encoder, built with open_clip.

The paper uses CLIP ViT-B/32 with OpenAI weights (512-d). Frames go through CLIP's own
evaluation preprocessing: resize the shortest side to the model's input size (bicubic),
center crop, OpenAI mean/std normalisation.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from ._common import (count_params, hub_cached, provenance_id, require_file, resolve_device, resolve_dtype,
                      seeded)
from .profile import CheckpointNotFoundError, ClipConfig, hub_offline, looks_like_path, parse_section

log = logging.getLogger(__name__)


class ClipFramePreprocessor:
    """CLIP's evaluation transform over a stack of frames (PIL resize + crop, OpenAI normalisation).

    ``pack`` runs the PIL part only (resize, crop) and returns uint8 crops: a quarter of the bytes of
    float pixels to pass from a decode worker, and the normalisation (``normalize``, bit for bit
    torchvision's ToTensor + Normalize) can then run on the model's device. A transform of another
    shape is packed as float pixels instead.
    """

    def __init__(self, transform):
        self.transform = transform
        steps = list(getattr(transform, "transforms", []))
        names = [type(t).__name__ for t in steps]
        self.splits = len(steps) >= 2 and names[-1] == "Normalize" and names[-2].endswith("ToTensor")
        if self.splits:
            from torchvision.transforms import Compose

            self.geometry = Compose(steps[:-2])
            self.mean = tuple(float(m) for m in steps[-1].mean)
            self.std = tuple(float(s) for s in steps[-1].std)

    @staticmethod
    def _check(frames) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames: expected (N, H, W, 3) RGB, got shape {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"frames: expected uint8 pixels, got {frames.dtype}")
        return frames

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) RGB → (N, 3, S, S) float32 normalised pixels."""
        frames = self._check(frames)
        return torch.stack([self.transform(Image.fromarray(f)) for f in frames])

    def pack(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) frames → uint8 (N, S, S, 3) crops (or float32 (N, 3, S, S) pixels)."""
        frames = self._check(frames)
        if not self.splits:
            return self(frames).numpy()
        return np.stack([np.asarray(self.geometry(Image.fromarray(f)), dtype=np.uint8) for f in frames])

    def normalize(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 (N, S, S, 3) crops (any device) → (N, 3, S, S) float32 pixels, as ToTensor + Normalize."""
        pixels = crops.permute(0, 3, 1, 2).float().div(255)
        mean = torch.tensor(self.mean, device=pixels.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(1, -1, 1, 1)
        return (pixels - mean) / std


class ClipImageEncoder:
    """CLIP image tower (plus its text tower) returning L2-normalised float32 embeddings."""

    def __init__(self, model, tokenizer, preprocess, model_id: str, device: torch.device, dtype: torch.dtype):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self._frame_preprocessor = None
        self.model_id = model_id
        self.device = device
        self.dtype = dtype
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.embed_dim = int(model.visual.output_dim)

    @property
    def num_params(self) -> int:
        return count_params(self.model)

    @property
    def frame_preprocessor(self) -> "ClipFramePreprocessor":
        """``preprocess_frames`` as a small picklable object, for decode workers in other processes."""
        if self._frame_preprocessor is None:
            self._frame_preprocessor = ClipFramePreprocessor(self.preprocess)
        return self._frame_preprocessor

    def preprocess_frames(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) RGB → (N, 3, S, S) float32 normalised pixels."""
        return self.frame_preprocessor(frames)

    @torch.inference_mode()
    def encode_images(self, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB frames → (N, D) float32 L2-normalised image embeddings."""
        frames = np.asarray(frames)
        if len(frames) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        out = [self.encode_pixels(self.preprocess_frames(frames[start:start + batch_size]))
               for start in range(0, len(frames), batch_size)]
        return np.concatenate(out)

    @torch.inference_mode()
    def encode_packed(self, packed: np.ndarray) -> np.ndarray:
        """Output of ``frame_preprocessor.pack`` → (N, D) float32 L2-normalised embeddings. uint8
        crops go to the device as they are (a quarter of the bytes) and are normalised there."""
        if packed.dtype != np.uint8:
            return self.encode_pixels(torch.from_numpy(packed))
        prep = self.frame_preprocessor
        crops = torch.from_numpy(np.ascontiguousarray(packed)).to(self.device, non_blocking=True)
        return self.encode_pixels(prep.normalize(crops))

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Already preprocessed (N, 3, S, S) pixels → (N, D) float32 L2-normalised embeddings.

        Lets a pipeline run ``preprocess_frames`` in its decode workers and keep the model busy.
        Pixels are cast to the model's dtype (float16 on CUDA with dtype auto)."""
        if len(pixels) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        feats = self.model.encode_image(pixels.to(self.device, self.dtype, non_blocking=True))
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N,) strings → (N, D) float32 L2-normalised text embeddings (open_clip's BPE tokenizer)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        tokens = self.tokenizer(texts).to(self.device)
        feats = self.model.encode_text(tokens)
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()


def _openai_pretrained_file(model_id: str, tag: str) -> tuple[str | None, dict]:
    """Locate an open_clip pretrained tag's weights in the local hub cache (no network)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_id, tag) or {}
    hub = cfg.get("hf_hub", "")
    if hub:
        parts = hub.strip("/").split("/")
        repo_id, rest = "/".join(parts[:2]), "/".join(parts[2:])
        names = [rest] if rest else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            found = hub_cached(repo_id, name)
            if found:
                return found, cfg
    return None, cfg


def build_clip(section: dict | ClipConfig, device=None) -> ClipImageEncoder:
    """Build the profile's CLIP: random init from an architecture, an open_clip tag, or a local file."""
    import open_clip

    if not section:
        raise ValueError("clip section of the profile is empty")
    cfg = parse_section("clip", section)
    dev = resolve_device(device, cfg.device)
    dtype = resolve_dtype(cfg.dtype, dev)

    checkpoint = None
    quick_gelu = cfg.quick_gelu
    if cfg.weights is not None:
        if looks_like_path(cfg.weights):
            checkpoint = str(require_file(cfg.weights, "clip.weights"))
        elif cfg.arch is not None:
            raise ValueError("clip.weights: a pretrained tag needs a registered open_clip model_id, "
                             "not a custom `arch`; give a local checkpoint path instead")
        else:
            tags = open_clip.list_pretrained_tags_by_model(cfg.model_id)
            if cfg.weights not in tags:
                raise ValueError(f"clip.weights: {cfg.weights!r} is not an open_clip tag of {cfg.model_id}; "
                                 f"accepted: {tags} or a local checkpoint path")
            cached, pcfg = _openai_pretrained_file(cfg.model_id, cfg.weights)
            quick_gelu = quick_gelu or bool(pcfg.get("quick_gelu", False))
            if cached:
                checkpoint = cached
            elif hub_offline():
                raise CheckpointNotFoundError(
                    "clip.weights", f"open_clip {cfg.model_id}/{cfg.weights}",
                    f"HF_HUB_OFFLINE is set and {pcfg.get('hf_hub', 'its weights')} is not in the local hub cache")

    with seeded(cfg.seed):
        if cfg.arch is not None:
            model = open_clip.CLIP(**cfg.arch, quick_gelu=quick_gelu)
            ctx = int(cfg.arch["text_cfg"].get("context_length", 77))
            tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=ctx)
        elif cfg.weights is not None and checkpoint is None:
            # online, not cached: open_clip downloads the tagged weights from the hub
            model = open_clip.create_model(cfg.model_id, pretrained=cfg.weights, force_quick_gelu=quick_gelu)
            tokenizer = open_clip.get_tokenizer(cfg.model_id)
        else:
            model = open_clip.create_model(cfg.model_id, pretrained=None, force_quick_gelu=quick_gelu)
            tokenizer = open_clip.get_tokenizer(cfg.model_id)
    if checkpoint is not None:
        open_clip.load_checkpoint(model, checkpoint, strict=True, weights_only=True)
        log.info("CLIP %s: loaded %s", cfg.model_id, checkpoint)

    size = model.visual.image_size
    preprocess = open_clip.image_transform(size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                           std=open_clip.OPENAI_DATASET_STD, resize_mode="shortest",
                                           interpolation="bicubic")
    model = model.to(dev, dtype)
    return ClipImageEncoder(model, tokenizer, preprocess, provenance_id(cfg.model_id, cfg.weights, cfg.seed), dev, dtype)
