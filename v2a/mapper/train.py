"""Train a mapper on (CLIP, CLAP) embedding pairs held in memory.

The whole training set lives on the device and batches are index slices of it: a pair is two
512-d vectors, so a DataLoader would cost more than the step. Randomness per epoch comes from a
generator seeded by (seed, epoch), which makes a run resumed from an epoch checkpoint follow
the same trajectory as one that was never interrupted.

Epoch checkpoints (out_dir/checkpoints/epoch_NNNN/): model, optimizer (and EMA) tensors in
safetensors, everything else in state.json; no pickle anywhere.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from v2a.core.stopping import raise_if_stopped
from v2a.mapper.checkpoint import (WEIGHTS_NAME, atomic_write_text, check_state_shapes, read_safetensors,
                                   save_mapper, save_safetensors, sha256_file, state_dict_to_safetensors)
from v2a.mapper.evaluate import embedding_metrics
from v2a.mapper.factory import (MAPPER_NAMES, TRANSFORMER_BLOCKS, build_mapper, build_objective, check_block,
                                count_trainable_params, mapper_name, parse_mapper_name, resolve_depth_expansion)

from v2a.names import MAPPER_GUIDANCE, MAPPER_STEPS  # noqa: E402  (the paper's sampling, written once)

CHECKPOINTS_DIR = "checkpoints"
HISTORY_NAME = "history.json"
CURVE_NAME = "training_curve.png"
PLOT_EVERY_S = 60.0
BEST_DIR = "best"
SELECTIONS = ("last", "best")
MONITORS = {"val_loss": -1.0, "val_cosine": 1.0}  # sign: +1 when higher is better


@dataclass
class TrainConfig:
    """Everything that defines a training run; defaults are the paper's (best) settings."""

    mapper: str = "diff-transformer"  # reg-mlp | reg-transformer | diff-mlp | diff-transformer
    depth: int | None = None  # None: paper default for the mapper (MLP 1, reg-transformer 8, diff-transformer 12)
    expansion: int | None = None  # None: 4 (MLP width multiplier / transformer feed-forward multiplier)
    heads: int = 12
    head_dim: int = 64
    # Transformer block: "dalle2-prior" (DALLE2-pytorch's prior network, the paper's) or "query-slots".
    transformer_block: str = "dalle2-prior"
    prior_text_len: int = 77  # dalle2-prior: learned null text-encoding tokens (DALLE2's max_text_len)
    epochs: int = 100
    max_steps: int | None = None  # stop early after this many optimizer steps in total (smoke runs)
    batch_size: int = 448
    lr: float = 1.1e-4
    # The paper's lr is the DALLE2-pytorch prior recipe; its weight decay and clipping come with it.
    weight_decay: float = 6.02e-2
    max_grad_norm: float | None = 0.5
    seed: int = 0
    ema: bool = False
    ema_decay: float = 0.9999
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    bf16: bool = True  # bfloat16 autocast; applies on CUDA only (CPU runs stay float32 and deterministic)
    compile: bool = False  # torch.compile the network for training steps (then no manual CUDA graph)
    cuda_graphs: bool = True  # on CUDA, replay each full-batch training step as one CUDA graph
    # Diffusion mapper settings (ignored by regression mappers).
    num_timesteps: int = 1000
    cond_drop_prob: float = 0.1
    # Dropout of the noisy embedding x_t (DALLE2's image_cond_drop_prob) for networks with a learned
    # null x_t (the dalle2-prior block); None: cond_drop_prob for those (DALLE2's default), 0 otherwise.
    x_drop_prob: float | None = None
    sampling_steps: int = MAPPER_STEPS  # stored as the checkpoint's inference default (paper: 200)
    guidance_scale: float = MAPPER_GUIDANCE  # stored as the inference default (paper best: 0.9)
    eta: float = 1.0
    sampling_clamp_l2norm: bool = True
    timestep_spacing: str = "dalle2"  # DDIM grid: "dalle2" (DALLE2-pytorch's p_sample_loop_ddim) or "even"
    # Validation: a monitor of progress, cheaper than the final evaluation, so diffusion mappers
    # are sampled with fewer steps than at inference.
    val_every: int = 1
    val_sampling_steps: int = 25
    val_guidance_scale: float = MAPPER_GUIDANCE
    val_batch_size: int = 16384
    keep_checkpoints: int = 1  # epoch checkpoints kept on disk (the newest ones)
    # A resumable checkpoint (weights + optimizer: 585 MB for the paper's Transformer) every this many
    # epochs and at the end, instead of every epoch (58 GB of writes over 100 epochs).
    checkpoint_every: int = 5
    # Which weights become model.safetensors: "last" (the final epoch's) or "best" (the epoch with the
    # best `monitor` on the validation pairs; those weights are also kept in checkpoints/best/).
    select: str = "last"
    monitor: str = "val_loss"  # val_loss (lower is better) | val_cosine (higher is better)
    early_stopping_patience: int | None = None  # stop after this many validations without improvement

    # Fields that may change between a run and its resumption; every other field shapes the
    # trajectory and must match the checkpoint.
    RESUMABLE_CHANGES = ("epochs", "max_steps", "device", "bf16", "compile", "cuda_graphs", "sampling_steps",
                         "guidance_scale", "eta", "sampling_clamp_l2norm", "timestep_spacing", "val_every",
                         "val_sampling_steps", "val_guidance_scale", "val_batch_size", "keep_checkpoints",
                         "checkpoint_every", "select", "early_stopping_patience")

    def __post_init__(self):
        try:
            kind, arch = parse_mapper_name(self.mapper)
        except ValueError:
            raise ValueError(f"TrainConfig.mapper={self.mapper!r} is not accepted; "
                             f"accepted: {', '.join(MAPPER_NAMES)}") from None
        self.mapper = mapper_name(kind, arch)
        for name in ("depth", "expansion"):
            _require(name, getattr(self, name), lambda v: v is None or (_is_int(v) and v >= 1),
                     "None (paper default) or an integer >= 1")
        self.depth, self.expansion = resolve_depth_expansion(kind, arch, self.depth, self.expansion)
        try:
            check_block(self.transformer_block)
        except ValueError:
            raise ValueError(f"TrainConfig.transformer_block={self.transformer_block!r} is not accepted; "
                             f"accepted: {', '.join(TRANSFORMER_BLOCKS)}") from None
        _require("timestep_spacing", self.timestep_spacing, lambda v: v in ("dalle2", "even"), "'dalle2' or 'even'")
        _require("x_drop_prob", self.x_drop_prob, lambda v: v is None or (_is_num(v) and 0 <= v < 1),
                 "None or a number in [0, 1)")
        for name in ("heads", "head_dim", "prior_text_len", "epochs", "batch_size", "num_timesteps", "sampling_steps",
                     "val_every", "val_sampling_steps", "val_batch_size", "keep_checkpoints", "checkpoint_every"):
            _require(name, getattr(self, name), lambda v: _is_int(v) and v >= 1, "an integer >= 1")
        _require("max_steps", self.max_steps, lambda v: v is None or (_is_int(v) and v >= 1), "None or an integer >= 1")
        _require("select", self.select, lambda v: v in SELECTIONS, " or ".join(map(repr, SELECTIONS)))
        _require("monitor", self.monitor, lambda v: v in MONITORS, " or ".join(map(repr, MONITORS)))
        _require("early_stopping_patience", self.early_stopping_patience,
                 lambda v: v is None or (_is_int(v) and v >= 1), "None or an integer >= 1")
        _require("seed", self.seed, lambda v: _is_int(v) and v >= 0, "an integer >= 0")
        _require("lr", self.lr, lambda v: _is_num(v) and v > 0, "a number > 0")
        _require("weight_decay", self.weight_decay, lambda v: _is_num(v) and v >= 0, "a number >= 0")
        _require("max_grad_norm", self.max_grad_norm, lambda v: v is None or (_is_num(v) and v > 0),
                 "None or a number > 0")
        _require("ema_decay", self.ema_decay, lambda v: _is_num(v) and 0 < v < 1, "a number in (0, 1)")
        _require("cond_drop_prob", self.cond_drop_prob, lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)")
        _require("eta", self.eta, lambda v: _is_num(v) and v >= 0, "a number >= 0")
        for name in ("guidance_scale", "val_guidance_scale"):
            _require(name, getattr(self, name), _is_num, "a number")
        for name in ("sampling_steps", "val_sampling_steps"):
            _require(name, getattr(self, name), lambda v: v <= self.num_timesteps,
                     f"an integer <= num_timesteps ({self.num_timesteps})")
        for name in ("ema", "bf16", "compile", "cuda_graphs", "sampling_clamp_l2norm"):
            _require(name, getattr(self, name), lambda v: isinstance(v, bool), "True or False")
        _require("device", self.device, lambda v: isinstance(v, str) and re.fullmatch(r"cpu|cuda(:\d+)?", v),
                 "'cpu', 'cuda' or 'cuda:N'")

    @property
    def kind(self) -> str:
        return parse_mapper_name(self.mapper)[0]

    @property
    def arch(self) -> str:
        return parse_mapper_name(self.mapper)[1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

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
            raise ValueError(f"TrainConfig.x_drop_prob={self.x_drop_prob}: only the dalle2-prior transformer has a "
                             "learned null x_t to drop to")
        return float(self.x_drop_prob)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _require(name: str, value, ok: Callable, accepted: str) -> None:
    if not ok(value):
        raise ValueError(f"TrainConfig.{name}={value!r} is not accepted; accepted: {accepted}")


# ---- pieces shared with benchmarks/bench_mapper.py ---------------------------------------------

def make_network(config: TrainConfig, dim: int) -> nn.Module:
    """The untrained network, initialised from config.seed without touching the global RNG.

    It is built on the CPU, so a seed gives the same initial weights on every device.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_mapper(config.kind, config.arch, dim=dim, depth=config.depth, expansion=config.expansion,
                            heads=config.heads, head_dim=config.head_dim, num_timesteps=config.num_timesteps,
                            block=config.transformer_block, text_len=config.prior_text_len)


def uses_cuda_graph(config: TrainConfig, device: torch.device) -> bool:
    return device.type == "cuda" and config.cuda_graphs and not config.compile


def make_optimizer(net: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # Fused AdamW updates every tensor in one kernel on CUDA; on the CPU keep the reference path.
    # capturable keeps the step count on the GPU so the update can live inside a CUDA graph.
    fused = device.type == "cuda"
    return torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused,
                             capturable=uses_cuda_graph(config, device))


def autocast_for(config: TrainConfig, device: torch.device):
    if device.type == "cuda" and config.bf16:
        # No weight-cast cache: it is not allowed inside CUDA-graph capture, and each weight is
        # used once per forward anyway.
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return nullcontext()


class TrainStep:
    """One optimizer step on a batch: loss, backward, clip, AdamW, EMA. Returns the detached loss
    (no host synchronisation, so the GPU can run ahead).

    On CUDA (config.cuda_graphs) the whole step of a full batch is captured once in a CUDA graph
    after a few eager warm-up steps and replayed: a mapper step is hundreds of small kernels, and
    launching them from Python costs more than running them. Each batch's randomness is drawn
    outside the graph with the epoch's generator, as on the eager path, so both paths compute the
    same thing. A short last batch runs eagerly. If capture fails, training continues eagerly.
    """

    WARMUP_STEPS = 3

    def __init__(self, net: nn.Module, objective, optimizer: torch.optim.Optimizer, config: TrainConfig,
                 device: torch.device, ema_net: nn.Module | None = None):
        self.net = net
        self.forward_net = torch.compile(net, dynamic=False) if config.compile else net
        self.objective = objective
        self.optimizer = optimizer
        self.config = config
        self.device = device
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.ema_params = list(ema_net.parameters()) if ema_net is not None else None
        self.use_graph = uses_cuda_graph(config, device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graph_batch: int | None = None
        self.warmed = 0
        self.static: dict[str, torch.Tensor] = {}
        self.static_loss: torch.Tensor | None = None

    def _update(self, loss: torch.Tensor) -> None:
        loss.backward()
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm, foreach=True)
        self.optimizer.step()
        if self.ema_params is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self.ema_params, self.params, 1.0 - self.config.ema_decay)

    def _eager(self, cond, target, rand) -> torch.Tensor:
        if self.graph is not None:
            # The graph owns the .grad tensors: zero them in place rather than dropping them.
            self.optimizer.zero_grad(set_to_none=False)
        with autocast_for(self.config, self.device):
            loss = self.objective.loss_given(self.forward_net, cond, target, **rand)
        self._update(loss)
        if self.graph is None:
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def _capture(self, cond, target, rand) -> None:
        self.static = {"cond": cond.clone(), "target": target.clone(), **{k: v.clone() for k, v in rand.items()}}
        rand_keys = list(rand)
        self.optimizer.zero_grad(set_to_none=True)  # backward inside the graph allocates static grads
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            with autocast_for(self.config, self.device):
                loss = self.objective.loss_given(self.net, self.static["cond"], self.static["target"],
                                                 **{k: self.static[k] for k in rand_keys})
            self._update(loss)
        self.static_loss = loss.detach()
        self.graph = graph

    def __call__(self, cond: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        rand = self.objective.draw(cond.shape[0], cond.device, generator)
        if not self.use_graph:
            return self._eager(cond, target, rand)
        if self.graph_batch is None:
            self.graph_batch = cond.shape[0]
        if cond.shape[0] != self.graph_batch:
            return self._eager(cond, target, rand)
        if self.graph is None:
            if self.warmed < self.WARMUP_STEPS:
                # Warm-up on a side stream, as capture requires (cuBLAS handles, allocator state).
                self.warmed += 1
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    loss = self._eager(cond, target, rand)
                torch.cuda.current_stream(self.device).wait_stream(side)
                return loss
            try:
                self._capture(cond, target, rand)
            except Exception as exc:  # capture is an optimisation: never lose a run to it
                warnings.warn(f"CUDA graph capture failed ({exc!r}); training continues without it")
                self.use_graph, self.graph = False, None
                self.optimizer.zero_grad(set_to_none=True)
                return self._eager(cond, target, rand)
        else:
            self.static["cond"].copy_(cond)
            self.static["target"].copy_(target)
            for key, value in rand.items():
                self.static[key].copy_(value)
        self.graph.replay()
        return self.static_loss.clone()


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"TrainConfig.device={name!r} but CUDA is not available here; accepted: 'cpu'")
    return device


# ---- data ---------------------------------------------------------------------------------------

def _check_pairs(name: str, clip, clap, allow_empty: bool) -> tuple[np.ndarray, np.ndarray]:
    clip = np.asarray(clip)
    clap = np.asarray(clap)
    if clip.ndim != 2 or clap.ndim != 2:
        raise ValueError(f"{name}: expected 2-D (N, D) arrays, got {clip.shape} and {clap.shape}")
    if clip.shape[0] != clap.shape[0]:
        raise ValueError(f"{name}: {clip.shape[0]} CLIP rows but {clap.shape[0]} CLAP rows")
    if clip.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name}: no pairs")
    if clip.shape[1] != clap.shape[1]:
        raise ValueError(f"{name}: CLIP dim {clip.shape[1]} != CLAP dim {clap.shape[1]} (the mapper keeps the width)")
    if not (np.isfinite(clip).all() and np.isfinite(clap).all()):
        raise ValueError(f"{name}: arrays contain NaN or inf")
    return np.ascontiguousarray(clip, dtype=np.float32), np.ascontiguousarray(clap, dtype=np.float32)


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _stream_seed(seed: int, stream: int, index: int = 0) -> int:
    """Independent generator seeds per purpose (0: training epochs, 1: validation) and index."""
    state = np.random.SeedSequence([seed, stream, index]).generate_state(1, dtype=np.uint64)[0]
    return int(state & ((1 << 63) - 1))


# ---- validation ---------------------------------------------------------------------------------

@torch.no_grad()
def validate(net: nn.Module, objective, clip: torch.Tensor, clap: torch.Tensor, config: TrainConfig,
             device: torch.device) -> dict[str, float]:
    """Objective loss at fixed randomness, plus MSE / cosine / R@1 / R@10 of generated embeddings."""
    was_training = net.training
    net.eval()
    n = clip.shape[0]
    bs = config.val_batch_size
    autocast = autocast_for(config, device)
    gen = torch.Generator(device=device).manual_seed(_stream_seed(config.seed, 1))
    loss_sum = torch.zeros((), device=device)
    preds = []
    rows = torch.arange(n, device=device)
    zeros = torch.zeros(n, dtype=torch.long, device=device)
    for i in range(0, n, bs):
        c, a = clip[i:i + bs], clap[i:i + bs]
        with autocast:
            if objective.kind == "diffusion":
                batch_loss = objective.loss(net, c, a, gen, cond_drop_prob=0.0)
            else:
                batch_loss = objective.loss(net, c, a)
        loss_sum += batch_loss.float() * c.shape[0]
        preds.append(objective.generate(net, c, rows[i:i + bs], zeros[i:i + bs], seed=config.seed,
                                        steps=config.val_sampling_steps, guidance_scale=config.val_guidance_scale,
                                        autocast=autocast))
    metrics = embedding_metrics(torch.cat(preds), clap)
    net.train(was_training)
    return {"val_loss": float(loss_sum / n), **{f"val_{k}": v for k, v in metrics.items()}}


# ---- epoch checkpoints --------------------------------------------------------------------------

def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"state.{idx}.{key}"] = value.detach().to("cpu").contiguous()
    groups = [{k: v for k, v in g.items() if isinstance(v, (int, float, bool, str, list, tuple)) or v is None}
              for g in sd["param_groups"]]
    return tensors, groups


def _load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    current = optimizer.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    expected = set(current["param_groups"][0]["params"]) if len(current["param_groups"]) == 1 else None
    if expected is not None and not set(state) <= expected:
        raise ValueError("optimizer checkpoint refers to parameters this model does not have")
    # Hyperparameters come from the (matching) config, not the file; only the moments and
    # step counts are restored.
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def _epoch_dirs(out_dir: Path) -> list[tuple[int, Path]]:
    root = out_dir / CHECKPOINTS_DIR
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = re.fullmatch(r"epoch_(\d+)", p.name)
            if m and p.is_dir() and (p / "state.json").is_file():
                found.append((int(m.group(1)), p))
    return sorted(found)


def _save_epoch_checkpoint(out_dir: Path, epoch: int, state: dict, net: nn.Module, optimizer, ema_net,
                           keep: int) -> None:
    root = out_dir / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"epoch_{epoch:04d}"
    tmp = root / f"epoch_{epoch:04d}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_safetensors(state_dict_to_safetensors(net), tmp / "model.safetensors")
    opt_tensors, groups = _optimizer_tensors(optimizer)
    save_safetensors(opt_tensors, tmp / "optimizer.safetensors")
    if ema_net is not None:
        save_safetensors(state_dict_to_safetensors(ema_net), tmp / "ema.safetensors")
    atomic_write_text(tmp / "state.json", json.dumps({**state, "optimizer_param_groups": groups}, indent=1))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)  # the checkpoint appears whole or not at all
    for _, old in _epoch_dirs(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _save_best(out_dir: Path, state: dict) -> None:
    """The best validation weights so far (weights only: no optimizer), replaced atomically."""
    where = out_dir / CHECKPOINTS_DIR / BEST_DIR
    where.mkdir(parents=True, exist_ok=True)
    save_safetensors({k: v.contiguous() for k, v in state.items()}, where / WEIGHTS_NAME)


def _check_resumable(saved: dict, config: TrainConfig, fingerprint: str, where: Path) -> None:
    saved_cfg = saved["config"]
    current = config.to_dict()
    differing = [k for k in current if k not in TrainConfig.RESUMABLE_CHANGES and saved_cfg.get(k) != current[k]]
    if differing:
        detail = ", ".join(f"{k}: checkpoint {saved_cfg.get(k)!r} vs now {current[k]!r}" for k in differing)
        raise ValueError(f"cannot resume from {where}: config differs in {detail}. "
                         "Use a new out_dir or the original settings.")
    if saved["train_fingerprint"] != fingerprint:
        raise ValueError(f"cannot resume from {where}: the training arrays differ from the ones it was trained on")


# ---- reporting ----------------------------------------------------------------------------------

def _write_history(out_dir: Path, history: list[dict], plot: bool = True) -> None:
    atomic_write_text(out_dir / HISTORY_NAME, json.dumps(history, indent=1))
    if plot:
        _plot_curve(out_dir / CURVE_NAME, history)


def _plot_curve(path: Path, history: list[dict]) -> None:
    # The Agg canvas directly, not pyplot: no global backend switch, safe in worker threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_loss, ax_val = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    val = [h for h in history if "val_loss" in h]
    if val:
        ax_loss.plot([h["epoch"] for h in val], [h["val_loss"] for h in val], label="val loss")
        for key, label in (("val_cosine", "cosine"), ("val_r1", "R@1"), ("val_r10", "R@10")):
            ax_val.plot([h["epoch"] for h in val], [h[key] for h in val], marker=".", label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_val.set_xlabel("epoch")
    ax_val.set_ylim(0, 1)
    ax_val.legend()
    ax_val.set_title("validation (generated vs true CLAP)")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


# ---- the training loop --------------------------------------------------------------------------

def train_mapper(train_clip: np.ndarray, train_clap: np.ndarray, val_clip: np.ndarray | None,
                 val_clap: np.ndarray | None, config: TrainConfig, out_dir: str | Path, metadata: dict | None = None,
                 progress: bool = True, on_epoch_end: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume training of) a mapper; write the final checkpoint into out_dir.

    Arrays: float32 (N, D) CLIP and CLAP embeddings, aggregated and L2-normalised. val_* may be
    None to skip validation. If out_dir holds epoch checkpoints of a compatible run (same
    trajectory-defining config and training data), training resumes after the last one.
    on_epoch_end(record) is called after each epoch's checkpoint is on disk.

    Writes out_dir/{config.json, model.safetensors} (EMA weights when config.ema),
    history.json, training_curve.png and checkpoints/epoch_NNNN/. Returns the final metrics.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    train_clip, train_clap = _check_pairs("train", train_clip, train_clap, allow_empty=False)
    has_val = val_clip is not None and val_clap is not None and len(val_clip) > 0
    if has_val:
        val_clip, val_clap = _check_pairs("val", val_clip, val_clap, allow_empty=True)
        if val_clip.shape[1] != train_clip.shape[1]:
            raise ValueError(f"val dim {val_clip.shape[1]} != train dim {train_clip.shape[1]}")
    dim = train_clip.shape[1]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    train_fp = fingerprint_arrays(train_clip, train_clap)
    val_fp = fingerprint_arrays(val_clip, val_clap) if has_val else None

    net = make_network(config, dim).to(device)
    objective = build_objective(config.kind, dim, config.objective_settings())
    optimizer = make_optimizer(net, config, device)
    ema_net = None
    if config.ema:
        ema_net = copy.deepcopy(net)
        for p in ema_net.parameters():
            p.requires_grad_(False)

    history: list[dict] = []
    start_epoch, global_step, resumed_from = 0, 0, None
    best, best_state, best_dirty, stale_validations = None, None, False, 0
    sign = MONITORS[config.monitor]
    epoch_dirs = _epoch_dirs(out_dir)
    if epoch_dirs:
        last_epoch, where = epoch_dirs[-1]
        saved = json.loads((where / "state.json").read_text())
        _check_resumable(saved, config, train_fp, where)
        model_tensors = read_safetensors(where / "model.safetensors")
        check_state_shapes(net, model_tensors, str(where / "model.safetensors"))
        net.load_state_dict(model_tensors)
        _load_optimizer_tensors(optimizer, read_safetensors(where / "optimizer.safetensors"))
        if ema_net is not None:
            ema_net.load_state_dict(read_safetensors(where / "ema.safetensors"))
        history = saved["history"]
        start_epoch, global_step, resumed_from = last_epoch, saved["global_step"], last_epoch
        best = saved.get("best")
        best_file = out_dir / CHECKPOINTS_DIR / BEST_DIR / WEIGHTS_NAME
        if best is not None and best_file.exists():
            best_state = read_safetensors(best_file)
        stale_validations = int(saved.get("stale_validations", 0))

    step = TrainStep(net, objective, optimizer, config, device, ema_net)
    clip_t = torch.from_numpy(train_clip).to(device)
    clap_t = torch.from_numpy(train_clap).to(device)
    if has_val:
        val_clip_t = torch.from_numpy(val_clip).to(device)
        val_clap_t = torch.from_numpy(val_clap).to(device)
    n = clip_t.shape[0]
    bs = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    eval_net = ema_net if ema_net is not None else net
    state_base = {"config": config.to_dict(), "train_fingerprint": train_fp, "val_fingerprint": val_fp}

    from tqdm.auto import tqdm

    def max_steps_reached() -> bool:
        return config.max_steps is not None and global_step >= config.max_steps

    epoch_bar = tqdm(total=config.epochs, initial=start_epoch, desc=f"train {config.mapper}", unit="epoch",
                     disable=not progress)
    net.train()
    epoch = start_epoch
    last_plot = time.monotonic()
    stop_early = False
    while epoch < config.epochs and not max_steps_reached() and not stop_early:
        t0 = time.perf_counter()
        gen = torch.Generator(device=device).manual_seed(_stream_seed(config.seed, 0, epoch))
        perm = torch.randperm(n, generator=gen, device=device)
        loss_sum = torch.zeros((), device=device)
        seen = 0
        for i in tqdm(range(0, n, bs), total=steps_per_epoch, leave=False, disable=not progress, unit="step",
                      desc=f"epoch {epoch + 1}"):
            raise_if_stopped()  # the last epoch checkpoint stays: a re-run resumes from it
            idx = perm[i:i + bs]
            loss_sum += step(clip_t[idx], clap_t[idx], gen) * idx.shape[0]
            seen += idx.shape[0]
            global_step += 1
            if max_steps_reached():
                break
        epoch += 1
        complete = seen == n
        record = {"epoch": epoch, "step": global_step, "train_loss": float(loss_sum / seen),  # syncs the device
                  "train_seconds": round(time.perf_counter() - t0, 3)}
        last = epoch >= config.epochs or max_steps_reached()
        if has_val and (epoch % config.val_every == 0 or last):
            t_val = time.perf_counter()
            record.update(validate(eval_net, objective, val_clip_t, val_clap_t, config, device))
            record["val_seconds"] = round(time.perf_counter() - t_val, 3)
            value = record.get(config.monitor)
            if value is not None and (best is None or sign * value > sign * best["value"]):
                best = {"epoch": epoch, "value": float(value), "monitor": config.monitor}
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in eval_net.state_dict().items()}
                best_dirty, stale_validations = True, 0
            else:
                stale_validations += 1
            if config.early_stopping_patience and stale_validations >= config.early_stopping_patience:
                stop_early = record["early_stop"] = True
        if not complete:
            record["partial_epoch"] = True
        history.append(record)
        finishing = epoch >= config.epochs or max_steps_reached() or stop_early
        if complete and (epoch % config.checkpoint_every == 0 or finishing):
            # A partial epoch (max_steps) is not a resumable point: its permutation is half used.
            if best_dirty:  # before the epoch checkpoint that refers to it
                _save_best(out_dir, best_state)
                best_dirty = False
            _save_epoch_checkpoint(out_dir, epoch, {**state_base, "epoch": epoch, "global_step": global_step,
                                                    "history": history, "best": best,
                                                    "stale_validations": stale_validations},
                                   net, optimizer, ema_net, config.keep_checkpoints)
        # Drawing the curve costs about half a second: every epoch would dominate short epochs.
        plot_now = time.monotonic() - last_plot > PLOT_EVERY_S
        _write_history(out_dir, history, plot=plot_now)
        if plot_now:
            last_plot = time.monotonic()
        epoch_bar.update(1)
        epoch_bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_cosine", "val_r1")})
        if on_epoch_end is not None:
            on_epoch_end(dict(record))
    epoch_bar.close()

    if best_dirty:
        _save_best(out_dir, best_state)
    selected = "last"
    if config.select == "best" and best_state is not None:
        eval_net.load_state_dict({k: v.to(device) for k, v in best_state.items()})
        selected = f"best (epoch {best['epoch']}, {best['monitor']} {best['value']:.6g})"
    elif config.select == "best":
        warnings.warn("select='best' needs validation pairs; the last epoch's weights are saved", stacklevel=2)
    training = {**config.to_dict(), "epochs_completed": epoch, "global_step": global_step,
                "train_pairs": n, "val_pairs": int(val_clip.shape[0]) if has_val else 0,
                "val_fingerprint": val_fp, "weights": "ema" if ema_net is not None else "raw",
                "selected": selected, "best": best, "stopped_early": stop_early}
    save_mapper(out_dir, eval_net, objective, metadata=metadata, training=training, data_fingerprint=train_fp)
    if history:
        _write_history(out_dir, history)
    final = dict(history[-1]) if history else {}
    final.update({"selected": selected, "best_epoch": best["epoch"] if best else None,
                  "trainable_params": count_trainable_params(net), "epochs_completed": epoch,
                  "global_step": global_step, "resumed_from_epoch": resumed_from, "out_dir": str(out_dir),
                  "checkpoint_id": sha256_file(out_dir / WEIGHTS_NAME)[:12], "mapper": config.mapper})
    return final


__all__ = ["TrainConfig", "train_mapper", "MAPPER_NAMES", "TrainStep", "make_network", "make_optimizer"]
