"""The pipeline configuration: one typed pydantic model per section, each field with its type, the
paper's default, its bounds and a one-line description, written here and nowhere else.

The CLI builds its options from these models (flows/cli_options.py), the flows take them as
parameters (so a deployment's run form in the Prefect UI shows every field), and a config file is
checked against them at the edge, before any Prefect or model code loads. A bad value is refused
with one line naming the field and what it accepts (`ConfigError`).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from v2a.core import storage
from v2a.core.aggregate import AGGREGATORS
from v2a.core.fingerprint import short_digest
from v2a.media.decoders import BACKENDS
from v2a.models import sampling as audioldm
from v2a.core.names import CONDITIONINGS, MAPPER_GUIDANCE, MAPPER_NAMES, MAPPER_STEPS, POOLS, SCHEDULERS
from v2a.mapper.settings import TrainConfig
from v2a.metrics.protocols import CHANNEL_RULES, DEFAULT_PROTOCOL, PROTOCOL_NAMES, PROTOCOLS
from v2a.metrics.specs import METRICS


class ConfigError(ValueError):
    pass


class ConfigDeprecationWarning(DeprecationWarning):
    """A config key or CLI flag read under its old name. The CLI shows these, which Python hides by
    default outside __main__."""


# Integers are strict: YAML's `true` is not 1 and 2.5 is not a frame count. Numbers refuse booleans too.
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
PositiveFloat = Annotated[float, Field(strict=True, gt=0)]
NonNegativeFloat = Annotated[float, Field(strict=True, ge=0)]

RUNNER_KINDS = ("thread", "dask", "ray")
# What runner.cluster_kwargs may still set when runner.gpus starts one worker per GPU.
GPU_CLUSTER_KWARGS = ("threads_per_worker", "memory_limit", "dashboard_address")
DECODERS = ("auto", *BACKENDS)
# Shard tasks running at once on the thread runner. Model work is serialised by a lock per model,
# so more threads only hold more shards in memory; a few let the next shard's reads and cache
# checks overlap the current one's encoding, which keeps the GPU fed. (Prefect's own default is
# unbounded: ~779 VGGSound shards at once.)
DEFAULT_THREAD_WORKERS = 4


def _one_line(err: ValidationError, prefix: tuple = ()) -> str:
    """The first problem of a validation error as `section.field = value; accepted: ...`."""
    errors = err.errors(include_url=False)
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        where = (*prefix, *extra[0]["loc"][:-1])
        names = sorted(str(e["loc"][-1]) for e in extra if e["loc"][:-1] == extra[0]["loc"][:-1])
        model = _model_at(err.title, where[len(prefix):])
        accepted = f"; accepted: {sorted(model.model_fields)}" if model is not None else ""
        return (f"{'.'.join(map(str, where))}: " if where else "") + f"unknown field(s) {names}{accepted}"
    e = errors[0]
    loc = (*prefix, *e["loc"])
    name = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind, value = e["type"], e.get("input")
    if kind == "missing":
        field = _field_at(err.title, e["loc"])
        what = f" ({field.description})" if field is not None and field.description else ""
        return f"{name} is required{what}"
    if kind == "literal_error":
        return f"{name} = {value!r}; accepted: {e['ctx']['expected']}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{name} must be a mapping, got {type(value).__name__}"
    if kind == "value_error":  # our own validators: the message already names the field
        return str(e["ctx"]["error"])
    return f"{name} = {value!r}: {e['msg'][0].lower()}{e['msg'][1:]}"


def _model_at(title: str, loc) -> type[BaseModel] | None:
    model = _MODELS.get(title)
    for part in loc:
        field = model.model_fields.get(str(part)) if model is not None else None
        model = field.annotation if field is not None and isinstance(field.annotation, type) \
            and issubclass(field.annotation, BaseModel) else None
    return model


def _field_at(title: str, loc):
    model = _model_at(title, loc[:-1])
    return model.model_fields.get(str(loc[-1])) if model is not None else None


class Section(BaseModel):
    """A configuration section: unknown fields are refused, and so are bad values assigned later."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    _section: ClassVar[str] = ""
    _old_names: ClassVar[dict[str, str]] = {}  # old name → field, for a field renamed since
    # Fields that set how work is cut into tasks, not what is computed: left out of the digest, so changing
    # them neither renames a run nor makes it start over.
    _not_digested: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise ConfigError(_one_line(err, (self._section,) if self._section else ())) from None

    @model_validator(mode="before")
    @classmethod
    def _read_old_names(cls, values):
        # Files and saved deployment parameters written before a rename keep loading.
        if not cls._old_names or not isinstance(values, dict):
            return values
        for old, new in cls._old_names.items():
            if old not in values:
                continue
            if new in values:
                raise ValueError(f"{cls._section}.{old} is the old name of {cls._section}.{new}: give only "
                                 f"{cls._section}.{new}")
            warnings.warn(f"{cls._section}.{old} is deprecated: write {cls._section}.{new}, "
                          f"{cls.model_fields[new].description}", ConfigDeprecationWarning, stacklevel=2)
            values = {(new if k == old else k): v for k, v in values.items()}
        return values

    @classmethod
    def old_name_of(cls) -> dict[str, str]:
        """field → its old name, for each field renamed since (the inverse of `_old_names`)."""
        return {new: old for old, new in cls._old_names.items()}

    def __setattr__(self, name, value):
        try:
            super().__setattr__(name, value)
        except ValidationError as err:
            raise ConfigError(_one_line(err, (self._section,) if self._section else ())) from None


