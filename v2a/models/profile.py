"""Model profiles: which CLIP, CLAP and AudioLDM to build, as data.

A profile is a YAML file with one section per frozen model (``clip``, ``clap``, ``generator``)
plus ``extractors`` (owned by ``v2a.metrics``). Three ship with the package:

- ``tiny``: small real architectures with random weights, fast on two CPU cores (tests, demo).
- ``paper-arch``: the paper's exact architectures (CLIP ViT-B/32, CLAP HTSAT-tiny + RoBERTa,
  AudioLDM-s), random weights: true shapes and compute cost, no downloads.
- ``paper``: the real weights (OpenAI CLIP, AudioLDM's own CLAP, ``cvssp/audioldm-s-full-v2``).

A field that names a checkpoint (``clip.weights``, ``clap.weights``, ``clap.tokenizer``,
``generator.weights``, ``generator.tokenizer``, ``extractors.*.checkpoint``) may hold the name of a
weights-registry entry (``v2a/weights/registry.yaml``); ``load_profile`` replaces it with that
entry's place in the weights cache, which ``v2a weights fetch`` fills. A local path, a hub id or an
open_clip tag is left as it is.

Each model section is validated here, once, into a dataclass; the builders in ``clip.py``,
``clap.py`` and ``generator.py`` take the plain dict (as stored in the profile) or the dataclass.
This module imports no torch so that reading a profile stays cheap.
"""

from __future__ import annotations

from v2a.core.offline import hub_offline  # noqa: F401  (re-exported)

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
SECTIONS = ("clip", "clap", "generator", "extractors")
DTYPES = ("auto", "float32", "float16", "bfloat16")


class ProfileError(ValueError):
    """A profile or one of its fields is invalid; the message names the field."""


class CheckpointNotFoundError(FileNotFoundError):
    """Real weights were asked for but are not available locally and the hub is off limits.

    ``field`` is the dotted profile field that names the checkpoint (e.g. ``clip.weights``);
    ``fetch`` the command that downloads it (worked out from the weights registry when not given).
    """

    def __init__(self, field: str, checkpoint: str, hint: str = "", fetch: str | None = None):
        self.field = field
        self.checkpoint = checkpoint
        entry = _registry_entry(checkpoint)
        self.fetch = fetch or (f"v2a weights fetch {entry.name}" if entry is not None else None)
        name = entry.name if entry is not None else checkpoint
        msg = (f"checkpoint {name!r} (profile field `{field}`) is not available: "
               f"{hint or 'no local file and no cached hub copy'}. ")
        by_alias = entry is not None and str(checkpoint) != entry.name and not looks_like_path(str(checkpoint))
        if self.fetch and by_alias:
            msg += (f"Fetch it with `{self.fetch}` and set `{field}: {entry.name}` (where the internet is reachable), "
                    f"or set `{field}` to a local path.")
        elif self.fetch:
            msg += (f"Fetch it with `{self.fetch}` (where the internet is reachable; "
                    f"`v2a weights list` shows the cache), or set `{field}` to a local path.")
        else:
            msg += f"Download it where the model hub is reachable and set `{field}` to the local path."
        super().__init__(msg)


def _registry_entry(ref: str):
    """The weights-registry entry behind a checkpoint reference (its name, an alias, or its cache path)."""
    try:
        from v2a.weights.cache import entry_for_path
        from v2a.weights.registry import find_entry

        return find_entry(str(ref)) or (entry_for_path(ref) if looks_like_path(str(ref)) else None)
    except Exception:  # noqa: BLE001 - an error message must not fail on a broken registry
        return None


# --------------------------------------------------------------------------- helpers

def looks_like_path(ref: str) -> bool:
    """A weights reference is a local path if it exists or is written like one."""
    return (os.path.exists(os.path.expanduser(ref)) or ref.startswith((".", "/", "~"))
            or ref.endswith((".pt", ".pth", ".bin", ".ckpt", ".safetensors")))


