"""The frozen foundation models of V2A-Mapper: CLIP (vision), CLAP (audio target), AudioLDM (generator).

``load_profile('tiny' | 'paper-arch' | 'paper')`` says which to build; ``build_models`` builds them.
Heavy libraries (torch, open_clip, laion_clap, diffusers) are imported only when a model is built.
"""

from __future__ import annotations

from .profile import (CheckpointNotFoundError, ClapConfig, ClipConfig, GeneratorConfig, ProfileError, deep_merge,
                      load_profile, profile_names, validate_profile)

COMPONENTS = ("clip", "clap", "generator")

__all__ = [
    "AudioLDMGenerator", "CheckpointNotFoundError", "ClapConfig", "ClapEncoder", "ClipConfig", "ClipImageEncoder",
    "GeneratorConfig", "ProfileError", "build_clap", "build_clip", "build_generator", "build_models", "deep_merge",
    "load_profile", "profile_names", "validate_profile", "COMPONENTS",
]

_LAZY = {
    "ClipImageEncoder": "clip", "build_clip": "clip",
    "ClapEncoder": "clap", "build_clap": "clap",
    "AudioLDMGenerator": "generator", "build_generator": "generator",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_models(profile: dict | str, device=None, components=COMPONENTS) -> dict:
    """Build the named components of a profile (a name, a YAML path or a loaded dict).

    Returns ``{"clip": ClipImageEncoder, "clap": ClapEncoder, "generator": AudioLDMGenerator}``
    restricted to ``components``.
    """
    prof = load_profile(profile) if isinstance(profile, str) else validate_profile(profile)
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise ValueError(f"unknown component(s) {unknown}; accepted: {list(COMPONENTS)}")
    from v2a.models.profile_weights import ensure_weights

    ensure_weights(prof, list(components), profile_name=profile if isinstance(profile, str) else None)
    builders = {"clip": "build_clip", "clap": "build_clap", "generator": "build_generator"}
    return {c: __getattr__(builders[c])(prof[c], device=device) for c in components}
