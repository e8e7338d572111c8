"""Frozen CLAP: the audio-text model whose audio embedding is the mapper's target.

The network is LAION-CLAP's, in the key layout of both the LAION checkpoints and the
``cond_stage_model.model.*`` entries of AudioLDM's original checkpoints: an HTS-AT audio
branch (laion_clap's ``HTSAT_Swin_Transformer``, its own log-mel front end at 48 kHz), a RoBERTa
text branch (transformers ``RobertaModel`` built from a ``RobertaConfig``, so nothing is fetched
from the hub), two-layer projections into the joint space and the (training-only) MLP
transforms. Sizes come from the profile, so the ``tiny`` profile is the same family, smaller.

Audio preprocessing (``clap.audio.padding``, ``clap.audio.channel``, ``clap.audio.duration`` in a
profile) is AudioLDM's own audio path by default (``padding: audioldm``; haoheliu/AudioLDM,
``audioldm/audio/tools.py:read_wav_file`` and ``audioldm/clap/encoders.py``): keep the first
channel, resample to 16 kHz, remove the mean, scale to 0.5 * x / max|x|, zero-pad to
``int(duration * 102.4) * 160`` samples (163,840 = 10.24 s for the default 10 s), scale to
0.5 * x / max|x| again, resample to 48 kHz and take the first 480,000 samples (AudioLDM's CLAP
takes a random 480,000-sample window of the 491,520; ours is the first, so it is deterministic).
Silence, where AudioLDM divides 0 by 0 and gets NaN, stays all zeros here: a finite embedding.
``padding: repeat`` is laion_clap's ``get_audio_embedding_from_data`` instead: after the same first
normalisation, resample to 48 kHz and repeat short audio whole times, zero-filling the remainder
(``repeatpad``), no second normalisation. For a 3-s clip the two differ about as much as two
unrelated clips do under random weights (docs/deviations.md has the sizes).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._common import (count_params, hub_cached, load_state_dict_file, local_path, provenance_id, require_file,
                      resolve_device, resolve_dtype, seeded)
from .profile import CheckpointNotFoundError, ClapConfig, hub_offline, looks_like_path, parse_section

from v2a.core.rates import AUDIOLDM_SAMPLE_RATE, CLAP_MODEL_SAMPLE_RATE, CLAP_SECONDS

log = logging.getLogger(__name__)


# HTS-AT "tiny" as laion_clap's create_htsat_model + model_configs/HTSAT-tiny.json build it.
HTSAT_TINY = dict(
    sample_rate=CLAP_MODEL_SAMPLE_RATE, clip_samples=int(CLAP_SECONDS * CLAP_MODEL_SAMPLE_RATE), window_size=1024, hop_size=480, mel_bins=64, fmin=50,
    fmax=14000, class_num=527, spec_size=256, patch_size=4, patch_stride=[4, 4], embed_dim=96,
    depths=[2, 2, 6, 2], num_heads=[4, 8, 16, 32], swin_window=8,
)
# roberta-base, the text branch of LAION-CLAP and of AudioLDM's CLAP.
ROBERTA_BASE = dict(
    vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
    eos_token_id=2,
)


# --------------------------------------------------------------------------- laion_clap import

@contextlib.contextmanager
def _hub_forced_offline():
    """laion_clap loads three tokenizers from the hub at import time and never uses them here.

    Force huggingface_hub offline for the import so that a machine without network access does not
    sit through minutes of download retries (it then gets empty tokenizers, which we do not use).
    """
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:  # pragma: no cover
        yield
        return
    before = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = before


def laion_htsat():
    """laion_clap's HTSAT audio tower classes (its import reaches for the hub and prints: both kept quiet)."""
    with _hub_forced_offline(), contextlib.redirect_stdout(None):
        htsat = importlib.import_module("laion_clap.clap_module.htsat")
        model = importlib.import_module("laion_clap.clap_module.model")
    return htsat.HTSAT_Swin_Transformer, model.CLAPAudioCfp, model.MLPLayers


# --------------------------------------------------------------------------- tokenizers