class DataConfig(Section):
    """Where the clips come from: a VGGSound-format CSV and its videos, or an image folder."""

    _section: ClassVar[str] = "data"
    csv: str | None = Field(None, description="VGGSound-format CSV (youtube_id,start_seconds,label,split)")
    videos: str | None = Field(None, description="folder holding {youtube_id}_{start:06d}.mp4")
    images: str | None = Field(None, description="an image folder with one sub-folder per label (e.g. ImageHear)")
    dataset: str = Field("vggsound", min_length=1, description="dataset name recorded with every clip and result")

    @model_validator(mode="after")
    def _a_source(self):
        if not self.csv and not self.images:
            raise ValueError("data: give data.csv (+ data.videos) or data.images")
        if self.csv and not self.videos:
            raise ValueError("data.videos is required when data.csv is given")
        return self


class EmbedConfig(Section):
    """Stage 2: CLIP frame embeddings and CLAP audio embeddings: one Parquet shard per `shard_size` clips, one
    task per `shards_per_task` shards."""

    _section: ClassVar[str] = "embed"
    num_frames: PositiveInt = Field(10, description="evenly spaced CLIP frames per video (paper: 10)")
    frame_rate: PositiveFloat | None = Field(
        None, description="frames per second instead of num_frames (1.0 on a 10-s clip = 10 frames)")
    max_seconds: PositiveFloat = Field(10.0, description="seconds of each clip read (VGGSound clips are 10 s)")
    shard_size: PositiveInt = Field(256, description="clips per shard: one Parquet file each, what a killed run "
                                                     "resumes from")
    shards_per_task: PositiveInt = Field(
        8, description="shards one task embeds in turn: a task is what Prefect schedules (its fixed cost is paid "
                       "per task) and what runs side by side")
    batch_size: PositiveInt = Field(64, description="CLIP frames per forward pass")
    device: str = Field("cpu", min_length=1, description="torch device of the encoders (cpu, cuda, cuda:1)")
    decoder: Literal[DECODERS] = Field(
        "auto", description="video decoder: same frames and audio, different speed; auto: the fastest installed")
    workers: NonNegativeInt = Field(0, description="decode workers per shard; 0: one per core (at most 16)")
    pool: Literal[POOLS] = Field("auto", description="decode workers are threads or processes; "
                                                     "auto: processes from 4 workers")
    _not_digested: ClassVar[tuple[str, ...]] = ("shards_per_task",)


