"""Build a mapper network from its (kind, arch, depth, expansion) description."""

from __future__ import annotations

from torch import nn

from v2a.mapper.diffusion import EmbeddingDiffusion
from v2a.mapper.mlp import DiffusionMLP, RegressionMLP
from v2a.mapper.regression import RegressionObjective
from v2a.mapper.prior_transformer import MAX_TEXT_LEN as PRIOR_TEXT_LEN
from v2a.mapper.prior_transformer import DiffusionPriorTransformer, RegressionPriorTransformer
from v2a.mapper.transformer import DiffusionTransformer, RegressionTransformer

KINDS = ("regression", "diffusion")
ARCHS = ("mlp", "transformer")
# Combined names as the paper's Table 4 rows: reg-mlp, reg-transformer, diff-mlp, diff-transformer.
_KIND_PREFIX = {"reg": "regression", "diff": "diffusion"}
from v2a.core.names import MAPPER_NAMES  # noqa: E402  (reg|diff × mlp|transformer, listed once)

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
# Transformer blocks: DALLE2-pytorch's diffusion prior network (the paper's, by its parameter counts)
# or our earlier query-token block. Checkpoints written before the option existed hold the latter.
TRANSFORMER_BLOCKS = ("dalle2-prior", "query-slots")
DEFAULT_BLOCK = "dalle2-prior"
LEGACY_BLOCK = "query-slots"

_CLASSES = {
    ("regression", "mlp"): RegressionMLP,
    ("regression", "transformer", "query-slots"): RegressionTransformer,
    ("regression", "transformer", "dalle2-prior"): RegressionPriorTransformer,
    ("diffusion", "mlp"): DiffusionMLP,
    ("diffusion", "transformer", "query-slots"): DiffusionTransformer,
    ("diffusion", "transformer", "dalle2-prior"): DiffusionPriorTransformer,
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


def check_block(block: str) -> str:
    if block not in TRANSFORMER_BLOCKS:
        raise ValueError(f"block={block!r} is not accepted; accepted: {', '.join(TRANSFORMER_BLOCKS)}")
    return block


def build_mapper(kind: str, arch: str, dim: int, depth: int | None = None, expansion: int | None = None, *,
                 heads: int = 12, head_dim: int = 64, num_timesteps: int = 1000,
                 block: str = DEFAULT_BLOCK, text_len: int = PRIOR_TEXT_LEN) -> nn.Module:
    """Build an untrained mapper network.

    kind: "regression" (visual -> audio embedding) or "diffusion" ((t, x_t, visual) -> x0).
    arch: "mlp" (depth D blocks of width dim*expansion) or "transformer" (depth layers,
    feed-forward multiplier `expansion`). heads/head_dim/block apply to transformers (block:
    "dalle2-prior", DALLE2-pytorch's prior network, or "query-slots"; text_len: the dalle2-prior's
    number of learned null text-encoding tokens, DALLE2's max_text_len), num_timesteps (rows of the
    learned time-embedding table) to diffusion mappers.
    """
    depth, expansion = resolve_depth_expansion(kind, arch, depth, expansion)
    _positive_int("dim", dim)
    kwargs: dict = {"dim": dim, "depth": depth, "expansion": expansion}
    if arch == "transformer":
        cls = _CLASSES[(kind, arch, check_block(block))]
        kwargs.update(heads=_positive_int("heads", heads), head_dim=_positive_int("head_dim", head_dim))
        if block == "dalle2-prior":
            kwargs["text_len"] = _positive_int("text_len", text_len)
    else:
        cls = _CLASSES[(kind, arch)]
    if kind == "diffusion":
        kwargs["num_timesteps"] = _positive_int("num_timesteps", num_timesteps)
    return cls(**kwargs)


def architecture_of(net: nn.Module) -> dict:
    """The keyword arguments that rebuild `net` with build_mapper (stored in checkpoints)."""
    arch = {"kind": net.kind, "arch": net.arch, "dim": net.dim, "depth": net.depth, "expansion": net.expansion}
    if net.arch == "transformer":
        arch.update(heads=net.heads, head_dim=net.head_dim, block=net.block)
        if net.block == "dalle2-prior":
            arch["text_len"] = net.text_len
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
        known = ("num_timesteps", "schedule", "cond_drop_prob", "x_drop_prob", "embed_scale", "sampling_steps",
                 "guidance_scale", "eta", "sampling_clamp_l2norm", "timestep_spacing")
        kwargs = {k: settings[k] for k in known if k in settings}
        if settings and "timestep_spacing" not in settings:
            kwargs["timestep_spacing"] = "even"  # a checkpoint from before the DALLE2 grid was the default
        return EmbeddingDiffusion(dim, **kwargs)
    raise ValueError(f"kind={kind!r} is not accepted; accepted: regression, diffusion")
