"""The pipeline's stages: ingest, embed (+ domain_gap), train, generate, evaluate (+ reevaluate), report.

A stage reads and writes tables through `v2a.io` and never imports another stage; `pyproject.toml`'s
import-linter contracts enforce it (`lint-imports`).

Each stage has one shape (`v2a.stages.shape`) and is listed here, once: the name a flow asks for, and the
module whose `STAGE` defines it. Adding a stage is its module, its configuration section, its table's
schema, and one line here. (domain_gap draws embed's pictures and reevaluate runs evaluate again: helpers of
those stages, not stages of their own.)
"""

from __future__ import annotations

import importlib

STAGES = {
    "ingest": "v2a.stages.ingest",
    "embed": "v2a.stages.embed",
    "train": "v2a.stages.train",
    "generate": "v2a.stages.generate",
    "evaluate": "v2a.stages.evaluate",
    "report": "v2a.stages.report",
}


def stage(name: str):
    """The `Stage` named `name` (its module is imported on first use: a stage's models load only when it runs)."""
    try:
        module = STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; listed: {', '.join(STAGES)}") from None
    return importlib.import_module(module).STAGE