class TrainStageConfig(Section, TrainConfig):
    """Stage 3: the mapper from CLIP to CLAP space, trained on the train split's pairs.

    Its fields are the trainer's (`v2a.mapper.settings.TrainConfig`: mapper, epochs, lr, batch_size, depth,
    ...; the paper's values by default) plus how frame embeddings become one clip vector."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    _section: ClassVar[str] = "train"
    _error_prefix: ClassVar[str] = "train"
    _refusal: ClassVar[str] = "{prefix}.{name} = {value!r}; accepted: {accepted}"  # as every section words it
    aggregator: Literal[AGGREGATORS] = Field("mean", description="how frame embeddings become one clip vector "
                                                                 "(paper Table 5: mean)")

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ConfigError:
            raise
        except ValueError as err:  # the trainer's own one-line refusal, already naming train.<field>
            raise ConfigError(str(err)) from None

    @model_validator(mode="before")
    @classmethod
    def _options_are_fields(cls, values):
        # Before the trainer's settings were fields of this section they sat under `train.options`:
        # such a file still loads, with its options read as the fields they name.
        if not isinstance(values, dict) or "options" not in values:
            return values
        values = dict(values)
        options = values.pop("options")
        if options is None:
            return values
        if not isinstance(options, dict):
            raise ValueError(f"train.options must be a mapping, got {type(options).__name__}")
        if "mapper" in options:
            raise ValueError("train.options.mapper: train.mapper sets the mapper")
        clash = sorted(set(options) & set(values))
        if clash:
            raise ValueError(f"train.options repeats train field(s) {clash}: give each once")
        warnings.warn("train.options is deprecated: write its fields directly under train:", ConfigDeprecationWarning,
                      stacklevel=2)
        return {**values, **options}

    def train_config(self) -> TrainConfig:
        """The trainer's settings alone (what `train_mapper` takes and a checkpoint records)."""
        return self.trainer_settings()


class GenerateConfig(Section):
    """Stage 4: AudioLDM conditioned on the mapped embeddings (or a baseline), one task per shard."""

    _section: ClassVar[str] = "generate"
    # `guidance_scale` was easily taken for the mapper's guidance (mapper_guidance here, and the mapper
    # checkpoint's own guidance_scale). The old name still loads, with a warning; the CLI keeps its old flag
    # and PipelineConfig.digest hashes the field under it.
    _old_names: ClassVar[dict[str, str]] = {"guidance_scale": "generator_guidance"}
    split: str = Field("test", min_length=1, description="the clips' split to generate for")
    conditioning: Literal[CONDITIONINGS] = Field(
        "mapper", description="mapper: the paper's method; no-mapper, text: the Table 3 baselines")
    samples: PositiveInt = Field(1, description="audio samples per clip")
    seconds: PositiveFloat = Field(audioldm.DEFAULT_SECONDS,
                                   description="seconds of audio per sample (VGGSound clips are 10 s)")
    steps: PositiveInt = Field(audioldm.DEFAULT_STEPS, description="AudioLDM sampling steps")
    generator_guidance: NonNegativeFloat = Field(audioldm.DEFAULT_GUIDANCE_SCALE,
                                                 description="AudioLDM's classifier-free guidance scale (the "
                                                             "mapper's is mapper_guidance)")
    scheduler: Literal[SCHEDULERS] = Field(audioldm.DEFAULT_SCHEDULER, description="AudioLDM sampler")
    mapper_guidance: NonNegativeFloat = Field(
        MAPPER_GUIDANCE, description="diffusion mapper's classifier-free guidance (paper's best: 0.9); unused by "
                                     "reg-* mappers")
    mapper_steps: PositiveInt = Field(MAPPER_STEPS, description="diffusion mapper sampling steps; unused by reg-* "
                                                                "mappers")
    batch_size: PositiveInt = Field(8, description="samples per AudioLDM call")
    seed: NonNegativeInt = Field(0, description="run seed: every clip's noise is derived from it and the clip id")
    max_clips: PositiveInt | None = Field(None, description="generate for the first N clips of the split only")
    device: str = Field("cpu", min_length=1, description="torch device of AudioLDM and the mapper")
    shard_size: PositiveInt = Field(
        64, description="clips per generation task: a killed run redoes at most one shard per running task; "
                        "samples are batched within a shard (does not change the audio)")
    _not_digested: ClassVar[tuple[str, ...]] = ("shard_size",)


