"""Consistency of a profile's models: the mapper's target space must be the generator's conditioning space.

The mapper learns to predict CLAP *audio* embeddings from the profile's CLAP; AudioLDM is then
conditioned on them through FiLM. That only works when the profile's CLAP is the one AudioLDM was
trained with. Both towers of a CLAP share one joint space, and AudioLDM ships that CLAP's *text*
tower (diffusers: ``text_encoder``), so the check compares the two text towers on a few prompts:
the same CLAP gives the same text embeddings (cosine 1 up to float error); another CLAP, or a
random one, gives unrelated vectors.
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
    return check_text_towers(clap, generator, prompts, min_cosine)


def generator_text_state_dict(clap_state_dict: dict) -> dict:
    """A LAION/AudioLDM CLAP state dict's text tower in the key layout of transformers'
    ``ClapTextModelWithProjection`` (the generator's ``text_encoder``), as diffusers' AudioLDM
    conversion maps it: ``text_branch.*`` → ``text_model.*``, ``text_projection.{0,2}`` →
    ``text_projection.linear{1,2}``."""
    out = {}
    for key, value in clap_state_dict.items():
        if key.startswith("text_branch."):
            out["text_model." + key[len("text_branch."):]] = value
        elif key.startswith("text_projection.0."):
            out["text_projection.linear1." + key[len("text_projection.0."):]] = value
        elif key.startswith("text_projection.2."):
            out["text_projection.linear2." + key[len("text_projection.2."):]] = value
    return {k: v for k, v in out.items() if not k.endswith("position_ids")}
