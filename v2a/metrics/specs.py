"""The metrics v2a computes, one row each: everything else (the configuration's accepted names, the CLI
choices, which extractor the evaluation loads, what needs the real audio or the clips' frames, how the
report labels and ranks a column) reads this table. Adding a metric is one row here plus its extractor:
`kind` says how `v2a.metrics.scores` turns the extractor's output into the value, `reads` which output.
Readers look the table up when they run (`spec`, `names`, `label`), so a row added at run time is seen too.

A module of plain data, importable without torch, so a config file is validated before any model code
loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# How a value is computed from an extractor's output (the functions are `v2a.metrics.scores.KINDS`):
#   frechet     Fréchet distance of the generated outputs' Gaussian fit to the real audio's
#   kl          KL divergence of paired class distributions (generated sample vs its clip's real audio)
#   inception   Inception Score of the generated class distributions
#   clip_cosine 100 x cosine with the clip's CLIP image embeddings (averaged over its frames)
#   video_cosine 100 x cosine with the extractor's own embedding of the clip's video frames
#   desync      mean |offset| Synchformer predicts between the sample and its clip's video (first and last 4.8 s)
#   mean        the mean of a per-sample value the extractor outputs
KINDS = ("frechet", "kl", "inception", "clip_cosine", "video_cosine", "desync", "mean")
# The kinds whose rows are a statistic of the whole set, not a mean of per-sample values: no `scores` rows;
# their inputs go to `features` when kept, and `v2a compare` pairs them from there.
SET_KINDS = ("frechet", "inception")

# How a kind's rows get their 95 % interval (`v2a.metrics.bootstrap`, clips resampled with all their samples):
#   per-sample      the value is a mean of per-sample values: always, from those values (the evaluation stores
#                   them, which is what `v2a compare` pairs); 1000 resamples cost milliseconds
#   set             a statistic of the whole set, recomputed on each resample: always (Inception Score: one small
#                   product per resample, 15 s to 3 min for 1000 resamples of 15k samples on 2 CPU cores)
#   set-on-request  the same, only with `evaluate.bootstrap N` resamples (Fréchet: a covariance and an
#                   eigenvalue solve per resample, seconds each at 2048 dimensions; benchmarks/bootstrap_cost.py)
INTERVALS = {"frechet": "set-on-request", "kl": "per-sample", "inception": "set", "clip_cosine": "per-sample",
             "video_cosine": "per-sample", "desync": "per-sample", "mean": "per-sample"}


@dataclass(frozen=True)
class MetricSpec:
    name: str               # the `metric` value of a results row
    label: str              # its column title in tables and the listening report
    extractor: str          # the profile's `extractors:` entry it runs on
    needs_reference: bool   # compares the generated audio with the real audio of the same clips
    needs_frames: bool      # needs the clips' video frames (CLIP image embeddings)
    lower_is_better: bool
    description: str
    kind: str               # one of KINDS
    reads: str              # the extractor output it reads: "embedding", "logits", "frames" (per-clip frame
                            # arrays) or a name the extractor's own `outputs()` gives
    needs_video: bool = False  # needs the clips' decoded video frames (ImageBind's vision tower), not CLIP embeddings
    video_fps: float | None = None  # the rate those frames are decoded at
    reference_row: tuple[str, str] | None = None  # (name, label) of a row scoring the real audio the same way


METRIC_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("fd", "FD", "panns", True, False, True,
               "Fréchet distance of PANNs Cnn14 embeddings, generated vs real (paper Table 1)", "frechet", "embedding"),
    MetricSpec("fad", "FAD", "vggish", True, False, True,
               "Fréchet distance of VGGish embeddings, generated vs real (paper Table 1)", "frechet", "frames"),
    MetricSpec("cs", "CS", "wav2clip", False, True, False,
               "100 × cosine of the clip's CLIP image embedding and the generated audio's Wav2CLIP embedding",
               "clip_cosine", "embedding", reference_row=("cs_reference", "CS of the real audio")),
    MetricSpec("kl", "KL", "panns", True, False, True,
               "KL divergence of the PANNs AudioSet class distributions, per clip pair, averaged", "kl", "logits"),
    MetricSpec("is", "IS", "panns", False, False, False,
               "Inception Score on the PANNs AudioSet class distributions of the generated audio", "inception",
               "logits"),
    # av-benchmark's columns (MMAudio's VGGSound table): PaSST at 32 kHz, one zero-padded 10-s window.
    MetricSpec("fd_passt", "FD_PaSST", "passt", True, False, True,
               "Fréchet distance of PaSST 768-d scene embeddings, generated vs real (av-benchmark FD-PASST)",
               "frechet", "embedding"),
    MetricSpec("kl_passt", "KL_PaSST", "passt", True, False, True,
               "KL divergence of the PaSST AudioSet class distributions, per clip pair, averaged (av-benchmark)",
               "kl", "logits"),
    MetricSpec("is_passt", "IS_PaSST", "passt", False, False, False,
               "Inception Score on the PaSST AudioSet class distributions of the generated audio (av-benchmark)",
               "inception", "logits"),
    MetricSpec("ib", "IB", "imagebind", False, False, False,
               "100 × cosine of the clip's ImageBind video embedding and the generated audio's ImageBind audio "
               "embedding (av-benchmark IB-Score)", "video_cosine", "embedding", needs_video=True, video_fps=0.5),
    MetricSpec("desync", "DeSync", "synchformer", False, False, True,
               "mean |audio-visual offset| (s) Synchformer predicts between the clip's video and the generated audio, "
               "over the first and last 4.8 s (av-benchmark DeSync)", "desync", "offsets", needs_video=True,
               video_fps=25.0),
)


class _Table(Mapping):
    """name -> MetricSpec, read from METRIC_SPECS at each lookup (a row added at run time is seen)."""

    def __getitem__(self, name: str) -> MetricSpec:
        for s in METRIC_SPECS:
            if s.name == name:
                return s
        raise KeyError(name)

    def __iter__(self):
        return iter([s.name for s in METRIC_SPECS])

    def __len__(self) -> int:
        return len(METRIC_SPECS)


SPECS: Mapping[str, MetricSpec] = _Table()
# The names as the file defines them (the config's accepted values are fixed when it is imported).
METRICS: tuple[str, ...] = tuple(s.name for s in METRIC_SPECS)


def names() -> tuple[str, ...]:
    """Every metric, in the table's order (the order rows are computed and shown in)."""
    return tuple(SPECS)


def spec(name: str) -> MetricSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; accepted: {', '.join(names())}") from None


def extractor_of(name: str) -> str:
    """Which extractor a metric runs on (the evaluation task loads exactly these models)."""
    return spec(name).extractor


def reference_rows() -> dict[str, str]:
    """{name: label} of the rows that score the real audio (one item per clip), e.g. cs_reference."""
    return dict(s.reference_row for s in METRIC_SPECS if s.reference_row)


def label(name: str) -> str:
    """A results row's metric as tables title it (its own name when the table has no such metric)."""
    if name in SPECS:
        return SPECS[name].label
    return reference_rows().get(name, name)


def lower_is_better(name: str) -> bool:
    return name in SPECS and SPECS[name].lower_is_better


def row_order() -> tuple[str, ...]:
    """Every metric row name in the table's order, each reference row right after its metric."""
    return tuple(k for s in METRIC_SPECS for k in (s.name, *(s.reference_row[:1] if s.reference_row else ())))
