"""The pipeline's stages: ingest, embed (+ domain_gap), train, generate, evaluate (+ reevaluate), report.

A stage reads and writes tables through `v2a.io` and never imports another stage; `pyproject.toml`'s
import-linter contracts enforce it (`lint-imports`).

The stages that map work items (`v2a.stages.shape`) are listed here, once: the name a flow asks for, and
the module whose `STAGE` defines it. Adding such a stage is its module, its configuration section, its
table's schema, and one line here.
"""

from __future__ import annotations

import importlib

STAGES = {
    "embed": "v2a.stages.embed",
    "generate": "v2a.stages.generate",
    "evaluate": "v2a.stages.evaluate",
}


def stage(name: str):
    """The `Stage` named `name` (its module is imported on first use: a stage's models load only when it runs)."""
    try:
        module = STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; listed: {', '.join(STAGES)}") from None
    return importlib.import_module(module).STAGE
