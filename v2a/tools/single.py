"""Sound for a handful of inputs given on the command line: images, videos, or (for interpolation) text."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from v2a.core import storage
from v2a.core.aggregate import aggregate_frames
from v2a.config import EmbedConfig, GenerateConfig, TrainStageConfig, defaults
from v2a.core.seeds import derive_seed
from v2a.io.audio import write_wav
from v2a.media import is_image, read_clip
from v2a.media.mux import mux_soundtrack

_G, _E, _T = defaults(GenerateConfig), defaults(EmbedConfig), defaults(TrainStageConfig)
MAX_SECONDS = _G["seconds"]  # AudioLDM's clip length


def _stem(uri: str) -> str:
    return re.sub(r"[^\w\-.]", "_", Path(str(uri)).stem) or "input"


def output_stems(inputs) -> list[str]:
    """One output name per input; inputs sharing a file name (e.g. `dog/0.png`, `cat/0.png`) get
    their folder's name in front, so no input's audio overwrites another's."""
    stems = [_stem(u) for u in inputs]
    for i, uri in enumerate(inputs):
        if stems.count(stems[i]) > 1:
            stems[i] = _stem(f"{Path(str(uri)).parent.name}__{Path(str(uri)).stem}")
    seen: dict[str, int] = {}
    for i, stem in enumerate(stems):
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:
            stems[i] = f"{stem}_{seen[stem] - 1}"
    return stems


def clip_embedding(uri: str, clip_encoder, aggregator: str = _T["aggregator"], num_frames: int = _E["num_frames"],
                   seed: int = _G["seed"]):
    """(aggregated CLIP vector, seconds of sound the input calls for)."""
    clip = read_clip(uri, num_frames=num_frames, max_seconds=MAX_SECONDS)
    frames = clip_encoder.encode_images(clip.frames)
    seconds = MAX_SECONDS if is_image(uri) else min(MAX_SECONDS, max(clip.duration, 0.5))
    return aggregate_frames(frames, aggregator, _stem(uri), seed), seconds


def generate_for_inputs(inputs, out_dir: str, clip_encoder, generator, negative, mapper=None,
                        conditioning: str = _G["conditioning"], samples: int = _G["samples"], seed: int = _G["seed"],
                        steps: int = _G["steps"], generator_guidance: float = _G["generator_guidance"],
                        scheduler: str = _G["scheduler"], mapper_guidance: float = _G["mapper_guidance"],
                        mapper_steps: int = _G["mapper_steps"], seconds: float | None = None) -> list[dict]:
    """For each input: `samples` wav files, and for a video a copy with each soundtrack muxed in."""
    written = []
    aggregator = (mapper.config.get("aggregator") or _T["aggregator"]) if mapper is not None else _T["aggregator"]
    for uri, stem in zip(inputs, output_stems(inputs)):
        vec, natural = clip_embedding(uri, clip_encoder, aggregator, seed=seed)
        length = seconds or natural
        if conditioning == "mapper":
            cond = mapper.map(vec[None], samples=samples, seed=derive_seed(seed, stem, 0, "mapper"),
                              guidance_scale=mapper_guidance, steps=mapper_steps)[0]
        else:
            cond = np.repeat(vec[None], samples, axis=0)
        seeds = [derive_seed(seed, stem, s) for s in range(samples)]
        waves = generator.generate(cond, seeds=seeds, negative=negative, steps=steps, guidance_scale=generator_guidance,
                                   seconds=length, scheduler=scheduler)
        for s, wave in enumerate(waves):
            wav = storage.join(out_dir, f"{stem}__s{s}.wav")
            write_wav(wav, wave, generator.sample_rate)
            entry = {"input": str(uri), "sample": s, "seed": seeds[s], "wav": wav, "video": None}
            if not is_image(uri):
                entry["video"] = storage.join(out_dir, f"{stem}__s{s}.mp4")
                mux_soundtrack(uri, wave, generator.sample_rate, entry["video"])
            written.append(entry)
    return written


def endpoint_embedding(spec: str, clip_encoder, generator, mapper, seed: int = _G["seed"],
                       mapper_guidance: float = _G["mapper_guidance"], mapper_steps: int = _G["mapper_steps"]) -> np.ndarray:
    """An interpolation end: an existing image/video file goes through CLIP and the mapper; anything else is text."""
    if storage.exists(spec):
        vec, _ = clip_embedding(spec, clip_encoder, (mapper.config.get("aggregator") or _T["aggregator"]), seed=seed)
        return mapper.map(vec[None], samples=1, seed=derive_seed(seed, _stem(spec), 0, "mapper"),
                          guidance_scale=mapper_guidance, steps=mapper_steps)[0, 0]
    return generator.encode_text([spec])[0]


def interpolate(a: str, b: str, n: int, out_dir: str, clip_encoder, generator, negative, mapper,
                seed: int = _G["seed"], steps: int = _G["steps"],
                generator_guidance: float = _G["generator_guidance"], scheduler: str = _G["scheduler"],
                seconds: float = _G["seconds"],
                mapper_guidance: float = _G["mapper_guidance"], mapper_steps: int = _G["mapper_steps"]) -> list[str]:
    """N audio files along the straight line from A to B in CLAP space (paper Fig. 6), all from one noise seed."""
    if n < 2:
        raise ValueError(f"--steps must be at least 2, got {n}")
    ea = endpoint_embedding(a, clip_encoder, generator, mapper, seed, mapper_guidance, mapper_steps)
    eb = endpoint_embedding(b, clip_encoder, generator, mapper, seed, mapper_guidance, mapper_steps)
    weights = np.linspace(0.0, 1.0, n)
    cond = np.stack([(1 - w) * ea + w * eb for w in weights]).astype(np.float32)
    # One seed for every step: the only thing that changes along the path is the conditioning.
    waves = generator.generate(cond, seeds=[seed] * n, negative=negative, steps=steps,
                               guidance_scale=generator_guidance, seconds=seconds, scheduler=scheduler)
    paths = []
    for i, (w, wave) in enumerate(zip(weights, waves)):
        uri = storage.join(out_dir, f"interp_{i:02d}_w{w:.2f}.wav")
        write_wav(uri, wave, generator.sample_rate)
        paths.append(uri)
    return paths
