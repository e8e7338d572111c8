"""Typed pipeline configuration, validated once at the edge with errors that name the bad field."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from v2a import storage
from v2a.aggregate import AGGREGATORS


class ConfigError(ValueError):
    pass


def _check_choice(section: str, name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{section}.{name} = {value!r}; accepted: {', '.join(map(str, choices))}")


def _check_positive(section: str, name: str, value, allow_zero: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or (value < 0 if allow_zero else value <= 0):
        raise ConfigError(f"{section}.{name} = {value!r}; must be a {'non-negative' if allow_zero else 'positive'} number")


@dataclass
class DataConfig:
    csv: str | None = None            # VGGSound-format CSV (youtube_id,start_seconds,label,split)
    videos: str | None = None         # folder holding {youtube_id}_{start:06d}.mp4
    images: str | None = None         # an image folder (label sub-folders), e.g. ImageHear
    dataset: str = "vggsound"

    def validate(self) -> None:
        if not self.csv and not self.images:
            raise ConfigError("data: give data.csv (+ data.videos) or data.images")
        if self.csv and not self.videos:
            raise ConfigError("data.videos is required when data.csv is given")


@dataclass
class EmbedConfig:
    num_frames: int = 10               # evenly spaced CLIP frames per video
    frame_rate: float | None = None    # frames per second instead of num_frames (1.0 on a 10-s clip = 10 frames)
    max_seconds: float = 10.0          # VGGSound clips are 10 s
    shard_size: int = 256
    batch_size: int = 64               # CLIP frames per forward pass
    device: str = "cpu"
    decoder: str = "auto"              # auto | pyav | decord | torchcodec: same frames and audio, different speed
    workers: int = 0                   # decode workers per shard; 0: one per core (at most 16)
    pool: str = "auto"                 # decode workers are threads or processes; auto: processes from 4 workers

    def validate(self) -> None:
        for name in ("num_frames", "frame_rate", "max_seconds", "shard_size", "batch_size"):
            _check_positive("embed", name, getattr(self, name))
        _check_positive("embed", "workers", self.workers, allow_zero=True)
        from v2a.decoders import BACKENDS

        _check_choice("embed", "decoder", self.decoder, ("auto", *BACKENDS))
        _check_choice("embed", "pool", self.pool, ("auto", "thread", "process"))


@dataclass
class TrainStageConfig:
    mapper: str = "diff-transformer"   # the paper's best
    aggregator: str = "mean"           # paper Table 5
    options: dict[str, Any] = field(default_factory=dict)  # passed to v2a.mapper.train.TrainConfig

    def validate(self) -> None:
        _check_choice("train", "mapper", self.mapper, ("reg-mlp", "reg-transformer", "diff-mlp", "diff-transformer"))
        _check_choice("train", "aggregator", self.aggregator, AGGREGATORS)
        self.train_config()

    def train_config(self):
        """The options as the trainer will take them, so that a bad one fails at load time, not hours in."""
        from v2a.mapper.train import TrainConfig

        if not isinstance(self.options, dict):
            raise ConfigError(f"train.options must be a mapping, got {type(self.options).__name__}")
        known = {f.name for f in dataclasses.fields(TrainConfig)} - {"mapper"}
        unknown = sorted(set(self.options) - known)
        if unknown:
            hint = " (train.mapper sets the mapper)" if "mapper" in unknown else ""
            raise ConfigError(f"train.options: unknown field(s) {unknown}{hint}; accepted: {sorted(known)}")
        try:
            return TrainConfig(mapper=self.mapper, **self.options)
        except ValueError as err:  # "TrainConfig.<field>=<value> is not accepted; accepted: ..."
            raise ConfigError(f"train.options: {str(err).replace('TrainConfig.', 'train.options.', 1)}") from None


@dataclass
class GenerateConfig:
    split: str = "test"
    conditioning: str = "mapper"       # mapper | no-mapper | text (paper Table 3 baselines)
    samples: int = 1
    seconds: float = 10.0
    steps: int = 200                   # AudioLDM DDIM steps
    guidance_scale: float = 2.5
    scheduler: str = "ddim"
    mapper_guidance: float = 0.9       # paper's best
    mapper_steps: int = 200
    batch_size: int = 8
    seed: int = 0
    max_clips: int | None = None
    device: str = "cpu"

    def validate(self) -> None:
        _check_choice("generate", "conditioning", self.conditioning, ("mapper", "no-mapper", "text"))
        _check_choice("generate", "scheduler", self.scheduler, ("ddim", "dpmsolver++"))
        for name in ("samples", "seconds", "steps", "mapper_steps", "batch_size", "max_clips"):
            _check_positive("generate", name, getattr(self, name))
        _check_positive("generate", "guidance_scale", self.guidance_scale, allow_zero=True)
        _check_positive("generate", "mapper_guidance", self.mapper_guidance, allow_zero=True)


@dataclass
class EvaluateConfig:
    split: str = "test"
    metrics: list[str] = field(default_factory=lambda: ["fd", "fad", "cs", "kl", "is"])

    def validate(self) -> None:
        for m in self.metrics:
            _check_choice("evaluate", "metrics", m, ("fd", "fad", "cs", "kl", "is"))


RUNNER_KINDS = ("thread", "dask", "ray")
# Shard tasks running at once on the thread runner. Model work is serialised by a lock per model,
# so more threads only hold more shards in memory; a few let the next shard's reads and cache
# checks overlap the current one's encoding, which keeps the GPU fed. (Prefect's own default is
# unbounded: ~779 VGGSound shards at once.)
DEFAULT_THREAD_WORKERS = 4


@dataclass
class RunnerConfig:
    """Where the stage tasks run: threads of this process (default), a Dask cluster, or Ray."""

    kind: str = "thread"
    max_workers: int | None = None     # thread: pool size (None: DEFAULT_THREAD_WORKERS)
    address: str | None = None         # dask: scheduler address (tcp://host:8786); ray: cluster address
    cluster_kwargs: dict[str, Any] = field(default_factory=dict)  # dask without address: LocalCluster kwargs
    init_kwargs: dict[str, Any] = field(default_factory=dict)     # ray: ray.init kwargs

    def validate(self) -> None:
        _check_choice("runner", "kind", self.kind, RUNNER_KINDS)
        _check_positive("runner", "max_workers", self.max_workers)
        for name in ("cluster_kwargs", "init_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"runner.{name} must be a mapping, got {type(getattr(self, name)).__name__}")
        if self.max_workers is not None and self.kind != "thread":
            raise ConfigError(f"runner.max_workers applies to kind 'thread', not {self.kind!r}")
        if self.cluster_kwargs and self.kind != "dask":
            raise ConfigError(f"runner.cluster_kwargs applies to kind 'dask', not {self.kind!r}")
        if self.cluster_kwargs and self.address:
            raise ConfigError("runner: give runner.address (an existing cluster) or runner.cluster_kwargs "
                              "(a local one), not both")
        if self.init_kwargs and self.kind != "ray":
            raise ConfigError(f"runner.init_kwargs applies to kind 'ray', not {self.kind!r}")
        if self.address is not None and self.kind == "thread":
            raise ConfigError("runner.address applies to kinds 'dask' and 'ray', not 'thread'")
        package = {"dask": "prefect_dask", "ray": "prefect_ray"}.get(self.kind)
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"runner.kind = {self.kind!r} needs the package {package.replace('_', '-')}, "
                              "which is not installed")


@dataclass
class CacheConfig:
    # Where Prefect keeps the cached task results (a path or URI); None: OUT/.prefect-results.
    location: str | None = None


@dataclass
class PipelineConfig:
    out: str
    data: DataConfig
    profile: str = "paper"
    run_id: str | None = None
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    train: TrainStageConfig = field(default_factory=TrainStageConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)

    def validate(self) -> "PipelineConfig":
        for part in (self.data, self.embed, self.train, self.generate, self.evaluate, self.runner):
            part.validate()
        return self

    @property
    def layout(self):
        """Where each table lives under `out`: the stages meet only at these files."""
        from v2a.io.layout import RunLayout

        return RunLayout(self.out)

    @property
    def cache_location(self) -> str:
        return self.cache.location or self.layout.prefect_results

    @property
    def mapper_dir(self) -> str:
        return self.layout.mapper(self.train.mapper)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self, *sections: str) -> str:
        """Hash of the named sections (all when none), used as a cache key for a stage's config."""
        d = self.to_dict()
        chosen = {k: d[k] for k in sections} if sections else d
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