class EvaluateConfig(Section):
    """Stage 5: the protocol's metrics (v2a-mapper: FD, FAD, CS, KL, IS; av-benchmark: MMAudio's columns) of the
    generated audio against the split's real audio."""

    _section: ClassVar[str] = "evaluate"
    split: str = Field("test", min_length=1, description="the clips' split to score")
    protocol: Literal[PROTOCOL_NAMES] = Field(
        DEFAULT_PROTOCOL, description="evaluation preset: v2a-mapper (the paper's table), av-benchmark (MMAudio's) "
                                      "or audioldm-eval (audioldm_eval 0.0.3's)")
    metrics: list[Literal[METRICS]] | None = Field(
        None, min_length=1, description="metrics to compute (default: the protocol's: "
        + "; ".join(f"{p.name}: {' '.join(p.metrics)}" for p in PROTOCOLS.values()) + ")")
    channel_rule: Literal[CHANNEL_RULES] | None = Field(
        None, description="how a stereo file becomes mono: mean | channel0-minus-mean (audioldm_eval) | "
                          "av-benchmark (mean, then mean removed) (default: the protocol's)")
    clip_seconds: float | None = Field(
        None, gt=0, description="seconds scored per clip (default: the protocol's: av-benchmark 8; v2a-mapper "
                                "the generation's length; audioldm-eval each file's whole length)")
    bootstrap: NonNegativeInt = Field(
        0, description="resamples of the Fréchet rows' bootstrap intervals (FD, FAD, FD_PaSST); 0: none. "
                       "Seconds per resample at 15k clips x 2048-d (benchmarks/README.md): 200 is a workable "
                       "choice. The other rows always get 1000-resample intervals")
    keep_features: bool = Field(
        False, description="store each generated sample's inputs to the set statistics (FD/FAD/FD_PaSST features, "
                           "IS logits) in OUT/features, so that `v2a compare` gives those rows a paired interval; "
                           "about 15 KiB per sample under the v2a-mapper protocol, 19 KiB under "
                           "av-benchmark (README, `v2a compare`)")
    # Only the interval columns depend on `bootstrap`, and they record their resample count (ci_resamples);
    # `keep_features` changes no value at all: asking for either later must neither rename the run nor start
    # it over.
    _not_digested: ClassVar[tuple[str, ...]] = ("bootstrap", "keep_features")

    def metric_list(self) -> list[str]:
        return list(self.metrics or PROTOCOLS[self.protocol].metrics)


