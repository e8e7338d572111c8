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
import hashlib
import io
import json
import math
import re
import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from v2a.core import storage
from v2a.core.stopping import raise_if_stopped
from v2a.core.threads import pinned_threads
from v2a.mapper.checkpoint import (WEIGHTS_NAME, atomic_write_text, check_state_shapes, read_safetensors,
                                   save_mapper, save_safetensors, state_dict_to_safetensors)
from v2a.core.checkpoints import checkpoint_id
from v2a.core.fingerprint import short_digest
from v2a.mapper.settings import MONITORS, TrainConfig
from v2a.mapper.validation import embedding_metrics
from v2a.mapper.factory import MAPPER_NAMES, build_mapper, build_objective, count_trainable_params

CHECKPOINTS_DIR = "checkpoints"
HISTORY_NAME = "history.json"
CURVE_NAME = "training_curve.png"
PLOT_EVERY_S = 60.0
BEST_DIR = "best"


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
    return short_digest(h, 16)


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


def epoch_dirs(out_dir: Path) -> list[tuple[int, Path]]:
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
    save_safetensors(state_dict_to_safetensors(net), tmp / WEIGHTS_NAME)
    opt_tensors, groups = _optimizer_tensors(optimizer)
    save_safetensors(opt_tensors, tmp / "optimizer.safetensors")
    if ema_net is not None:
        save_safetensors(state_dict_to_safetensors(ema_net), tmp / "ema.safetensors")
    atomic_write_text(tmp / "state.json", json.dumps({**state, "optimizer_param_groups": groups}, indent=1))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)  # the checkpoint appears whole or not at all
    for _, old in epoch_dirs(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _save_best(out_dir: Path, state: dict) -> None:
    """The best validation weights so far (weights only: no optimizer), replaced atomically."""
    where = out_dir / CHECKPOINTS_DIR / BEST_DIR
    where.mkdir(parents=True, exist_ok=True)
    save_safetensors({k: v.contiguous() for k, v in state.items()}, where / WEIGHTS_NAME)


def check_resumable(saved: dict, config: TrainConfig, fingerprint: str, where: Path) -> None:
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    with storage.atomic_write(str(path)) as handle:
        handle.write(buf.getvalue())


# ---- the training loop --------------------------------------------------------------------------

@dataclass
class _Best:
    """The best validation so far (by `monitor`), its weights, and the validations since it improved."""

    monitor: str
    record: dict | None = None   # {"epoch", "value", "monitor"}
    state: dict | None = None    # CPU copy of the evaluated weights at that epoch
    dirty: bool = False          # not yet written to checkpoints/best/
    stale: int = 0

    def observe(self, epoch: int, record: dict, eval_net: nn.Module) -> None:
        value, sign = record.get(self.monitor), MONITORS[self.monitor]
        if value is not None and (self.record is None or sign * value > sign * self.record["value"]):
            self.record = {"epoch": epoch, "value": float(value), "monitor": self.monitor}
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in eval_net.state_dict().items()}
            self.dirty, self.stale = True, 0
        else:
            self.stale += 1

    def flush(self, out_dir: Path) -> None:
        if self.dirty:
            _save_best(out_dir, self.state)
            self.dirty = False


@dataclass
class _Run:
    """What a training run carries from epoch to epoch (and what an epoch checkpoint restores)."""

    config: TrainConfig
    net: nn.Module
    objective: object
    optimizer: torch.optim.Optimizer
    ema_net: nn.Module | None
    best: _Best
    history: list[dict] = field(default_factory=list)
    epoch: int = 0
    global_step: int = 0
    resumed_from: int | None = None
    stopped_early: bool = False

    @property
    def eval_net(self) -> nn.Module:
        return self.ema_net if self.ema_net is not None else self.net

    def max_steps_reached(self) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps

    def finished(self) -> bool:
        return self.epoch >= self.config.epochs or self.max_steps_reached() or self.stopped_early


@dataclass
class _Data:
    """The pairs on the training device."""

    clip: torch.Tensor
    clap: torch.Tensor
    val_clip: torch.Tensor | None
    val_clap: torch.Tensor | None

    @property
    def has_val(self) -> bool:
        return self.val_clip is not None


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
    train_clip, train_clap, val_clip, val_clap = _checked_pairs(train_clip, train_clap, val_clip, val_clap)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    train_fp = fingerprint_arrays(train_clip, train_clap)
    val_fp = fingerprint_arrays(val_clip, val_clap) if val_clip is not None else None

    # The weights' bits depend on the CPU thread count; pinned, they do not depend on what ran before in
    # the process, so a resumed or standalone run gives the uninterrupted pipeline's mapper.
    with pinned_threads(device.type) as threads:
        run = _new_run(config, train_clip.shape[1], device)
        _resume_from_last_epoch(run, out_dir, train_fp)
        data = _Data(*(torch.from_numpy(a).to(device) if a is not None else None
                       for a in (train_clip, train_clap, val_clip, val_clap)))
        state_base = {"config": config.to_dict(), "train_fingerprint": train_fp, "val_fingerprint": val_fp}
        _epoch_loop(run, data, device, out_dir, state_base, progress, on_epoch_end)
        selected = _select_final_weights(run, device)
        return _save_final(run, data, out_dir, selected, metadata, train_fp, val_fp, threads)


