"""MMAudio's VGGSound-test table (Cheng et al., CVPR 2025, arXiv 2412.15322, Table 1): its columns and
published rows, for `v2a results --table mmaudio` and the listening report.

Protocol of every number: av-benchmark (github.com/hkchengrex/av-benchmark), VGGSound test, 8-s clips, the
released PaSST / PANNs / VGGish / ImageBind / Synchformer weights; IB x 100; DeSync in seconds.

Verification: these rows were transcribed from a third-party copy of the table. The paper itself
(arXiv 2412.15322) could not be read past its opening here, so no number below has been checked against
it: `VERIFIED` is False, and every table that quotes them says so. Check them before publishing.
"""

from __future__ import annotations

SOURCE = "MMAudio (Cheng et al., CVPR 2025, arXiv 2412.15322), Table 1, VGGSound test, av-benchmark, 8-s clips"
VERIFIED = False
NOT_VERIFIED_NOTE = ("not yet checked against the paper itself (transcribed from a third-party copy of its "
                     "Table 1): verify before quoting")

# (column title, v2a metric name or None when v2a does not compute it), in MMAudio's order.
COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("FD_PaSST", "fd_passt"), ("FD_PANNs", "fd"), ("FD_VGG", "fad"), ("KL_PANNs", "kl"),
    ("KL_PaSST", "kl_passt"), ("IS", "is"), ("IB", "ib"), ("DeSync", "desync"),
)

# method -> values in COLUMNS order.
ROWS: dict[str, tuple[float, ...]] = {
    "V2A-Mapper": (84.57, 8.40, 0.84, 2.69, 2.56, 12.47, 22.58, 1.225),
    "Frieren": (106.10, 11.45, 1.34, 2.73, 2.86, 12.25, 22.78, 0.851),
    "FoleyCrafter": (140.09, 16.24, 2.51, 2.30, 2.23, 15.68, 25.68, 1.225),
    "MMAudio-S-16kHz": (70.19, 5.22, 0.79, 1.65, 1.59, 14.44, 29.13, 0.483),
    "MMAudio-L-44.1kHz": (60.60, 4.72, 0.97, 1.65, 1.40, 17.40, 33.22, 0.442),
}


def quoted_rows() -> list[dict]:
    return [{"method": m, **{title: v for (title, _), v in zip(COLUMNS, values)}} for m, values in ROWS.items()]