class RunnerConfig(Section):
    """Where the stage tasks run: threads of this process (default), a Dask cluster, or Ray."""

    _section: ClassVar[str] = "runner"
    kind: Literal[RUNNER_KINDS] = Field("thread", description="task runner: thread pool, Dask or Ray")
    max_workers: PositiveInt | None = Field(
        None, description=f"thread: pool size (default {DEFAULT_THREAD_WORKERS})")
    address: str | None = Field(None, description="dask: scheduler address (tcp://host:8786); ray: cluster address")
    cluster_kwargs: dict[str, Any] = Field(default_factory=dict,
                                           description="dask without address: LocalCluster keyword arguments")
    init_kwargs: dict[str, Any] = Field(default_factory=dict, description="ray: ray.init keyword arguments")
    gpus: str | int | list[int] | None = Field(
        None, description="dask without address: one worker per GPU of this node, pinned to it: "
                          "auto (every visible GPU), N (the first N) or a list of GPU indices ([0, 2])")

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus(cls, value):
        accepted = "accepted: 'auto', a number of GPUs (1 or more) or a list of distinct GPU indices ([0, 2])"
        if value is None or value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, list)):
            raise ValueError(f"runner.gpus = {value!r}; {accepted}")
        if isinstance(value, int) and value < 1:
            raise ValueError(f"runner.gpus = {value!r}: no GPU to start a worker on; {accepted}")
        if isinstance(value, list):
            if not value or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in value):
                raise ValueError(f"runner.gpus = {value!r}; {accepted}")
            if len(set(value)) != len(value):
                raise ValueError(f"runner.gpus = {value!r}: a GPU listed twice; {accepted}")
        return value

    @model_validator(mode="after")
    def _fits_the_kind(self):
        if self.max_workers is not None and self.kind != "thread":
            raise ValueError(f"runner.max_workers applies to kind 'thread', not {self.kind!r}")
        if self.cluster_kwargs and self.kind != "dask":
            raise ValueError(f"runner.cluster_kwargs applies to kind 'dask', not {self.kind!r}")
        if self.cluster_kwargs and self.address:
            raise ValueError("runner: give runner.address (an existing cluster) or runner.cluster_kwargs "
                             "(a local one), not both")
        if self.init_kwargs and self.kind != "ray":
            raise ValueError(f"runner.init_kwargs applies to kind 'ray', not {self.kind!r}")
        if self.address is not None and self.kind == "thread":
            raise ValueError("runner.address applies to kinds 'dask' and 'ray', not 'thread'")
        if self.gpus is not None:
            if self.kind != "dask":
                raise ValueError(f"runner.gpus applies to kind 'dask', not {self.kind!r} (Ray gives each model "
                                 "task on CUDA a GPU of its own)")
            if self.address:
                raise ValueError("runner.gpus starts workers on this node; with runner.address the workers are "
                                 "started on their own nodes, one per GPU (README: From one machine to a cluster)")
            unknown = sorted(set(self.cluster_kwargs) - set(GPU_CLUSTER_KWARGS))
            if unknown:
                raise ValueError(f"runner.cluster_kwargs: {unknown} with runner.gpus (one worker per GPU); "
                                 f"accepted: {list(GPU_CLUSTER_KWARGS)}")
        return self

    def check_installed(self) -> None:
        package = {"dask": "prefect_dask", "ray": "prefect_ray"}.get(self.kind)
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"runner.kind = {self.kind!r} needs the package {package.replace('_', '-')}, "
                              "which is not installed")

    def gpu_ids(self, visible: list[str] | None = None) -> list[str]:
        """The GPUs this node's workers are pinned to, one each ([] without runner.gpus); `visible`
        defaults to the GPUs this process sees."""
        if self.gpus is None:
            return []
        from v2a.core.devices import DeviceError, resolve_gpus, visible_gpus

        try:
            return resolve_gpus(self.gpus, visible_gpus() if visible is None else visible)
        except DeviceError as err:
            raise ConfigError(str(err)) from None


class CacheConfig(Section):
    """Where Prefect keeps the stage tasks' cached results."""

    _section: ClassVar[str] = "cache"
    location: str | None = Field(None, description="a path or URI; default: OUT/.prefect-results")


class ReportConfig(Section):
    """The listening report: a few clips of each run, spread over the labels."""

    _section: ClassVar[str] = "report"
    clips: PositiveInt = Field(8, description="clips to show, spread over the labels")


