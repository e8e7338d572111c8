"""Numbers reported in the V2A-Mapper paper (Wang et al., AAAI 2024), for side-by-side reports.

Targets to compare against, not to tune to. Protocol of every number: VGGSound test set
(15,446 clips of 10 s), 16 kHz audio; FD on PANNs Cnn14 embeddings, FAD on VGGish, CS =
100 x cosine(CLIP image embedding, Wav2CLIP audio embedding); "ImageHear CS" is the same CS on
the 101 ImageHear images. None marks a value the paper does not give.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from v2a.core.rates import PANNS_SAMPLE_RATE, VGGISH_SAMPLE_RATE, WAV2CLIP_SAMPLE_RATE

PAPER = "V2A-Mapper (Wang, Ma, Pascual, Cartwright, Cai), AAAI 2024"

PROTOCOL = {
    "fd": {"extractor": "panns-cnn14-16k", "sample_rate": PANNS_SAMPLE_RATE, "clip_seconds": 10.0},
    "fad": {"extractor": "vggish", "sample_rate": VGGISH_SAMPLE_RATE, "clip_seconds": 10.0},
    "cs": {"extractor": "wav2clip", "sample_rate": WAV2CLIP_SAMPLE_RATE, "clip_seconds": 10.0},
    "dataset": "vggsound", "split": "test", "n_clips": 15446,
}


@dataclass(frozen=True)
class PaperRow:
    table: str
    method: str
    fd: float | None
    fad: float | None
    cs: float | None
    imagehear_cs: float | None
    seconds_per_sample: float | None = None   # whole pipeline, one RTX A6000
    trainable_params_m: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# Table 1: comparison with the state of the art.
TABLE1 = (
    PaperRow("table1", "Reference", 0.0, 0.0, 8.925, None),
    PaperRow("table1", "Im2Wav", 51.500, 6.005, 7.827, 9.843, 864.12, 360.40),
    PaperRow("table1", "CLIPSonic-IQ", 27.124, 3.495, 7.251, 11.392, 53.94, 142.58),
    PaperRow("table1", "V2A-Mapper", 24.168, 0.841, 9.720, 11.950, 35.45, 48.83),
)

# Table 4: mapper variants (FD / CS / ImageHear CS; FAD not reported).
TABLE4 = (
    PaperRow("table4", "regression MLP", 35.059, None, 9.927, 12.048),
    PaperRow("table4", "regression Transformer", 29.378, None, 10.076, 12.317),
    PaperRow("table4", "diffusion MLP", 28.803, None, 8.685, 10.449),
    PaperRow("table4", "diffusion Transformer", 24.168, None, 9.720, 11.950),
)

# Table 5: the aggregator over per-frame CLIP embeddings.
TABLE5 = (
    PaperRow("table5", "random", 24.826, None, 9.200, 11.465),
    PaperRow("table5", "middle", 25.569, None, 9.192, 11.901),
    PaperRow("table5", "mean", 24.168, None, 9.720, 11.950),
)

# Table 6: the AudioLDM generator (seconds are the generator's own time per sample). The table
# also gives generator sizes, 185.04 M (-s) and 739.14 M (-l); they are not mapper parameters,
# so they stay out of `trainable_params_m`.
TABLE6 = (
    PaperRow("table6", "audioldm-s", 25.635, None, 9.547, 11.586),
    PaperRow("table6", "audioldm-s-v2", 24.168, None, 9.720, 11.950, 9.33),
    PaperRow("table6", "audioldm-l", 25.130, None, 9.531, 12.016, 11.58),
)

TABLES = {"table1": TABLE1, "table4": TABLE4, "table5": TABLE5, "table6": TABLE6}


def table_rows(table: str = "table1") -> list[dict]:
    """A paper table as plain dicts (one per method), for DataFrames and reports."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; accepted: {', '.join(TABLES)}")
    return [row.as_dict() for row in TABLES[table]]


def paper_value(method: str, metric: str, table: str = "table1") -> float | None:
    """One reported number, e.g. paper_value("V2A-Mapper", "fd") -> 24.168."""
    for row in TABLES[table]:
        if row.method == method:
            return getattr(row, metric)
    raise KeyError(f"{method!r} is not in {table}; methods: {[r.method for r in TABLES[table]]}")
