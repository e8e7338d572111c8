"""The metrics v2a computes, one row each: everything else (the configuration's accepted names, the CLI
choices, which extractor the evaluation loads, what needs the real audio or the clips' frames, how the
report labels and ranks a column) reads this table. Adding a metric is one row here plus its extractor.

A module of plain data, importable without torch, so a config file is validated before any model code
loads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str               # the `metric` value of a results row
    label: str              # its column title in tables and the listening report
    extractor: str          # the profile's `extractors:` entry it runs on
    needs_reference: bool   # compares the generated audio with the real audio of the same clips
    needs_frames: bool      # needs the clips' video frames (CLIP image embeddings)
    lower_is_better: bool
    description: str
    needs_video: bool = False  # needs the clips' decoded video frames (ImageBind's vision tower), not CLIP embeddings
    video_fps: float | None = None  # the rate those frames are decoded at


METRIC_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("fd", "FD", "panns", True, False, True,
               "Fréchet distance of PANNs Cnn14 embeddings, generated vs real (paper Table 1)"),
    MetricSpec("fad", "FAD", "vggish", True, False, True,
               "Fréchet distance of VGGish embeddings, generated vs real (paper Table 1)"),
    MetricSpec("cs", "CS", "wav2clip", False, True, False,
               "100 × cosine of the clip's CLIP image embedding and the generated audio's Wav2CLIP embedding"),
    MetricSpec("kl", "KL", "panns", True, False, True,
               "KL divergence of the PANNs AudioSet class distributions, per clip pair, averaged"),
    MetricSpec("is", "IS", "panns", False, False, False,
               "Inception Score on the PANNs AudioSet class distributions of the generated audio"),
    # av-benchmark's columns (MMAudio's VGGSound table): PaSST at 32 kHz, one zero-padded 10-s window.
    MetricSpec("fd_passt", "FD_PaSST", "passt", True, False, True,
               "Fréchet distance of PaSST 768-d scene embeddings, generated vs real (av-benchmark FD-PASST)"),
    MetricSpec("kl_passt", "KL_PaSST", "passt", True, False, True,
               "KL divergence of the PaSST AudioSet class distributions, per clip pair, averaged (av-benchmark)"),
    MetricSpec("is_passt", "IS_PaSST", "passt", False, False, False,
               "Inception Score on the PaSST AudioSet class distributions of the generated audio (av-benchmark)"),
    MetricSpec("ib", "IB", "imagebind", False, False, False,
               "100 × cosine of the clip's ImageBind video embedding and the generated audio's ImageBind audio "
               "embedding (av-benchmark IB-Score)", needs_video=True, video_fps=0.5),
    MetricSpec("desync", "DeSync", "synchformer", False, False, True,
               "mean |audio-visual offset| (s) Synchformer predicts between the clip's video and the generated audio, "
               "over the first and last 4.8 s (av-benchmark DeSync)", needs_video=True, video_fps=25.0),
)

SPECS: dict[str, MetricSpec] = {s.name: s for s in METRIC_SPECS}
METRICS: tuple[str, ...] = tuple(SPECS)
# Which extractor each metric runs on (the evaluation task loads exactly these models).
EXTRACTOR_OF: dict[str, str] = {s.name: s.extractor for s in METRIC_SPECS}
LOWER_IS_BETTER: frozenset[str] = frozenset(s.name for s in METRIC_SPECS if s.lower_is_better)


def spec(name: str) -> MetricSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; accepted: {', '.join(METRICS)}") from None
