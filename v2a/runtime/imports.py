"""The model libraries, imported once per process before any task thread starts.

Why: diffusers and transformers resolve their public names lazily (`from diffusers import AutoencoderKL`
imports the submodule on first access, through the package's `__getattr__`), and that first resolution
is not safe when two threads do it at once. A fresh process whose two generation shards started
together failed with `ImportError: cannot import name 'AutoencoderKL' from 'diffusers'`. So every
process that runs model tasks imports these names up front, while it is still single-threaded:

- the flow's process, at the start of each stage flow that builds models (flows call `import_model_libraries`);
- each Dask worker at start-up (a worker plugin, flows/runners.py) and each Ray worker
  (`worker_process_setup_hook`, flows/runners.py).

`v2a.runtime.model_cache` calls it again before every build, under a lock, so library users who never
start a flow are safe too; such a late import is written to the trace (`V2A_TRACE_DIR`, v2a.runtime.trace),
where the rehearsal test looks for it.

Every `from <library> import <name>` in v2a must have its name listed here (tests/runtime checks it).
"""

from __future__ import annotations

import importlib
import threading

from v2a.runtime import trace

# library -> the names v2a imports from it (each resolved here: resolving is the lazy, racy step).
MODEL_LIBRARIES: dict[str, tuple[str, ...]] = {
    "diffusers": ("AutoencoderKL", "DDIMScheduler", "DPMSolverMultistepScheduler", "UNet2DConditionModel"),
    "transformers": ("AutoTokenizer", "ClapTextConfig", "ClapTextModelWithProjection", "RobertaConfig",
                     "RobertaModel", "SpeechT5HifiGan", "SpeechT5HifiGanConfig"),
    "open_clip": ("CLIP", "create_model"),
}

_LOCK = threading.Lock()
_done = False


def imported() -> bool:
    return _done


def import_model_libraries() -> None:
    """Import every model library and resolve the names v2a uses; later calls return at once."""
    global _done
    if _done:
        return
    with _LOCK:
        if _done:
            return
        for module, names in MODEL_LIBRARIES.items():
            try:
                lib = importlib.import_module(module)
            except ImportError:
                continue  # an optional library that is not installed: its builder raises its own error
            for name in names:
                getattr(lib, name)
        _import_laion_clap()
        _done = True
        trace.record("imports", "model libraries")


def worker_setup() -> None:
    """Ray's `worker_process_setup_hook` and the Dask worker plugin call this in each new worker process."""
    import_model_libraries()


def _import_laion_clap() -> None:
    # laion_clap reaches for the hub and prints at import: v2a.models.clap imports it quietly and offline.
    from v2a.models.clap import laion_htsat

    try:
        laion_htsat()
    except ImportError:
        pass
