"""AudioLDM (v1) conditioned on a (pseudo-)CLAP embedding: the V2A-Mapper's generator.

Components are the maintained diffusers / transformers classes that ``AudioLDMPipeline`` (now in
``diffusers.pipelines.deprecated``) wires together: a ``UNet2DConditionModel`` whose FiLM
condition enters through ``class_labels`` (``class_embed_type="simple_projection"``, concatenated
to the time embedding), an ``AutoencoderKL`` over 64-bin mel spectrograms, a ``SpeechT5HifiGan``
vocoder, a ``ClapTextModelWithProjection`` (for the unconditional ``""`` embedding) and a
DDIM / DPM-Solver++ scheduler on AudioLDM's training schedule. The short sampling loop is ours:

    cond (B, 512) --L2--> UNet class_labels, CFG against the "" text embedding
    latents (B, 8, frames / 4, 64 / 4) --DDIM--> VAE decode --> mel (B, 1, frames, 64)
    --> HiFi-GAN --> (B, seconds * 16 kHz) waveform

Each item's starting noise (and, with DDIM η > 0, its per-step noise) comes from its own
``torch.Generator`` seeded by ``seeds[i]``, so an item's audio does not depend on what else is in
the batch.

Two samplers (``SAMPLERS``), chosen per generator (``build_generator(..., sampler=)``) or per call:
``audioldm`` (default) is AudioLDM's own ``generate_sample`` (haoheliu/AudioLDM ``audioldm/ldm.py``):
DDIM with η = 1, latents of ``int(seconds * 25.6)`` frames (10.24 s for 10 s) decoded and then cut to
the requested length, latents clipped to ±10 when their peak exceeds 100. ``diffusers`` is
``AudioLDMPipeline``: DDIM with η = 0, latents just long enough for the requested length. Steps (200)
and guidance (2.5) default to AudioLDM's ``text_to_audio`` in both.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ._common import (count_params, hub_cached, local_path, provenance_id, require_file, resolve_device, resolve_dtype,
                      seeded)
from .clap import load_tokenizer
from .profile import CheckpointNotFoundError, GeneratorConfig, hub_offline, looks_like_path, parse_section

log = logging.getLogger(__name__)

from v2a.core.stopping import raise_if_stopped  # noqa: E402
from v2a.core.names import SCHEDULERS  # noqa: E402  (listed once)
from .sampling import DEFAULT_GUIDANCE_SCALE, DEFAULT_SCHEDULER, DEFAULT_SECONDS, DEFAULT_STEPS  # noqa: E402
# eta: DDIM's stochasticity (DPM-Solver++ has none); length: "audioldm" samples int(seconds * 25.6)
# latent frames and cuts, "exact" samples just enough frames; clamp: AudioLDM's clip of runaway latents.
SAMPLERS = {
    "audioldm": {"eta": 1.0, "length": "audioldm", "clamp": True},
    "diffusers": {"eta": 0.0, "length": "exact", "clamp": False},
}
LENGTHS = ("audioldm", "exact")
_SCHEDULER_ALIASES = {"ddim": "ddim", "dpm": "dpmsolver++", "dpmsolver": "dpmsolver++", "dpmsolver++": "dpmsolver++",
                      "dpm-solver++": "dpmsolver++"}


class AudioLDMGenerator:
    """AudioLDM sampling from CLAP-space conditions (text-free, as in V2A-Mapper)."""

    def __init__(self, unet, vae, vocoder, text_encoder, tokenizer, scheduler_config: dict, model_id: str,
                 device: torch.device, dtype: torch.dtype, sampler: str = "audioldm"):
        self.unet = unet.eval().requires_grad_(False)
        self.vae = vae.eval().requires_grad_(False)
        self.vocoder = vocoder.eval().requires_grad_(False)
        self.text_encoder = text_encoder.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.scheduler_config = dict(scheduler_config)
        self.model_id = model_id
        self.device = device
        self.dtype = dtype
        self.sample_rate = int(vocoder.config.sampling_rate)
        self.cond_dim = int(unet.config.projection_class_embeddings_input_dim)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.hop_length = int(np.prod(vocoder.config.upsample_rates))  # waveform samples per mel frame
        self.n_mels = int(vocoder.config.model_in_dim)
        self.latent_channels = int(unet.config.in_channels)
        if self.n_mels % self.vae_scale_factor:
            raise ValueError(f"vocoder.model_in_dim ({self.n_mels}) must be a multiple of the VAE's "
                             f"downsampling factor ({self.vae_scale_factor})")
        if int(text_encoder.config.projection_dim) != self.cond_dim:
            raise ValueError(f"text_encoder.projection_dim ({text_encoder.config.projection_dim}) != "
                             f"unet.projection_class_embeddings_input_dim ({self.cond_dim})")
        self._negative: torch.Tensor | None = None
        self.sampler = check_sampler(sampler)

    # ------------------------------------------------------------------ info
    @property
    def num_params(self) -> dict[str, int]:
        return {name: count_params(getattr(self, name)) for name in ("unet", "vae", "vocoder", "text_encoder")}

    def mel_frames(self, seconds: float, length: str = "exact") -> int:
        """Mel frames sampled for ``seconds`` of audio. ``exact``: enough for ``seconds``, rounded up to a
        multiple of the VAE downsampling (AudioLDMPipeline); ``audioldm``: AudioLDM's
        ``duration_to_latent_t_size`` (``int(seconds * 25.6)`` latent frames at hop 160 and factor 4,
        i.e. about 1.024 * seconds of audio, 1024 frames for 10 s; never fewer than ``exact``)."""
        if length not in LENGTHS:
            raise ValueError(f"length {length!r} unknown; accepted: {list(LENGTHS)}")
        frames = math.ceil(round(seconds * self.sample_rate) / self.hop_length)
        exact = int(math.ceil(frames / self.vae_scale_factor) * self.vae_scale_factor)
        if length == "audioldm":
            per_second = 1.024 * self.sample_rate / self.hop_length / self.vae_scale_factor
            # below ~1.7 s AudioLDM's rounding down gives less than `seconds`; never sample too little
            return max(exact, int(round(seconds * per_second, 6)) * self.vae_scale_factor)
        return exact

    def latent_shape(self, seconds: float, length: str = "exact") -> tuple[int, int, int]:
        return (self.latent_channels, self.mel_frames(seconds, length) // self.vae_scale_factor,
                self.n_mels // self.vae_scale_factor)

    def make_scheduler(self, name: str):
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        kind = _SCHEDULER_ALIASES.get(str(name).lower())
        if kind is None:
            raise ValueError(f"scheduler {name!r} unknown; accepted: {list(SCHEDULERS)}")
        if kind == "ddim":
            return DDIMScheduler.from_config(self.scheduler_config)
        return DPMSolverMultistepScheduler.from_config(self.scheduler_config, algorithm_type="dpmsolver++")

    # ------------------------------------------------------------------ text
    @torch.inference_mode()
    def _text_embeds(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(list(texts))
        out = self.text_encoder(input_ids=tok["input_ids"].to(self.device),
                                attention_mask=tok["attention_mask"].to(self.device))
        return F.normalize(out.text_embeds.float(), dim=-1)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """The generator's own CLAP text embeddings (ClapTextModelWithProjection), L2-normalised."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.cond_dim), dtype=np.float32)
        return self._text_embeds(texts).cpu().numpy()

    def negative_embedding(self) -> np.ndarray:
        """CLAP text embedding of the empty string: the unconditional branch of guidance."""
        if self._negative is None:
            self._negative = self._text_embeds([""])[0].cpu()
        return self._negative.numpy()

    # ------------------------------------------------------------------ sampling
    def initial_noise(self, seeds: list[int], seconds: float, length: str = "exact",
                      generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """(B, C, T', F') standard normal, item i drawn from its own CPU generator seeded with seeds[i]
        (or from ``generators[i]``, which then goes on to draw that item's later noise)."""
        shape = self.latent_shape(seconds, length)
        generators = generators or [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        return torch.cat([torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in generators])

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor, num_samples: int) -> torch.Tensor:
        """Latents → mel (VAE) → waveform (HiFi-GAN), one item at a time to bound memory."""
        waves = []
        for item in latents:
            mel = self.vae.decode(item[None] / self.vae.config.scaling_factor).sample  # (1, 1, T, n_mels)
            wave = self.vocoder(mel.squeeze(1))  # (1, T * hop)
            waves.append(wave.float().cpu()[:, :num_samples])
        return torch.cat(waves)

    @torch.inference_mode()
    def generate(self, cond: np.ndarray, seeds: list[int], negative: np.ndarray | None = None, steps: int = DEFAULT_STEPS,
                 guidance_scale: float = DEFAULT_GUIDANCE_SCALE, seconds: float = DEFAULT_SECONDS,
                 scheduler: str = DEFAULT_SCHEDULER, sampler: str | None = None, eta: float | None = None) -> np.ndarray:
        """(B, cond_dim) CLAP-space conditions → (B, round(seconds * AUDIOLDM_SAMPLE_RATE)) float32 waveforms.

        ``negative``: the unconditional embedding, (cond_dim,) or (B, cond_dim); None uses this
        generator's own CLAP text embedding of "". Guidance is skipped when ``guidance_scale <= 1``
        (as in AudioLDMPipeline and AudioLDM). ``sampler`` (default: this generator's) picks DDIM's η,
        the sampled length and the latent clamp from ``SAMPLERS``; ``eta`` overrides its η (DDIM only).
        """
        cond_t = torch.as_tensor(np.asarray(cond, dtype=np.float32))
        if cond_t.ndim != 2 or cond_t.shape[1] != self.cond_dim:
            raise ValueError(f"cond: expected (B, {self.cond_dim}), got {tuple(cond_t.shape)}")
        batch = cond_t.shape[0]
        seeds = [int(s) for s in seeds]
        if len(seeds) != batch:
            raise ValueError(f"seeds: need one per item ({batch}), got {len(seeds)}")
        if steps < 1:
            raise ValueError("steps must be >= 1")
        if seconds <= 0:
            raise ValueError("seconds must be > 0")
        settings = dict(SAMPLERS[check_sampler(self.sampler if sampler is None else sampler)])
        if eta is not None:
            if isinstance(eta, bool) or not isinstance(eta, (int, float)) or eta < 0:
                raise ValueError(f"eta must be a number >= 0, got {eta!r}")
            settings["eta"] = float(eta)
        num_samples = int(round(seconds * self.sample_rate))
        if batch == 0:
            return np.zeros((0, num_samples), dtype=np.float32)

        cond_t = F.normalize(cond_t, dim=-1)
        guided = guidance_scale > 1.0
        if guided:
            neg = torch.as_tensor(np.asarray(self.negative_embedding() if negative is None else negative,
                                             dtype=np.float32))
            neg = F.normalize(neg.reshape(-1, self.cond_dim), dim=-1).expand(batch, -1)
            labels = torch.cat([neg, cond_t])
        else:
            labels = cond_t
        labels = labels.to(self.device, self.dtype)

        sched = self.make_scheduler(scheduler)
        with warnings.catch_warnings():
            # diffusers' DPM-Solver calls np.array on a tensor: a numpy-2 DeprecationWarning that is not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            sched.set_timesteps(int(steps), device=self.device)
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        noise = self.initial_noise(seeds, seconds, settings["length"], generators)
        latents = (noise * sched.init_noise_sigma).to(self.device, self.dtype)
        stochastic = settings["eta"] > 0 and isinstance(sched, _ddim_class())
        for t in sched.timesteps:
            raise_if_stopped()  # a batch of 200 steps can take minutes on a CPU
            model_in = torch.cat([latents] * 2) if guided else latents
            model_in = sched.scale_model_input(model_in, t)
            eps = self.unet(model_in, t, encoder_hidden_states=None, class_labels=labels).sample
            if guided:
                eps_uncond, eps_cond = eps.chunk(2)
                eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
            if stochastic:  # each item's step noise from its own generator, so batching changes nothing
                step_noise = torch.cat([torch.randn((1, *latents.shape[1:]), generator=g, dtype=torch.float32)
                                        for g in generators]).to(self.device, self.dtype)
                latents = sched.step(eps, t, latents, eta=settings["eta"], variance_noise=step_noise).prev_sample
            else:
                latents = sched.step(eps, t, latents).prev_sample
        if settings["clamp"] and float(latents.abs().max()) > 1e2:
            latents = latents.clamp(-10, 10)  # AudioLDM generate_sample: runaway samples are clipped
        return self.decode(latents, num_samples).numpy().astype(np.float32, copy=False)


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ValueError(f"sampler {name!r} unknown; accepted: {list(SAMPLERS)}")
    return name


def _ddim_class():
    from diffusers import DDIMScheduler

    return DDIMScheduler


# --------------------------------------------------------------------------- building

def _from_original_checkpoint(cfg: GeneratorConfig, path, dtype: torch.dtype):
    """Build the components from an original AudioLDM ``.ckpt`` with AudioLDM's own architecture
    (heads per block, EMA UNet weights): ``audioldm_checkpoint``. The tokenizer is
    ``generator.tokenizer`` (roberta-base for AudioLDM's CLAP)."""
    from .audioldm_checkpoint import load_audioldm_checkpoint

    parts = load_audioldm_checkpoint(path, dtype, unet=cfg.unet, vocoder=cfg.vocoder, text_encoder=cfg.text_encoder,
                                     scheduler=cfg.scheduler)
    tokenizer = load_tokenizer(cfg.tokenizer, cfg.max_length, "generator.tokenizer",
                               parts.text_encoder.config.vocab_size)
    return parts.unet, parts.vae, parts.vocoder, parts.text_encoder, tokenizer, parts.scheduler_config


def is_original_checkpoint(ref: str) -> bool:
    """A single checkpoint file (an original AudioLDM ``.ckpt``), not a diffusers folder or hub id."""
    path = local_path(ref)
    return path.is_file() or (not path.exists() and str(ref).endswith((".ckpt", ".pt", ".pth", ".safetensors")))


def _from_checkpoint(cfg: GeneratorConfig, dtype: torch.dtype):
    """Load the components of a diffusers AudioLDM repo (hub id or local dir), or of an original
    AudioLDM checkpoint file."""
    ref = cfg.weights
    if looks_like_path(ref) and is_original_checkpoint(ref):
        return _from_original_checkpoint(cfg, require_file(ref, "generator.weights"), dtype)
    if looks_like_path(ref):
        ref = str(require_file(ref, "generator.weights"))
        local_only = True
    else:
        if hub_offline() and hub_cached(ref, "model_index.json") is None:
            raise CheckpointNotFoundError("generator.weights", ref,
                                          "HF_HUB_OFFLINE is set and the repo is not in the local hub cache")
        local_only = hub_offline()
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import ClapTextModelWithProjection, SpeechT5HifiGan

    kw = {"local_files_only": local_only}
    # the weights do not depend on the heads: a folder written with diffusers' converter (8 heads in every
    # block) gets AudioLDM's own layout back with generator.unet.attention_head_dim
    heads = {"attention_head_dim": cfg.unet["attention_head_dim"]} if "attention_head_dim" in cfg.unet else {}
    unet = UNet2DConditionModel.from_pretrained(ref, subfolder="unet", torch_dtype=dtype, **heads, **kw)
    vae = AutoencoderKL.from_pretrained(ref, subfolder="vae", torch_dtype=dtype, **kw)
    vocoder = SpeechT5HifiGan.from_pretrained(ref, subfolder="vocoder", dtype=dtype, **kw)
    text_encoder = ClapTextModelWithProjection.from_pretrained(ref, subfolder="text_encoder", dtype=dtype, **kw)
    scheduler_config = dict(DDIMScheduler.load_config(ref, subfolder="scheduler", **kw))
    tokenizer = load_tokenizer(ref, cfg.max_length, "generator.weights", text_encoder.config.vocab_size,
                               subfolder="tokenizer")
    return unet, vae, vocoder, text_encoder, tokenizer, scheduler_config


def _from_config(cfg: GeneratorConfig):
    """The same components with random weights, from the profile's architecture fields."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import ClapTextConfig, ClapTextModelWithProjection, SpeechT5HifiGan, SpeechT5HifiGanConfig

    with seeded(cfg.seed):
        unet = UNet2DConditionModel(**cfg.unet)
        vae = AutoencoderKL(**cfg.vae)
        vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(**cfg.vocoder))
        text_encoder = ClapTextModelWithProjection(ClapTextConfig(**cfg.text_encoder))
    tokenizer = load_tokenizer(cfg.tokenizer, cfg.max_length, "generator.tokenizer",
                               text_encoder.config.vocab_size)
    return unet, vae, vocoder, text_encoder, tokenizer, dict(cfg.scheduler)


def build_generator(section: dict | GeneratorConfig, device=None, dtype=None,
                    sampler: str = "audioldm") -> AudioLDMGenerator:
    """Build the profile's AudioLDM: random init from its configs, a diffusers repo / local dir, or an
    original AudioLDM ``.ckpt`` (registry entries ``audioldm-*-ckpt`` or a local file).

    ``sampler``: the default of ``generate`` (``SAMPLERS``); AudioLDM's own settings unless told."""
    if not section:
        raise ValueError("generator section of the profile is empty")
    cfg = parse_section("generator", section)
    dev = resolve_device(device, cfg.device)
    dt = resolve_dtype(dtype if dtype is not None else cfg.dtype, dev)
    if cfg.weights is not None:
        parts = _from_checkpoint(cfg, dt)
    else:
        parts = _from_config(cfg)
    unet, vae, vocoder, text_encoder, tokenizer, scheduler_config = parts
    if getattr(vocoder.config, "normalize_before", False) and cfg.weights is None:
        log.warning("generator.vocoder.normalize_before is true; AudioLDM's vocoder takes raw log-mels")
    modules = [m.to(dev, dt) for m in (unet, vae, vocoder, text_encoder)]
    model_id = provenance_id(cfg.model_id, cfg.weights, cfg.seed)
    if check_sampler(sampler) != "audioldm":
        model_id += f"+sampler-{sampler}"
    return AudioLDMGenerator(*modules, tokenizer, scheduler_config, model_id, dev, dt, sampler=check_sampler(sampler))