def _checked_pairs(train_clip, train_clap, val_clip, val_clap):
    train_clip, train_clap = _check_pairs("train", train_clip, train_clap, allow_empty=False)
    if val_clip is None or val_clap is None or len(val_clip) == 0:
        return train_clip, train_clap, None, None
    val_clip, val_clap = _check_pairs("val", val_clip, val_clap, allow_empty=True)
    if val_clip.shape[1] != train_clip.shape[1]:
        raise ValueError(f"val dim {val_clip.shape[1]} != train dim {train_clip.shape[1]}")
    return train_clip, train_clap, val_clip, val_clap


def _new_run(config: TrainConfig, dim: int, device: torch.device) -> _Run:
    net = make_network(config, dim).to(device)
    objective = build_objective(config.kind, dim, config.objective_settings())
    optimizer = make_optimizer(net, config, device)
    ema_net = None
    if config.ema:
        ema_net = copy.deepcopy(net)
        for p in ema_net.parameters():
            p.requires_grad_(False)
    return _Run(config, net, objective, optimizer, ema_net, _Best(config.monitor))


def _resume_from_last_epoch(run: _Run, out_dir: Path, train_fp: str) -> None:
    """Load the newest epoch checkpoint into `run` (weights, optimizer, EMA, history, best) if there is one."""
    epochs = epoch_dirs(out_dir)
    if not epochs:
        return
    last_epoch, where = epochs[-1]
    saved = json.loads((where / "state.json").read_text())
    check_resumable(saved, run.config, train_fp, where)
    model_tensors = read_safetensors(where / WEIGHTS_NAME)
    check_state_shapes(run.net, model_tensors, str(where / WEIGHTS_NAME))
    run.net.load_state_dict(model_tensors)
    _load_optimizer_tensors(run.optimizer, read_safetensors(where / "optimizer.safetensors"))
    if run.ema_net is not None:
        run.ema_net.load_state_dict(read_safetensors(where / "ema.safetensors"))
    run.history = saved["history"]
    run.epoch, run.global_step, run.resumed_from = last_epoch, saved["global_step"], last_epoch
    run.best.record = saved.get("best")
    best_file = out_dir / CHECKPOINTS_DIR / BEST_DIR / WEIGHTS_NAME
    if run.best.record is not None and best_file.exists():
        run.best.state = read_safetensors(best_file)
    run.best.stale = int(saved.get("stale_validations", 0))


def _epoch_loop(run: _Run, data: _Data, device: torch.device, out_dir: Path, state_base: dict, progress: bool,
                on_epoch_end: Callable[[dict], None] | None) -> None:
    from tqdm.auto import tqdm

    config = run.config
    step = TrainStep(run.net, run.objective, run.optimizer, config, device, run.ema_net)
    epoch_bar = tqdm(total=config.epochs, initial=run.epoch, desc=f"train {config.mapper}", unit="epoch",
                     disable=not progress)
    run.net.train()
    last_plot = time.monotonic()
    while not run.finished():
        record, complete = _train_one_epoch(run, step, data, device, progress)
        if data.has_val and (run.epoch % config.val_every == 0 or run.epoch >= config.epochs
                             or run.max_steps_reached()):
            _validate_epoch(run, data, device, record)
        if not complete:
            record["partial_epoch"] = True
        run.history.append(record)
        # A partial epoch (max_steps) is not a resumable point: its permutation is half used.
        if complete and (run.epoch % config.checkpoint_every == 0 or run.finished()):
            _checkpoint_epoch(run, out_dir, state_base)
        # Drawing the curve costs about half a second: every epoch would dominate short epochs.
        plot_now = time.monotonic() - last_plot > PLOT_EVERY_S
        _write_history(out_dir, run.history, plot=plot_now)
        if plot_now:
            last_plot = time.monotonic()
        epoch_bar.update(1)
        epoch_bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_cosine", "val_r1")})
        if on_epoch_end is not None:
            on_epoch_end(dict(record))
    epoch_bar.close()
    run.best.flush(out_dir)


