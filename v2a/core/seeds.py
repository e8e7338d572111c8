"""Seeds derived from a run seed and a clip: the same clip gets the same noise whatever batch, worker or
order it is generated in, so a resumed or re-run generation is byte-identical."""

from __future__ import annotations

import hashlib


def derive_seed(run_seed: int, clip_id: str, sample: int = 0, purpose: str = "audio") -> int:
    digest = hashlib.sha256(f"{purpose}:{run_seed}:{clip_id}:{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**62 - 1)