def deep_merge(base: dict, overrides: dict | None) -> dict:
    """Return a copy of ``base`` with ``overrides`` merged in, recursively for nested dicts.

    A value of ``None`` in ``overrides`` replaces (it does not delete); dotted keys such as
    ``{"generator.weights": "/ckpt/audioldm"}`` address nested fields.
    """
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(key, str) and "." in key:
            head, rest = key.split(".", 1)
            value, key = {rest: value}, head
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _from_dict(cls, section: Any, name: str):
    if isinstance(section, cls):
        return section
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ProfileError(f"{name}: expected a mapping, got {type(section).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(section) - set(names))
    if unknown:
        raise ProfileError(f"{name}: unknown field(s) {unknown}; accepted: {names}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in section]
    if missing:
        raise ProfileError(f"{name}: missing required field(s) {missing}")
    obj = cls(**section)
    obj.validate(name)
    return obj


def _check_common(obj, name: str) -> None:
    if obj.dtype not in DTYPES:
        raise ProfileError(f"{name}.dtype: {obj.dtype!r} is not one of {list(DTYPES)}")
    if obj.weights is not None and (not isinstance(obj.weights, str) or not obj.weights):
        raise ProfileError(f"{name}.weights: expected null (random init) or a non-empty string")
    if not isinstance(obj.seed, int):
        raise ProfileError(f"{name}.seed: expected an integer, got {obj.seed!r}")
    max_length = getattr(obj, "max_length", 1)
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ProfileError(f"{name}.max_length: expected a positive integer (text tokens), got {max_length!r}")


# --------------------------------------------------------------------------- sections

@dataclass
class ClipConfig:
    """Frozen CLIP image encoder (open_clip)."""

    model_id: str                      # open_clip architecture name (e.g. ViT-B-32) or a label for `arch`
    arch: dict | None = None           # custom open_clip config {embed_dim, vision_cfg, text_cfg}; None: registry `model_id`
    weights: str | None = None         # None: random init; an open_clip pretrained tag ('openai'); or a local checkpoint path
    quick_gelu: bool = False           # OpenAI CLIP weights were trained with QuickGELU
    seed: int = 0                      # seed of the random init (weights: null)
    device: str | None = None          # None: the device the caller passes (default cpu)
    dtype: str = "auto"                # auto: float16 on CUDA, float32 on CPU

    def validate(self, name: str = "clip") -> None:
        _check_common(self, name)
        if self.arch is not None:
            for key in ("embed_dim", "vision_cfg", "text_cfg"):
                if key not in self.arch:
                    raise ProfileError(f"{name}.arch: missing {key!r} (open_clip model config layout)")


@dataclass
class ClapConfig:
    """Frozen CLAP (HTSAT audio branch + RoBERTa text branch, LAION-CLAP / AudioLDM key layout)."""

    model_id: str
    embed_dim: int = 512               # joint audio-text embedding size
    audio: dict = field(default_factory=dict)   # HTSAT architecture + front end, see clap.HTSAT_TINY
    text: dict = field(default_factory=dict)    # transformers RobertaConfig fields
    weights: str | None = None         # None: random init; path to an AudioLDM .ckpt or a LAION-CLAP .pt/.safetensors
    tokenizer: str = "bytes"           # 'bytes' (offline byte-level ids), a hub id ('roberta-base') or a local dir
    max_length: int = 77               # text tokens
    seed: int = 0
    device: str | None = None
    dtype: str = "auto"                # auto: float32 weights; on CUDA the audio body runs in bf16 autocast,
                                       # the log-mel front end stays float32

    def validate(self, name: str = "clap") -> None:
        _check_common(self, name)
        if not isinstance(self.embed_dim, int) or self.embed_dim <= 0:
            raise ProfileError(f"{name}.embed_dim: expected a positive integer")


@dataclass
class GeneratorConfig:
    """AudioLDM (v1) generator assembled from diffusers / transformers components."""

    model_id: str
    weights: str | None = None         # None: build from the configs below; a diffusers repo id or local dir;
                                       # or an original AudioLDM .ckpt (its architecture read from the file)
    unet: dict = field(default_factory=dict)          # diffusers UNet2DConditionModel kwargs
    vae: dict = field(default_factory=dict)           # diffusers AutoencoderKL kwargs
    vocoder: dict = field(default_factory=dict)       # transformers SpeechT5HifiGanConfig kwargs
    text_encoder: dict = field(default_factory=dict)  # transformers ClapTextConfig kwargs
    scheduler: dict = field(default_factory=dict)     # diffusers DDIMScheduler kwargs (training schedule)
    tokenizer: str = "bytes"           # with weights: null; a checkpoint brings its own tokenizer
    max_length: int = 77
    seed: int = 0
    device: str | None = None
    dtype: str = "auto"

    def validate(self, name: str = "generator") -> None:
        _check_common(self, name)
        if self.weights is None:
            for key in ("unet", "vae", "vocoder", "text_encoder", "scheduler"):
                if not getattr(self, key):
                    raise ProfileError(f"{name}.{key}: required when {name}.weights is null "
                                       "(the architecture to build with random weights)")
        proj = self.unet.get("projection_class_embeddings_input_dim")
        # with weights, the sections only fill in what a checkpoint cannot tell (e.g. an original .ckpt's heads)
        if self.weights is None and self.unet and self.text_encoder \
                and proj != self.text_encoder.get("projection_dim", 512):
            raise ProfileError(f"{name}.unet.projection_class_embeddings_input_dim ({proj}) must equal "
                               f"{name}.text_encoder.projection_dim ({self.text_encoder.get('projection_dim', 512)})")


SECTION_CLASSES = {"clip": ClipConfig, "clap": ClapConfig, "generator": GeneratorConfig}


def parse_section(kind: str, section: Any):
    """Validate one model section (a dict from a profile) into its dataclass."""
    if kind not in SECTION_CLASSES:
        raise ProfileError(f"unknown model section {kind!r}; accepted: {list(SECTION_CLASSES)}")
    return _from_dict(SECTION_CLASSES[kind], section, kind)


# --------------------------------------------------------------------------- profiles

def profile_names() -> list[str]:
    """Names of the profiles that ship with v2a (``v2a/profiles/*.yaml``)."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml") if p.stem != "generators")


def validate_profile(profile: dict) -> dict:
    """Check a loaded profile: every section present, model sections well formed. Returns it."""
    if not isinstance(profile, dict):
        raise ProfileError(f"a profile must be a mapping, got {type(profile).__name__}")
    unknown = sorted(set(profile) - {"name", *SECTIONS})
    if unknown:  # a misspelt section would otherwise be ignored and its models built with the defaults
        raise ProfileError(f"profile {profile.get('name', '?')!r}: unknown section(s) {unknown}; "
                           f"accepted: {['name', *SECTIONS]}")
    missing = [s for s in SECTIONS if s not in profile]
    if missing:
        raise ProfileError(f"profile {profile.get('name', '?')!r}: missing section(s) {missing}; "
                           f"a profile has {list(SECTIONS)}")
    for kind in SECTION_CLASSES:
        if profile[kind]:  # an empty section means 'not configured yet' and is rejected when built
            parse_section(kind, profile[kind])
    if not isinstance(profile["extractors"], dict):
        raise ProfileError("extractors: expected a mapping")
    return profile


# The fields that name a checkpoint, per model section; every extractor's `checkpoint` too.
WEIGHT_FIELDS = {"clip": ("weights",), "clap": ("weights", "tokenizer"), "generator": ("weights", "tokenizer")}


def weight_fields(profile: dict) -> list[tuple[str, str]]:
    """``(dotted field, value)`` for every field of a profile that names a checkpoint and is set."""
    out = []
    for section, names in WEIGHT_FIELDS.items():
        cfg = profile.get(section)
        for name in names if isinstance(cfg, dict) else ():  # a malformed section is validate_profile's to refuse
            value = cfg.get(name)
            if isinstance(value, str) and value and value != "bytes":
                out.append((f"{section}.{name}", value))
    extractors = profile.get("extractors")
    for extractor, cfg in (extractors.items() if isinstance(extractors, dict) else ()):
        if isinstance(cfg, dict) and isinstance(cfg.get("checkpoint"), str) and cfg["checkpoint"]:
            out.append((f"extractors.{extractor}.checkpoint", cfg["checkpoint"]))
    return out


def _resolve_registry_names(profile: dict) -> dict:
    """A copy of ``profile`` whose registry names are replaced by their paths in the weights cache.
    Only names are looked up (no file is opened): whether the file is there is checked when a model is
    built (``v2a.weights.ensure_weights``), so a profile loads before its weights are fetched."""
    from v2a.weights.cache import entry_path
    from v2a.weights.registry import registry

    entries = registry()
    out = copy.deepcopy(profile)
    for dotted, value in weight_fields(profile):
        if value in entries:
            *parents, leaf = dotted.split(".")
            node = out
            for key in parents:
                node = node[key]
            node[leaf] = str(entry_path(entries[value]))
    return out


def load_profile(name_or_path: str, overrides: dict | None = None, resolve_weights: bool = True) -> dict:
    """Load a profile by name ('tiny', 'paper-arch', 'paper') or from a YAML file path.

    ``overrides`` is deep-merged before validation, e.g.
    ``load_profile('paper', {'generator': {'weights': '/models/audioldm-s-full-v2'}})``.
    Registry names in checkpoint fields become weights-cache paths unless ``resolve_weights`` is false.
    """
    ref = str(name_or_path)
    variant = None
    if ":" in ref and ref.split(":", 1)[0] in profile_names():
        ref, variant = ref.split(":", 1)
    path = Path(ref).expanduser()
    if ref in profile_names():
        path = PROFILE_DIR / f"{ref}.yaml"
    elif not (path.suffix in (".yaml", ".yml") and path.is_file()):
        raise ProfileError(f"profile {ref!r} not found; accepted: {profile_names()} or a path to a YAML file")
    with open(path, encoding="utf-8") as fh:
        profile = yaml.safe_load(fh) or {}
    if not isinstance(profile, dict):
        raise ProfileError(f"{path}: a profile must be a YAML mapping")
    profile.setdefault("name", path.stem)
    if variant is not None:
        profile = deep_merge(profile, {"generator": generator_variant(variant, ref)})
        profile["name"] = f"{ref}:{variant}"
    profile = deep_merge(profile, overrides)
    if resolve_weights:
        profile = _resolve_registry_names(profile)
    return validate_profile(profile)


def generator_variants() -> dict:
    with open(PROFILE_DIR / "generators.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def generator_variant(variant: str, profile: str) -> dict:
    """The `generator` overrides of an AudioLDM variant (paper Table 6) for the 'paper' or 'paper-arch' profile."""
    variants = generator_variants()
    if variant not in variants:
        raise ProfileError(f"generator variant {variant!r} unknown; accepted: {sorted(variants)}")
    if profile not in variants[variant]:
        raise ProfileError(f"generator variant {variant!r} exists for profiles {sorted(variants[variant])}, "
                           f"not {profile!r}")
    return variants[variant][profile]