_SECTIONS = {"data": DataConfig, "embed": EmbedConfig, "train": TrainStageConfig,
             "generate": GenerateConfig, "evaluate": EvaluateConfig, "runner": RunnerConfig, "cache": CacheConfig}


_SIMPLE_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "None": (type(None),)}


def _check_type(name: str, annotation: str, value) -> None:
    """A field written as `str`, `int | None`, `float`... must hold that type (YAML's `device: 0` is an int,
    which the stages would only refuse after Prefect started); other annotations are checked by validate()."""
    parts = [p.strip() for p in str(annotation).split("|")]
    if not all(p in _SIMPLE_TYPES for p in parts):
        return
    accepted = tuple(t for p in parts for t in _SIMPLE_TYPES[p])
    if isinstance(value, bool) and bool not in accepted:
        ok = False  # YAML's yes/no are booleans, not numbers
    else:
        ok = isinstance(value, accepted)
    if not ok:
        words = " or ".join({"str": "text", "int": "a whole number", "float": "a number", "bool": "true/false",
                             "None": "null"}[p] for p in parts)
        raise ConfigError(f"{name} = {value!r} ({type(value).__name__}); must be {words}"
                          + (" (quote it: YAML reads 0 as a number)" if "str" in parts else ""))


def _build(cls, values: dict, section: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{section} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{section}: unknown field(s) {unknown}; accepted: {sorted(fields)}")
    for name, value in values.items():
        _check_type(f"{section}.{name}", fields[name].type, value)
    return cls(**values)


def config_from_dict(values: dict) -> PipelineConfig:
    if not isinstance(values, dict):
        raise ConfigError(f"the config must be a mapping of sections (out:, data:, embed:, ...), "
                          f"got a {type(values).__name__}")
    values = dict(values)
    top = {f.name for f in dataclasses.fields(PipelineConfig)}
    unknown = sorted(set(values) - top)
    if unknown:
        raise ConfigError(f"unknown top-level field(s) {unknown}; accepted: {sorted(top)}")
    if "out" not in values:
        raise ConfigError("out: the output location (path or URI) is required")
    top_fields = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    for name in ("out", "profile", "run_id"):
        if name in values:
            _check_type(name, top_fields[name].type, values[name])
    for name, cls in _SECTIONS.items():
        values[name] = _build(cls, values.get(name) or {}, name)
    return PipelineConfig(**values).validate()


def load_config(uri: str) -> PipelineConfig:
    """The config file (YAML, or JSON, which YAML reads too), validated. A syntax error names its line."""
    fs, path = storage.filesystem(uri)
    with fs.open(path, "r") as handle:
        try:
            values = yaml.safe_load(handle)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"{uri}{where}: not valid YAML ({err.problem or err}); fix the file") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"{uri}: not valid YAML ({err}); fix the file") from err
    return config_from_dict(values if values is not None else {})
