"""Where every table and folder of a pipeline output location lives: the run layout, named once.

The stages meet only at these locations, so every reader and writer asks this object for a path
instead of spelling one out.
"""

from __future__ import annotations

from dataclasses import dataclass

from v2a.core import storage


@dataclass(frozen=True)
class GenerationLayout:
    """One generation run: its audio files and its `generations` table."""

    root: str

    @property
    def audio(self) -> str:
        return storage.join(self.root, "audio")

    @property
    def table(self) -> str:
        return storage.join(self.root, "table")

    @property
    def plan(self) -> str:
        """The clips and samples the run set out to generate (written before the first shard starts)."""
        return storage.join(self.root, "plan.json")

    @property
    def run_id(self) -> str:
        return str(self.root).rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RunLayout:
    """The folder a pipeline writes (a local path or any fsspec URI)."""

    out: str

    @property
    def clips(self) -> str:
        return storage.join(self.out, "clips.parquet")

    @property
    def embeddings(self) -> str:
        return storage.join(self.out, "embeddings")

    @property
    def errors(self) -> str:
        return storage.join(self.out, "errors")

    @property
    def mappers(self) -> str:
        return storage.join(self.out, "mappers")

    def mapper(self, name: str) -> str:
        return storage.join(self.out, "mappers", name)

    @property
    def generations_root(self) -> str:
        return storage.join(self.out, "generations")

    def generations(self, run_id: str) -> GenerationLayout:
        return GenerationLayout(storage.join(self.out, "generations", run_id))

    @property
    def results(self) -> str:
        return storage.join(self.out, "results")

    @property
    def scores(self) -> str:
        """Per-sample values of the results rows that average them (storage_schemas/scores.py)."""
        return storage.join(self.out, "scores")

    @property
    def features(self) -> str:
        """The vectors of the set statistics (Fréchet, Inception Score), kept on request (storage_schemas/features.py)."""
        return storage.join(self.out, "features")

    @property
    def reference_stats(self) -> str:
        """Extractor statistics and per-clip features of the real audio, computed once per protocol."""
        return storage.join(self.out, "reference_stats")

    @property
    def reports(self) -> str:
        return storage.join(self.out, "reports")

    @property
    def listening(self) -> str:
        return storage.join(self.out, "listening")

    @property
    def prefect_results(self) -> str:
        return storage.join(self.out, ".prefect-results")
