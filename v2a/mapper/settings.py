"""The mapper trainer's settings: one pydantic model, the `train:` section of the typed configuration.

Every field carries the paper's value as its default (V2A-Mapper, Wang et al., AAAI 2024, and the
DALLE2-pytorch prior recipe it follows), its bounds and a one-line description; the pipeline
configuration (`v2a.config.TrainStageConfig`) extends it with the stage's own fields, and the CLI
builds its `v2a train` flags from it. A bad value is refused in one line that names the field and what it
accepts: ``TrainConfig.<field>=<value> is not accepted; accepted: ...``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from v2a.core.names import MAPPER_GUIDANCE, MAPPER_NAMES, MAPPER_STEPS
from v2a.mapper.factory import (TRANSFORMER_BLOCKS, mapper_name, parse_mapper_name, resolve_depth_expansion)

SELECTIONS = ("last", "best")
MONITORS = {"val_loss": -1.0, "val_cosine": 1.0}  # sign: +1 when higher is better
TIMESTEP_SPACINGS = ("dalle2", "even")
DEVICE_PATTERN = r"^(cpu|cuda(:\d+)?)$"


def _f(default, accepted: str, description: str, **constraints) -> Any:
    """A field whose refusal message says `accepted` (kept with the field, not in a validator far away)."""
    return Field(default, description=description, json_schema_extra={"accepted": accepted}, **constraints)


_INT = {"strict": True}
_NUM = {"strict": True, "allow_inf_nan": False}


class TrainConfig(BaseModel):
    """Everything that defines a training run; defaults are the paper's (best) settings."""

    model_config = ConfigDict(extra="forbid")

    mapper: Literal[MAPPER_NAMES] = _f("diff-transformer", ", ".join(MAPPER_NAMES),
                                       "mapper kind (paper Table 4; diff-transformer is its best)")
    depth: int | None = _f(None, "None (paper default) or an integer >= 1",
                           "layers; unset: the paper's (MLP 1, reg-transformer 8, diff-transformer 12)", ge=1, **_INT)
    expansion: int | None = _f(None, "None (paper default) or an integer >= 1",
                               "MLP width / transformer feed-forward multiplier; unset: 4", ge=1, **_INT)
    heads: int = _f(12, "an integer >= 1", "transformer attention heads", ge=1, **_INT)
    head_dim: int = _f(64, "an integer >= 1", "channels per attention head", ge=1, **_INT)
    transformer_block: Literal[TRANSFORMER_BLOCKS] = _f(
        "dalle2-prior", ", ".join(TRANSFORMER_BLOCKS),
        "transformer block: DALLE2-pytorch's prior network (the paper's) or query-slots")
    prior_text_len: int = _f(77, "an integer >= 1", "dalle2-prior: learned null text-encoding tokens "
                                                    "(DALLE2's max_text_len)", ge=1, **_INT)
    epochs: int = _f(100, "an integer >= 1", "training epochs (paper: 100)", ge=1, **_INT)
    max_steps: int | None = _f(None, "None or an integer >= 1",
                               "stop after this many optimizer steps in total (smoke runs)", ge=1, **_INT)
    batch_size: int = _f(448, "an integer >= 1", "pairs per optimizer step (paper: 448)", ge=1, **_INT)
    lr: float = _f(1.1e-4, "a number > 0", "AdamW learning rate (paper: 1.1e-4, DALLE2-pytorch's prior recipe)",
                   gt=0, **_NUM)
    # The paper's lr is the DALLE2-pytorch prior recipe; its weight decay and clipping come with it.
    weight_decay: float = _f(6.02e-2, "a number >= 0", "AdamW weight decay (DALLE2-pytorch prior: 6.02e-2)",
                             ge=0, **_NUM)
    max_grad_norm: float | None = _f(0.5, "None or a number > 0", "gradient clipping norm; unset: none",
                                     gt=0, **_NUM)
    seed: int = _f(0, "an integer >= 0", "initial weights, data order and noise", ge=0, **_INT)
    ema: bool = _f(False, "True or False", "keep an exponential moving average of the weights and save it",
                   strict=True)
    ema_decay: float = _f(0.9999, "a number in (0, 1)", "EMA decay per step", gt=0, lt=1, **_NUM)
    device: str = _f("cpu", "'cpu', 'cuda' or 'cuda:N'", "torch device", pattern=DEVICE_PATTERN, strict=True)
    bf16: bool = _f(True, "True or False", "bfloat16 autocast on CUDA (CPU runs stay float32 and deterministic)",
                    strict=True)
    compile: bool = _f(False, "True or False", "torch.compile the network for training steps (then no CUDA graph)",
                       strict=True)
    cuda_graphs: bool = _f(True, "True or False", "on CUDA, replay each full-batch training step as one CUDA graph",
                           strict=True)
    # Diffusion mapper settings (ignored by regression mappers).
    num_timesteps: int = _f(1000, "an integer >= 1", "diffusion steps of the training schedule", ge=1, **_INT)
    cond_drop_prob: float = _f(0.1, "a number in [0, 1)", "condition dropout for classifier-free guidance",
                               ge=0, lt=1, **_NUM)
    # Dropout of the noisy embedding x_t (DALLE2's image_cond_drop_prob) for networks with a learned
    # null x_t (the dalle2-prior block); None: cond_drop_prob for those (DALLE2's default), 0 otherwise.
    x_drop_prob: float | None = _f(None, "None or a number in [0, 1)",
                                   "dropout of x_t to the learned null (dalle2-prior only); unset: cond_drop_prob",
                                   ge=0, lt=1, **_NUM)
    sampling_steps: int = _f(MAPPER_STEPS, "an integer >= 1", "sampling steps stored as the checkpoint's "
                                                             "inference default (paper: 200)", ge=1, **_INT)
    guidance_scale: float = _f(MAPPER_GUIDANCE, "a number", "guidance stored as the checkpoint's inference "
                                                            "default (paper's best: 0.9)", **_NUM)
    eta: float = _f(1.0, "a number >= 0", "DDIM eta of the mapper's sampler", ge=0, **_NUM)
    sampling_clamp_l2norm: bool = _f(True, "True or False", "clamp sampled embeddings to the L2 norm of the data "
                                                            "(DALLE2's sampling_clamp_l2norm)", strict=True)
    timestep_spacing: Literal[TIMESTEP_SPACINGS] = _f(
        "dalle2", "'dalle2' or 'even'", "DDIM grid: DALLE2-pytorch's p_sample_loop_ddim or even")
    # Validation: a monitor of progress, cheaper than the final evaluation, so diffusion mappers
    # are sampled with fewer steps than at inference.
    val_every: int = _f(1, "an integer >= 1", "validate every this many epochs", ge=1, **_INT)
    val_sampling_steps: int = _f(25, "an integer >= 1", "mapper sampling steps when validating", ge=1, **_INT)
    val_guidance_scale: float = _f(MAPPER_GUIDANCE, "a number", "mapper guidance when validating", **_NUM)
    val_batch_size: int = _f(16384, "an integer >= 1", "pairs per validation batch", ge=1, **_INT)
    keep_checkpoints: int = _f(1, "an integer >= 1", "epoch checkpoints kept on disk (the newest)", ge=1, **_INT)
    # A resumable checkpoint (weights + optimizer: 585 MB for the paper's Transformer) every this many
    # epochs and at the end, instead of every epoch (58 GB of writes over 100 epochs).
    checkpoint_every: int = _f(5, "an integer >= 1", "write a resumable checkpoint every this many epochs",
                               ge=1, **_INT)
    select: Literal[SELECTIONS] = _f("last", " or ".join(map(repr, SELECTIONS)),
                                     "which weights become model.safetensors: the last epoch's or the best "
                                     "validation epoch's")
    monitor: Literal[tuple(MONITORS)] = _f("val_loss", " or ".join(map(repr, MONITORS)),
                                           "what `best` and early stopping watch")
    early_stopping_patience: int | None = _f(None, "None or an integer >= 1",
                                             "stop after this many validations without improvement", ge=1, **_INT)

    # Fields that may change between a run and its resumption; every other field shapes the
    # trajectory and must match the checkpoint.
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = (
        "epochs", "max_steps", "device", "bf16", "compile", "cuda_graphs", "sampling_steps", "guidance_scale", "eta",
        "sampling_clamp_l2norm", "timestep_spacing", "val_every", "val_sampling_steps", "val_guidance_scale",
        "val_batch_size", "keep_checkpoints", "checkpoint_every", "select", "early_stopping_patience")
    _error_prefix: ClassVar[str] = "TrainConfig"
    _refusal: ClassVar[str] = "{prefix}.{name}={value!r} is not accepted; accepted: {accepted}"

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise ValueError(self._one_line(err, values)) from None

    @classmethod
    def _one_line(cls, err: ValidationError, values: dict) -> str:
        errors = err.errors()
        unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and e["loc"]]
        if unknown:
            return (f"{cls._error_prefix}: unknown field(s) {sorted(unknown)}; accepted: "
                    f"{', '.join(sorted(cls.model_fields))}")
        first = errors[0]
        loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
        name = loc[0] if loc else ""
        if name in cls.model_fields:
            extra = cls.model_fields[name].json_schema_extra or {}
            accepted = extra.get("accepted", first["msg"])
            return cls._refusal.format(prefix=cls._error_prefix, name=name, value=values.get(name, first.get("input")),
                                       accepted=accepted)
        return str(first.get("ctx", {}).get("error", first["msg"])).removeprefix("Value error, ")

    @field_validator("mapper", mode="before")
    @classmethod
    def _canonical_mapper(cls, value):
        # 'diffusion-transformer' and the like name the same mapper as 'diff-transformer'.
        try:
            return mapper_name(*parse_mapper_name(value))
        except ValueError:
            return value  # the Literal then refuses it, naming the accepted ones

    @model_validator(mode="after")
    def _paper_depths_and_sampling_bounds(self):
        depth, expansion = resolve_depth_expansion(self.kind, self.arch, self.depth, self.expansion)
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "expansion", expansion)
        for name in ("sampling_steps", "val_sampling_steps"):
            if getattr(self, name) > self.num_timesteps:
                raise ValueError(self._refusal.format(prefix=self._error_prefix, name=name, value=getattr(self, name),
                                                      accepted=f"an integer <= num_timesteps ({self.num_timesteps})"))
        return self

    @property
    def kind(self) -> str:
        return parse_mapper_name(self.mapper)[0]

    @property
    def arch(self) -> str:
        return parse_mapper_name(self.mapper)[1]

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in TrainConfig.model_fields}

    def trainer_settings(self) -> TrainConfig:
        """Only the trainer's fields, as a TrainConfig (a subclass adds the stage's own fields)."""
        return TrainConfig(**self.to_dict())

    def objective_settings(self) -> dict:
        if self.kind == "regression":
            return {}
        return {"num_timesteps": self.num_timesteps, "schedule": "cosine", "cond_drop_prob": self.cond_drop_prob,
                "x_drop_prob": self.resolved_x_drop_prob(), "sampling_steps": self.sampling_steps,
                "guidance_scale": self.guidance_scale, "eta": self.eta,
                "sampling_clamp_l2norm": self.sampling_clamp_l2norm, "timestep_spacing": self.timestep_spacing}

    def resolved_x_drop_prob(self) -> float:
        has_null_x = self.arch == "transformer" and self.transformer_block == "dalle2-prior"
        if self.x_drop_prob is None:
            return float(self.cond_drop_prob) if has_null_x else 0.0
        if self.x_drop_prob > 0 and not has_null_x:
            raise ValueError(f"{self._error_prefix}.x_drop_prob={self.x_drop_prob}: only the dalle2-prior transformer "
                             "has a learned null x_t to drop to")
        return float(self.x_drop_prob)
