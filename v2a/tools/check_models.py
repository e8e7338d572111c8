"""Consistency of a profile's models: the mapper's target space must be the generator's conditioning space,
and the generator's UNet should have AudioLDM's attention heads.

The mapper learns to predict CLAP *audio* embeddings from the profile's CLAP; AudioLDM is then
conditioned on them through FiLM. That only works when the profile's CLAP is the one AudioLDM was
trained with. Both towers of a CLAP share one joint space, and AudioLDM ships that CLAP's *text*
tower (diffusers: ``text_encoder``), so the check compares the two text towers on a few prompts:
the same CLAP gives the same text embeddings (cosine 1 up to float error); another CLAP, or a
random one, gives unrelated vectors.

A diffusers AudioLDM folder written by diffusers' converter has 8 attention heads in every UNet block
(the converter never sets ``attention_head_dim``); AudioLDM has 32 (-s, -m) or 64 (-l) channels per
head. The weights are the same either way, but the noise prediction is not AudioLDM's; the check
says so (``check_attention_heads``) without failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PROMPTS = ("", "a dog barking", "rain falling on a tin roof", "a car engine revving up",
           "people talking in a crowded room", "birds chirping in the morning")
MIN_COSINE = 0.999


class ModelMismatchError(ValueError):
    """The profile's CLAP and its generator do not share an embedding space."""


@dataclass
class CheckResult:
    ok: bool
    message: str
    prompts: tuple[str, ...] = ()
    cosines: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # differences that do not fail the check (attention heads)


def check_text_towers(clap, generator, prompts=PROMPTS, min_cosine: float = MIN_COSINE) -> CheckResult:
    """Compare ``clap.encode_text`` with ``generator.encode_text``; raise ModelMismatchError if they differ."""
    prompts = tuple(prompts)
    if clap.embed_dim != generator.cond_dim:
        raise ModelMismatchError(
            f"CLAP embeddings are {clap.embed_dim}-d but the generator is conditioned on {generator.cond_dim}-d "
            "vectors: the mapper's target space (clap) is not the generator's conditioning space (generator)")
    a = np.asarray(clap.encode_text(list(prompts)), np.float64)
    b = np.asarray(generator.encode_text(list(prompts)), np.float64)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    cosines = [float(c) for c in cos]
    worst = int(np.argmin(cos))
    if cos[worst] < min_cosine:
        message = (
            f"the CLAP text tower ({clap.model_id}) and the generator's text encoder ({generator.model_id}) "
            f"disagree: cosine {cos[worst]:.4f} < {min_cosine} on the prompt {prompts[worst]!r} "
            f"(all: {', '.join(f'{c:.3f}' for c in cosines)}). The mapper's target space is not the "
            "generator's conditioning space: point `clap.weights` at the AudioLDM checkpoint whose "
            "cond_stage_model the generator was trained with (or a LAION CLAP that matches it).")
        if "@random" in f"{clap.model_id} {generator.model_id}":
            message += " (Randomly initialised towers, as in the tiny and paper-arch profiles, fail by design.)"
        raise ModelMismatchError(message)
    return CheckResult(True, f"CLAP text tower and generator text encoder agree on {len(prompts)} prompts "
                             f"(min cosine {cos[worst]:.5f} >= {min_cosine})", prompts, cosines)


def check_models(profile: str | dict, device: str = "cpu", prompts=PROMPTS,
                 min_cosine: float = MIN_COSINE) -> CheckResult:
    """Build the profile's CLAP and generator and check that they share a space.

    A profile without one of the two has nothing to compare and passes with a note.
    """
    from v2a.models import build_clap, build_generator, load_profile, validate_profile

    prof = load_profile(profile) if isinstance(profile, str) else validate_profile(profile)
    absent = [name for name in ("clap", "generator") if not prof.get(name)]
    if absent:
        return CheckResult(True, f"nothing to compare: the profile has no {' and no '.join(absent)} section")
    from v2a.models.profile_weights import ensure_weights

    ensure_weights(prof, ["clap", "generator"], profile_name=profile if isinstance(profile, str) else None)
    clap = build_clap(prof["clap"], device=device)
    generator = build_generator(prof["generator"], device=device)
    heads = check_attention_heads(generator)
    try:
        result = check_text_towers(clap, generator, prompts, min_cosine)
    except ModelMismatchError as exc:
        raise ModelMismatchError(f"{exc}{' Also: ' + heads if heads else ''}") from None
    if heads:
        result.message += f". Warning: {heads}"
        result.notes.append(heads)
    return result


def check_attention_heads(generator) -> str | None:
    """None when the generator's UNet has AudioLDM's heads per block (32 channels each for -s/-m, 64
    for -l), or is not one of AudioLDM's widths; otherwise what differs and how to fix it."""
    from v2a.models.audioldm_checkpoint import heads_mismatch

    return heads_mismatch(generator.unet.config)


def generator_text_state_dict(clap_state_dict: dict) -> dict:
    """A LAION/AudioLDM CLAP state dict's text tower in the key layout of transformers'
    ``ClapTextModelWithProjection`` (the generator's ``text_encoder``), as diffusers' AudioLDM
    conversion maps it: ``text_branch.*`` → ``text_model.*``, ``text_projection.{0,2}`` →
    ``text_projection.linear{1,2}``."""
    from v2a.models.audioldm_checkpoint import convert_text_encoder

    return convert_text_encoder(clap_state_dict)