def _train_one_epoch(run: _Run, step: TrainStep, data: _Data, device: torch.device,
                     progress: bool) -> tuple[dict, bool]:
    """One pass over a permutation drawn from (seed, epoch); (its record, whether it was whole)."""
    from tqdm.auto import tqdm

    n = data.clip.shape[0]
    bs = min(run.config.batch_size, n)
    t0 = time.perf_counter()
    gen = torch.Generator(device=device).manual_seed(_stream_seed(run.config.seed, 0, run.epoch))
    if device.type == "cpu" or not run.config.cuda_graphs:
        # Dropout (the dalle2-prior block's) draws from the global generator: seeded per epoch, a re-run and a
        # resumed run make the same draws. A captured CUDA graph keeps its own generator state instead.
        torch.manual_seed(_stream_seed(run.config.seed, 2, run.epoch))
    perm = torch.randperm(n, generator=gen, device=device)
    loss_sum = torch.zeros((), device=device)
    seen = 0
    for i in tqdm(range(0, n, bs), total=math.ceil(n / bs), leave=False, disable=not progress, unit="step",
                  desc=f"epoch {run.epoch + 1}"):
        raise_if_stopped()  # the last epoch checkpoint stays: a re-run resumes from it
        idx = perm[i:i + bs]
        loss_sum += step(data.clip[idx], data.clap[idx], gen) * idx.shape[0]
        seen += idx.shape[0]
        run.global_step += 1
        if run.max_steps_reached():
            break
    run.epoch += 1
    record = {"epoch": run.epoch, "step": run.global_step, "train_loss": float(loss_sum / seen),  # syncs the device
              "train_seconds": round(time.perf_counter() - t0, 3)}
    return record, seen == n


def _validate_epoch(run: _Run, data: _Data, device: torch.device, record: dict) -> None:
    """Validation metrics into `record`; track the best epoch and stop early when patience runs out."""
    t_val = time.perf_counter()
    record.update(validate(run.eval_net, run.objective, data.val_clip, data.val_clap, run.config, device))
    record["val_seconds"] = round(time.perf_counter() - t_val, 3)
    run.best.observe(run.epoch, record, run.eval_net)
    patience = run.config.early_stopping_patience
    if patience and run.best.stale >= patience:
        run.stopped_early = record["early_stop"] = True


def _checkpoint_epoch(run: _Run, out_dir: Path, state_base: dict) -> None:
    run.best.flush(out_dir)  # before the epoch checkpoint that refers to it
    _save_epoch_checkpoint(out_dir, run.epoch, {**state_base, "epoch": run.epoch, "global_step": run.global_step,
                                                "history": run.history, "best": run.best.record,
                                                "stale_validations": run.best.stale},
                           run.net, run.optimizer, run.ema_net, run.config.keep_checkpoints)


def _select_final_weights(run: _Run, device: torch.device) -> str:
    """Load the weights `config.select` asks for into the evaluated network; says which they are."""
    if run.config.select != "best":
        return "last"
    best = run.best.record
    if run.best.state is None:
        warnings.warn("select='best' needs validation pairs; the last epoch's weights are saved", stacklevel=3)
        return "last"
    run.eval_net.load_state_dict({k: v.to(device) for k, v in run.best.state.items()})
    return f"best (epoch {best['epoch']}, {best['monitor']} {best['value']:.6g})"


def _save_final(run: _Run, data: _Data, out_dir: Path, selected: str, metadata: dict | None, train_fp: str,
                val_fp: str | None, threads: int) -> dict:
    config, best = run.config, run.best.record
    training = {**config.to_dict(), "epochs_completed": run.epoch, "global_step": run.global_step,
                "train_pairs": data.clip.shape[0], "val_pairs": int(data.val_clip.shape[0]) if data.has_val else 0,
                "val_fingerprint": val_fp, "weights": "ema" if run.ema_net is not None else "raw",
                "selected": selected, "best": best, "stopped_early": run.stopped_early,
                "cpu_threads": threads}  # what the bits depend on, besides the data and the config
    save_mapper(out_dir, run.eval_net, run.objective, metadata=metadata, training=training, data_fingerprint=train_fp)
    if run.history:
        _write_history(out_dir, run.history)
    final = dict(run.history[-1]) if run.history else {}
    final.update({"selected": selected, "best_epoch": best["epoch"] if best else None,
                  "trainable_params": count_trainable_params(run.net), "epochs_completed": run.epoch,
                  "global_step": run.global_step, "resumed_from_epoch": run.resumed_from, "out_dir": str(out_dir),
                  "checkpoint_id": checkpoint_id(out_dir / WEIGHTS_NAME), "mapper": config.mapper})
    return final


__all__ = ["TrainConfig", "train_mapper", "MAPPER_NAMES", "TrainStep", "make_network", "make_optimizer"]
