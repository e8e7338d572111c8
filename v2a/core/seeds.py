"""Seeds derived from a run seed and a clip: the same clip gets the same noise whatever batch, worker or
order it is generated in, so a resumed or re-run generation is byte-identical."""

from __future__ import annotations

import contextlib
import hashlib
import threading


def derive_seed(run_seed: int, clip_id: str, sample: int = 0, purpose: str = "audio") -> int:
    digest = hashlib.sha256(f"{purpose}:{run_seed}:{clip_id}:{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**62 - 1)


# torch's default generator is one per process, shared by every thread. A random init seeded on it while
# another thread seeds or draws from it gets a mix of both streams: two extractors built side by side by
# the evaluation's units came out with different weights on every run. Every seeded init holds this lock.
_GLOBAL_RNG = threading.RLock()


@contextlib.contextmanager
def seeded_global_rng(seed: int):
    """torch's global RNG seeded with `seed` for the body, restored after, and held by this thread alone."""
    import torch

    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