class ByteTokenizer:
    """Deterministic offline tokenizer: UTF-8 bytes → ids, RoBERTa's special ids (bos 0, pad 1, eos 2).

    Used with random-weight text towers (profiles ``tiny`` and ``paper-arch``), where no real
    vocabulary exists; the text tower itself is a real transformer. Needs a vocabulary of >= 259.
    """

    bos_id, pad_id, eos_id, offset = 0, 1, 2, 3
    vocab_size = 259

    def __init__(self, max_length: int = 77):
        self.max_length = int(max_length)

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids = torch.full((len(texts), self.max_length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), self.max_length), dtype=torch.long)
        for i, text in enumerate(texts):
            body = [b + self.offset for b in str(text).encode("utf-8")][: self.max_length - 2]
            row = [self.bos_id, *body, self.eos_id]
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class HFTokenizer:
    """A transformers tokenizer padded to ``max_length`` (what LAION-CLAP/AudioLDM do)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def load_tokenizer(ref: str, max_length: int, field: str, vocab_size: int | None = None, subfolder: str = ""):
    """'bytes' → ByteTokenizer; otherwise a transformers tokenizer from a local dir or the hub.

    transformers 5 hands back an *empty* tokenizer (vocab 5) when files are missing, so the
    vocabulary size is checked; offline, a hub id must already be cached.
    """
    if ref == "bytes":
        if vocab_size is not None and vocab_size < ByteTokenizer.vocab_size:
            raise ValueError(f"{field}: the byte tokenizer needs a text vocabulary >= {ByteTokenizer.vocab_size}, "
                             f"the model has {vocab_size}")
        return ByteTokenizer(max_length)
    from transformers import AutoTokenizer

    kwargs = {"subfolder": subfolder} if subfolder else {}
    if looks_like_path(ref):
        require_file(ref, field)
        tok = AutoTokenizer.from_pretrained(str(local_path(ref)), **kwargs)
    else:
        probe = f"{subfolder}/tokenizer_config.json" if subfolder else "tokenizer_config.json"
        if hub_offline() and hub_cached(ref, probe) is None:
            raise CheckpointNotFoundError(field, ref, "HF_HUB_OFFLINE is set and the tokenizer is not cached")
        tok = AutoTokenizer.from_pretrained(ref, local_files_only=hub_offline(), **kwargs)
    if len(tok) < 256:  # an empty transformers-5 tokenizer has 5 entries; byte-level BPE has >= 256
        raise RuntimeError(f"{field}: tokenizer {ref!r} loaded with only {len(tok)} tokens (missing vocab files?)")
    if vocab_size is not None and len(tok) > vocab_size:
        raise RuntimeError(f"{field}: tokenizer {ref!r} has {len(tok)} tokens, the text tower only {vocab_size}")
    return HFTokenizer(tok, max_length)


# --------------------------------------------------------------------------- network

def _outside_autocast(module: nn.Module) -> None:
    """Run a module in its own weights' dtype even under autocast (the instance's forward is
    wrapped, so state-dict keys do not change). Used for the STFT and log-mel: power spectra span
    more range and digits than a bfloat16 STFT keeps, and they cost little next to the Swin body."""
    inner = module.forward

    def forward(x, *args, **kwargs):
        dtype = next(module.parameters()).dtype
        with torch.autocast(x.device.type, enabled=False):
            return inner(x.to(dtype), *args, **kwargs)

    module.forward = forward


class ClapNetwork(nn.Module):
    """LAION-CLAP with an HTS-AT audio branch and a RoBERTa text branch (laion key names)."""

    def __init__(self, embed_dim: int, audio: dict, text: dict):
        super().__init__()
        from transformers import RobertaConfig, RobertaModel

        HTSAT, AudioCfg, MLPLayers = laion_htsat()
        a = {**HTSAT_TINY, **audio}
        unknown = sorted(set(a) - set(HTSAT_TINY))
        if unknown:
            raise ValueError(f"clap.audio: unknown field(s) {unknown}; "
                             f"accepted: {sorted([*HTSAT_TINY, *AUDIO_PREPROCESSING])}")
        self.audio_cfg = a
        front_end = AudioCfg(model_type="HTSAT", model_name="tiny", sample_rate=a["sample_rate"],
                             audio_length=1024, window_size=a["window_size"], hop_size=a["hop_size"],
                             fmin=a["fmin"], fmax=a["fmax"], class_num=a["class_num"], mel_bins=a["mel_bins"],
                             clip_samples=a["clip_samples"])
        self.audio_branch = HTSAT(
            spec_size=a["spec_size"], patch_size=a["patch_size"], patch_stride=tuple(a["patch_stride"]),
            num_classes=a["class_num"], embed_dim=a["embed_dim"], depths=list(a["depths"]),
            num_heads=list(a["num_heads"]), window_size=a["swin_window"], config=front_end)
        audio_width = self.audio_branch.num_features
        for name in ("spectrogram_extractor", "logmel_extractor"):
            _outside_autocast(getattr(self.audio_branch, name))

        self.text_branch = RobertaModel(RobertaConfig(**{**ROBERTA_BASE, **text}), add_pooling_layer=True)
        text_width = self.text_branch.config.hidden_size

        self.embed_dim = int(embed_dim)
        d = self.embed_dim
        self.text_transform = MLPLayers(units=[d, d, d], dropout=0.1)
        self.text_projection = nn.Sequential(nn.Linear(text_width, d), nn.ReLU(), nn.Linear(d, d))
        self.audio_transform = MLPLayers(units=[d, d, d], dropout=0.1)
        self.audio_projection = nn.Sequential(nn.Linear(audio_width, d), nn.ReLU(), nn.Linear(d, d))
        self.logit_scale_a = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        self.logit_scale_t = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

    def audio_embedding(self, waveform_48k: torch.Tensor) -> torch.Tensor:
        """(B, clip_samples) at 48 kHz → (B, D) L2-normalised."""
        longer = torch.zeros(waveform_48k.shape[0], dtype=torch.bool, device=waveform_48k.device)
        out = self.audio_branch({"waveform": waveform_48k, "longer": longer}, device=waveform_48k.device)
        return F.normalize(self.audio_projection(out["embedding"]), dim=-1)

    def text_embedding(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.text_branch(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return F.normalize(self.text_projection(pooled), dim=-1)


def extract_clap_state_dict(sd: dict) -> dict:
    """Keys of a CLAP inside an AudioLDM checkpoint or a LAION-CLAP checkpoint, in laion layout."""
    prefix = "cond_stage_model.model."
    if any(k.startswith(prefix) for k in sd):
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    elif any(k.startswith("cond_stage_model.") for k in sd):
        raise RuntimeError("checkpoint has a cond_stage_model without `.model.` CLAP weights "
                           "(a diffusers AudioLDM repo holds no CLAP audio branch; use the original .ckpt)")
    elif sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    # transformers >= 4.31 keeps position_ids as a non-persistent buffer
    return {k: v for k, v in sd.items() if not k.endswith("embeddings.position_ids")}


def load_clap_weights(net: ClapNetwork, path: Path) -> None:
    sd = extract_clap_state_dict(load_state_dict_file(path))
    result = net.load_state_dict(sd, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"{path}: CLAP weights do not match the `clap` profile architecture; "
                           f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                           f"unexpected {result.unexpected_keys[:8]}{'...' if len(result.unexpected_keys) > 8 else ''}")


# --------------------------------------------------------------------------- encoder

PADDINGS = ("audioldm", "repeat")
CHANNELS = ("first", "mean")
# Preprocessing fields a profile may put beside the HTS-AT ones in `clap.audio`: AudioLDM's path by default.
AUDIO_PREPROCESSING = dict(padding="audioldm", channel="first", duration=CLAP_SECONDS)


def split_audio_section(audio: dict) -> tuple[dict, dict]:
    """`clap.audio` → (HTS-AT fields, validated preprocessing fields with their defaults)."""
    audio = dict(audio or {})
    prep = {**AUDIO_PREPROCESSING, **{k: audio.pop(k) for k in list(audio) if k in AUDIO_PREPROCESSING}}
    if prep["padding"] not in PADDINGS:
        raise ValueError(f"clap.audio.padding: {prep['padding']!r} is not accepted; accepted: {list(PADDINGS)}")
    if prep["channel"] not in CHANNELS:
        raise ValueError(f"clap.audio.channel: {prep['channel']!r} is not accepted; accepted: {list(CHANNELS)}")
    duration = prep["duration"]
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0:
        raise ValueError(f"clap.audio.duration: {duration!r} is not accepted; accepted: seconds > 0")
    prep["duration"] = float(duration)
    return audio, prep


def preprocessing_tag(prep: dict) -> str:
    """The part of the CLAP's model id that names its input path, so embeddings (and the embed stage's
    cache keys) made with different paths never pass for each other."""
    tag = f"+pad-{prep['padding']}"
    if prep["channel"] != AUDIO_PREPROCESSING["channel"]:
        tag += f"+ch-{prep['channel']}"
    if prep["duration"] != AUDIO_PREPROCESSING["duration"]:
        tag += f"+dur-{prep['duration']:g}"
    return tag


def _peak_to_half(wav: torch.Tensor) -> torch.Tensor:
    """0.5 * x / max|x|; all-zero audio stays zero (AudioLDM's second division gives NaN there)."""
    peak = wav.abs().max()
    return wav * (0.5 / peak) if peak > 0 else wav


class ClapAudioPreparer:
    """The CLAP's input from a waveform: (T,) mono or (channels, T) at any rate → (clip_samples,)
    float32 at the CLAP's rate. ``padding='audioldm'``: AudioLDM's own path; ``'repeat'``:
    laion_clap's (module docstring). Resampling is torchaudio's windowed sinc (``v2a.media.resample``).
    Holds no weights, so it travels to worker processes."""

    def __init__(self, model_rate: int, clip_samples: int, padding: str = "audioldm", channel: str = "first",
                 duration: float = CLAP_SECONDS):
        self.model_rate = int(model_rate)
        self.clip_samples = int(clip_samples)
        _, prep = split_audio_section({"padding": padding, "channel": channel, "duration": duration})
        self.padding, self.channel, self.duration = prep["padding"], prep["channel"], prep["duration"]
        # AudioLDM's read_wav_file(path, int(duration * 102.4) * 160): 1024 mel frames of hop 160 for 10 s
        self.segment_samples = int(self.duration * 102.4) * 160

    def settings(self) -> dict:
        return {"padding": self.padding, "channel": self.channel, "duration": self.duration}

    def __call__(self, waveform: np.ndarray, sample_rate: int) -> torch.Tensor:
        from v2a.media.resample import resample

        wav = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
        if wav.ndim == 2:  # (channels, samples)
            wav = wav[0] if self.channel == "first" else wav.mean(dim=0)
        if wav.ndim != 1:
            raise ValueError(f"expected a mono (T,) or a (channels, T) waveform, got shape {tuple(wav.shape)}")
        if wav.numel() == 0:
            raise ValueError("cannot embed an empty waveform")
        if sample_rate != AUDIOLDM_SAMPLE_RATE:
            wav = resample(wav, int(sample_rate), AUDIOLDM_SAMPLE_RATE)
        # AudioLDM's normalize_wav (the 1e-8 keeps silence at zero)
        wav = wav - wav.mean()
        wav = wav / (wav.abs().max() + 1e-8) * 0.5
        if self.padding == "audioldm":
            if wav.numel() < self.segment_samples:
                wav = F.pad(wav, (0, self.segment_samples - wav.numel()))
            wav = _peak_to_half(wav)
        wav = resample(wav, AUDIOLDM_SAMPLE_RATE, self.model_rate)
        n = self.clip_samples
        if wav.numel() > n:
            wav = wav[:n]
        elif wav.numel() < n:
            if self.padding == "repeat":  # laion_clap 'repeatpad': whole repeats, then zeros
                wav = wav.repeat(n // wav.numel())
            wav = F.pad(wav, (0, n - wav.numel()))
        return wav


class ClapEncoder:
    """CLAP audio and text embeddings, L2-normalised float32."""

    sample_rate: int = AUDIOLDM_SAMPLE_RATE  # the rate AudioLDM's CLAP receives audio at

    def __init__(self, net: ClapNetwork, model_id: str, device: torch.device, dtype: torch.dtype,
                 tokenizer_ref: str, max_length: int, autocast_dtype: torch.dtype | None = None,
                 preprocessing: dict | None = None):
        self.net = net.eval().requires_grad_(False)
        self.model_id = model_id
        self.device = device
        self.dtype = dtype
        # float32 weights with the audio body under autocast (front end excluded): dtype 'auto' on CUDA
        self.autocast_dtype = autocast_dtype
        self.embed_dim = net.embed_dim
        self.model_rate = int(net.audio_cfg["sample_rate"])
        self.clip_samples = int(net.audio_cfg["clip_samples"])
        self._tokenizer_ref = tokenizer_ref
        self._max_length = max_length
        self._tokenizer = None
        self._preparer = ClapAudioPreparer(self.model_rate, self.clip_samples, **(preprocessing or {}))

    @property
    def num_params(self) -> int:
        return count_params(self.net)

    @property
    def tokenizer(self):
        # loaded on first use: extracting audio targets must not depend on tokenizer files
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self._tokenizer_ref, self._max_length, "clap.tokenizer",
                                             self.net.text_branch.config.vocab_size)
        return self._tokenizer

    @property
    def audio_preparer(self) -> "ClapAudioPreparer":
        """``prepare_audio`` as a small picklable object, for decode workers in other processes."""
        return self._preparer

    def prepare_audio(self, waveform: np.ndarray, sample_rate: int) -> torch.Tensor:
        """One (T,) or (channels, T) waveform at any rate → (clip_samples,) float32 at the CLAP's rate (48 kHz)."""
        return self._preparer(waveform, sample_rate)

    @torch.inference_mode()
    def encode_audio(self, waveforms: list[np.ndarray], sample_rate: int, batch_size: int = 16) -> np.ndarray:
        """(T,) or (channels, T) float waveforms at ``sample_rate`` → (N, D) float32 L2-normalised embeddings."""
        waveforms = list(waveforms)
        if not waveforms:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        out = [self.encode_prepared(torch.stack([self.prepare_audio(w, sample_rate)
                                                 for w in waveforms[start:start + batch_size]]))
               for start in range(0, len(waveforms), batch_size)]
        return np.concatenate(out)

    @torch.inference_mode()
    def encode_prepared(self, batch: torch.Tensor) -> np.ndarray:
        """(N, clip_samples) waveforms from ``prepare_audio`` → (N, D) float32 L2-normalised embeddings.

        Lets a pipeline run ``prepare_audio`` (resampling) in its decode workers."""
        if len(batch) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        batch = batch.to(self.device, self.dtype, non_blocking=True)
        if self.autocast_dtype is not None:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                emb = self.net.audio_embedding(batch)
        else:
            emb = self.net.audio_embedding(batch)
        # renormalised in float32: a bfloat16 norm is only good to ~0.5 %
        return F.normalize(emb.float(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N,) strings → (N, D) float32 L2-normalised CLAP text embeddings."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        tok = self.tokenizer(texts)
        emb = self.net.text_embedding(tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device))
        return emb.float().cpu().numpy()


def build_clap(section: dict | ClapConfig, device=None) -> ClapEncoder:
    """Build the profile's CLAP: random init from its architecture, or load a local checkpoint."""
    if not section:
        raise ValueError("clap section of the profile is empty")
    cfg = parse_section("clap", section)
    dev = resolve_device(device, cfg.device)
    dtype = resolve_dtype(cfg.dtype, dev, auto_cuda=torch.float32)
    # 'auto' on CUDA: float32 weights, the Swin body in bfloat16 autocast, the log-mel front end in float32
    autocast = torch.bfloat16 if dev.type == "cuda" and cfg.dtype == "auto" else None
    checkpoint = None
    if cfg.weights is not None:
        # AudioLDM's CLAP only ships inside the original AudioLDM .ckpt; no hub id to fall back to
        checkpoint = require_file(cfg.weights, "clap.weights")
    audio, preprocessing = split_audio_section(cfg.audio)
    with seeded(cfg.seed):
        net = ClapNetwork(cfg.embed_dim, audio, cfg.text)
    if checkpoint is not None:
        load_clap_weights(net, checkpoint)
        log.info("CLAP %s: loaded %s", cfg.model_id, checkpoint)
    net = net.to(dev, dtype)
    return ClapEncoder(net, provenance_id(cfg.model_id, cfg.weights, cfg.seed) + preprocessing_tag(preprocessing),
                       dev, dtype, cfg.tokenizer,
                       cfg.max_length, autocast_dtype=autocast, preprocessing=preprocessing)
