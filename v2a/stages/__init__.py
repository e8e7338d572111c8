"""The pipeline's stages: ingest, embed (+ domain_gap), train, generate, evaluate (+ reevaluate), report.

A stage reads and writes tables through `v2a.io` and never imports another stage; `pyproject.toml`'s
import-linter contracts enforce it (`lint-imports`)."""
