"""Where a result came from: the code's git commit (when v2a runs from a checkout)."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout v2a is imported from, `+dirty` when tracked files differ; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "diff", "--quiet", "HEAD", "--", "."], timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.returncode == 1 else "")


# The keys a caller (the pipeline, a Prefect task) may add to every results row it writes.
PROVENANCE_KEYS = ("config_digest", "profile", "run_seed", "flow_run_id")
