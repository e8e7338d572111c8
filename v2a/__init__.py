"""v2a: vision-to-audio generation with the V2A-Mapper method (Wang et al., AAAI 2024)."""

__version__ = "0.1.0"

# First, before anything can start a Dask cluster in this process: the thread count model work is pinned to is
# the one the process started with (v2a/core/threads.py).
from v2a.core import threads as _threads  # noqa: E402,F401