class PipelineConfig(Section):
    """Every stage from one file: ingest → embed → train → generate → evaluate → report."""

    out: str = Field(min_length=1, description="the output location (a path or URI) every stage writes under")
    data: DataConfig = Field(description="where the clips come from")
    profile: str = Field("paper", min_length=1,
                         description="model profile: tiny | paper-arch | paper | a YAML path (v2a/profiles)")
    run_id: str | None = Field(None, description="generation run id; default: derived from the config's digest")
    embed: EmbedConfig = Field(default_factory=EmbedConfig, description=EmbedConfig.__doc__)
    train: TrainStageConfig = Field(default_factory=TrainStageConfig, description=TrainStageConfig.__doc__)
    generate: GenerateConfig = Field(default_factory=GenerateConfig, description=GenerateConfig.__doc__)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description=EvaluateConfig.__doc__)
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description=RunnerConfig.__doc__)
    cache: CacheConfig = Field(default_factory=CacheConfig, description=CacheConfig.__doc__)

    @model_validator(mode="after")
    def _one_gpu_per_worker(self):
        # A worker pinned to its GPU sees that one only, as cuda:0: naming another cannot work there.
        if self.runner.gpus is not None:
            for name in ("embed", "generate"):
                device = getattr(self, name).device
                if device.startswith("cuda:") and device != "cuda:0":
                    raise ValueError(f"{name}.device = {device!r}: with runner.gpus each worker sees only its "
                                     "own GPU; write device: cuda")
        return self

    def check_environment(self) -> "PipelineConfig":
        """The checks that look outside the file: the profile resolves, the runner's package is installed,
        the GPUs of runner.gpus are there."""
        check_profile(self.profile)
        self.runner.check_installed()
        self.runner.gpu_ids()
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
        return self.model_dump(mode="json")

    def digest(self, *sections: str) -> str:
        """Hash of the named sections (all when none), used as a cache key for a stage's config."""
        d = self.to_dict()
        # The digest names a run (its default run id) and is recorded in its results rows: a field renamed
        # since is hashed under its old name, so an existing run's id stays and a re-run resumes it.
        for name in d:
            section = getattr(self, name)
            if not isinstance(section, Section):
                continue
            old_names = section.old_name_of()
            d[name] = {old_names.get(k, k): v for k, v in d[name].items() if k not in section._not_digested}
        chosen = {k: d[k] for k in sections} if sections else d
        return short_digest(chosen, 16)


def check_profile(name: str) -> None:
    """ConfigError naming the profile unless it resolves (a shipped name, or a YAML file) to a valid profile."""
    from v2a.models import ProfileError, load_profile

    try:
        load_profile(name)
    except (ProfileError, FileNotFoundError, ValueError) as err:
        raise ConfigError(f"profile = {name!r}: {err}") from None


DEFAULT_PROFILE = PipelineConfig.model_fields["profile"].default

_MODELS = {m.__name__: m for m in (DataConfig, EmbedConfig, TrainStageConfig, GenerateConfig, EvaluateConfig,
                                   RunnerConfig, CacheConfig, ReportConfig, PipelineConfig)}


def defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The default of every field of a section that has one (the values the library's keywords take)."""
    return {name: f.get_default(call_default_factory=True) for name, f in model.model_fields.items()
            if not f.is_required()}


def default(model: type[BaseModel], name: str):
    return model.model_fields[name].get_default(call_default_factory=True)


def config_from_dict(values: dict) -> PipelineConfig:
    if not isinstance(values, dict):
        raise ConfigError(f"a pipeline config must be a mapping, got {type(values).__name__}")
    unknown = sorted(set(values) - set(PipelineConfig.model_fields))
    if unknown:
        raise ConfigError(f"unknown top-level field(s) {unknown}; accepted: {sorted(PipelineConfig.model_fields)}")
    # An empty section (`embed:` with nothing under it) reads as null in YAML: it means the defaults.
    values = {k: ({} if v is None and k in _SECTION_NAMES else v) for k, v in values.items()}
    try:
        cfg = PipelineConfig.model_validate(values)
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None
    return cfg.check_environment()


_SECTION_NAMES = ("data", "embed", "train", "generate", "evaluate", "runner", "cache")


def load_config(uri: str) -> PipelineConfig:
    """The config file (YAML, or JSON, which YAML reads too), validated. A syntax error names its line."""
    fs, path = storage.filesystem(uri)
    with fs.open(path, "r") as handle:
        try:
            values = yaml.safe_load(handle)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"{uri}{where}: not valid YAML ({err.problem or err}); fix the file") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{uri}: not valid YAML ({err}); fix the file") from None
    return config_from_dict(values if values is not None else {})


def as_config(config: "PipelineConfig | dict | str") -> PipelineConfig:
    """A pipeline config from what a flow run is handed: the model, its fields as a mapping, or a file."""
    if isinstance(config, PipelineConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(str(config))
