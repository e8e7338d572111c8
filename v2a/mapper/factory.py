"""Build a mapper network from its (kind, arch, depth, expansion) description."""

from __future__ import annotations

from torch import nn

from v2a.mapper.diffusion import EmbeddingDiffusion
from v2a.mapper.mlp import DiffusionMLP, RegressionMLP
from v2a.mapper.regression import RegressionObjective
from v2a.mapper.transformer import DiffusionTransformer, RegressionTransformer

KINDS = ("regression", "diffusion")
ARCHS = ("mlp", "transformer")
# Combined names as the paper's Table 4 rows: reg-mlp, reg-transformer, diff-mlp, diff-transformer.
_KIND_PREFIX = {"reg": "regression", "diff": "diffusion"}
from v2a.names import MAPPER_NAMES  # noqa: E402  (reg|diff × mlp|transformer, listed once)

# Paper defaults (implementation details): MLPs D=1 E=4; regression transformer depth 8;
# diffusion transformer depth 12 (the best model). A transformer's "expansion" is its
# feed-forward multiplier, 4 in the paper.
DEFAULT_DEPTH = {
    ("regression", "mlp"): 1,
    ("regression", "transformer"): 8,
    ("diffusion", "mlp"): 1,
    ("diffusion", "transformer"): 12,
}
DEFAULT_EXPANSION = 4

_CLASSES = {
    ("regression", "mlp"): RegressionMLP,
    ("regression", "transformer"): RegressionTransformer,
    ("diffusion", "mlp"): DiffusionMLP,
    ("diffusion", "transformer"): DiffusionTransformer,
}


def parse_mapper_name(name: str) -> tuple[str, str]:
    """'diff-transformer' -> ('diffusion', 'transformer'); also accepts 'diffusion-transformer'."""
    if not isinstance(name, str) or "-" not in name:
        raise ValueError(f"mapper name {name!r} is not of the form KIND-ARCH; accepted: {', '.join(MAPPER_NAMES)}")
    prefix, arch = name.lower().split("-", 1)
    kind = _KIND_PREFIX.get(prefix, prefix)
    if kind not in KINDS or arch not in ARCHS:
        raise ValueError(f"unknown mapper name {name!r}; accepted: {', '.join(MAPPER_NAMES)}")
    return kind, arch


def mapper_name(kind: str, arch: str) -> str:
    _check_kind_arch(kind, arch)
    return f"{'reg' if kind == 'regression' else 'diff'}-{arch}"


def _check_kind_arch(kind: str, arch: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not accepted; accepted: {', '.join(KINDS)}")
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r} is not accepted; accepted: {', '.join(ARCHS)}")


def _positive_int(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field}={value!r} is not accepted; accepted: an integer >= 1")
    return value


def resolve_depth_expansion(kind: str, arch: str, depth: int | None, expansion: int | None) -> tuple[int, int]:
    """Fill in the paper defaults and validate."""
    _check_kind_arch(kind, arch)
    depth = DEFAULT_DEPTH[(kind, arch)] if depth is None else _positive_int("depth", depth)
    expansion = DEFAULT_EXPANSION if expansion is None else _positive_int("expansion", expansion)
    return depth, expansion


def build_mapper(kind: str, arch: str, dim: int = 512, depth: int | None = None, expansion: int | None = None, *,
                 heads: int = 12, head_dim: int = 64, num_timesteps: int = 1000) -> nn.Module:
    """Build an untrained mapper network.

    kind: "regression" (visual -> audio embedding) or "diffusion" ((t, x_t, visual) -> x0).
    arch: "mlp" (depth D blocks of width dim*expansion) or "transformer" (depth layers,
    feed-forward multiplier `expansion`). heads/head_dim apply to transformers, num_timesteps
    (rows of the learned time-embedding table) to diffusion mappers.
    """
    depth, expansion = resolve_depth_expansion(kind, arch, depth, expansion)
    _positive_int("dim", dim)
    cls = _CLASSES[(kind, arch)]
    kwargs: dict = {"dim": dim, "depth": depth, "expansion": expansion}
    if arch == "transformer":
        kwargs.update(heads=_positive_int("heads", heads), head_dim=_positive_int("head_dim", head_dim))
    if kind == "diffusion":
        kwargs["num_timesteps"] = _positive_int("num_timesteps", num_timesteps)
    return cls(**kwargs)


def architecture_of(net: nn.Module) -> dict:
    """The keyword arguments that rebuild `net` with build_mapper (stored in checkpoints)."""
    arch = {"kind": net.kind, "arch": net.arch, "dim": net.dim, "depth": net.depth, "expansion": net.expansion}
    if net.arch == "transformer":
        arch.update(heads=net.heads, head_dim=net.head_dim)
    if net.kind == "diffusion":
        arch["num_timesteps"] = net.num_timesteps
    return arch


def count_trainable_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def build_objective(kind: str, dim: int, settings: dict | None = None):
    """The training/sampling maths for a mapper kind, from the settings stored in config.json."""
    settings = dict(settings or {})
    if kind == "regression":
        return RegressionObjective(dim, embed_scale=settings.get("embed_scale"))
    if kind == "diffusion":
        known = ("num_timesteps", "schedule", "cond_drop_prob", "embed_scale", "sampling_steps",
                 "guidance_scale", "eta", "sampling_clamp_l2norm")
        return EmbeddingDiffusion(dim, **{k: settings[k] for k in known if k in settings})
    raise ValueError(f"kind={kind!r} is not accepted; accepted: regression, diffusion")
