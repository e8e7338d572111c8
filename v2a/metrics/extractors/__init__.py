"""Metric extractors built from a profile's `extractors:` section.

    panns    -> PANNs Cnn14 16 kHz (FD embedding, KL / IS logits)
    vggish   -> VGGish (FAD frames)
    wav2clip -> Wav2CLIP audio encoder (CLIP-Score)
    passt    -> PaSST-S 32 kHz (FD_PaSST embedding, KL_PaSST / IS_PaSST logits; av-benchmark)
    imagebind-> ImageBind vision + audio towers (IB score; av-benchmark)
    synchformer -> Synchformer audio-visual offset classifier (DeSync; av-benchmark)

A section with `pretrained: true` loads the official weights from its `checkpoint:` path (and
fails at build time, naming the field, when that is missing); otherwise the network gets
seeded random weights at the sizes the section gives: exact sizes in `paper-arch`, scaled
down in `tiny`.
"""

from __future__ import annotations

from typing import Callable

from v2a.metrics.extractors import cnn14, imagebind, passt, synchformer, vggish, wav2clip
from v2a.metrics.extractors._common import (CheckpointFormatError, Extractor, ExtractorConfigError,
                                            MissingCheckpointError)
from v2a.metrics.extractors.cnn14 import Cnn14Extractor
from v2a.metrics.extractors.vggish import VGGishExtractor
from v2a.metrics.extractors.wav2clip import Wav2CLIPExtractor

# name in a profile's `extractors:` section -> the module that builds it (its `build` and `DEFAULTS`)
MODULES = {"panns": cnn14, "vggish": vggish, "wav2clip": wav2clip, "passt": passt, "imagebind": imagebind,
           "synchformer": synchformer}
BUILDERS: dict[str, Callable[..., Extractor]] = {name: module.build for name, module in MODULES.items()}
EXTRACTOR_NAMES = tuple(BUILDERS)


def sample_rate_of(name: str, section: dict | None) -> int:
    """The rate an extractor runs at, read from its profile section without building it."""
    from v2a.metrics.extractors._common import resolve_section

    return int(resolve_section(name, section, MODULES[name].DEFAULTS)["sample_rate"])


def build_extractor(name: str, section: dict | None, device: str = "cpu") -> Extractor:
    """One extractor from its profile section (`extractors.<name>`)."""
    if name not in BUILDERS:
        raise ExtractorConfigError(f"unknown extractor {name!r}; accepted: {', '.join(BUILDERS)}")
    return BUILDERS[name](section, device=device, key=name)


def build_extractors(sections: dict | None, device: str = "cpu", names=None) -> dict[str, Extractor]:
    """Every extractor of a profile's `extractors:` mapping (or only `names`), keyed by name."""
    sections = dict(sections or {})
    unknown = sorted(set(sections) - set(BUILDERS))
    if unknown:
        raise ExtractorConfigError(f"extractors: unknown key(s) {unknown}; accepted: {', '.join(BUILDERS)}")
    wanted = list(names) if names is not None else [n for n in BUILDERS if n in sections]
    return {n: build_extractor(n, sections.get(n), device) for n in wanted}


__all__ = [
    "BUILDERS", "EXTRACTOR_NAMES", "build_extractor", "build_extractors", "sample_rate_of", "Extractor", "Cnn14Extractor",
    "VGGishExtractor", "Wav2CLIPExtractor", "ExtractorConfigError", "MissingCheckpointError",
    "CheckpointFormatError",
]
