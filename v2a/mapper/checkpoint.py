"""Final mapper checkpoints: a folder with `config.json` and `model.safetensors`.

Only safetensors is read or written: a checkpoint is data, never code to unpickle.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn

import v2a
from v2a.core.checkpoints import CONFIG_NAME, WEIGHTS_NAME, checkpoint_id
from v2a.mapper.factory import (LEGACY_BLOCK, architecture_of, build_mapper, build_objective, count_trainable_params,
                                mapper_name)
from v2a.core import storage

FORMAT = "v2a-mapper"
FORMAT_VERSION = 1


def state_dict_to_safetensors(net: nn.Module) -> dict[str, torch.Tensor]:
    """CPU tensors; a tensor reached under several keys (a module shared by layers) is copied for
    each further key, as safetensors refuses tensors that share memory."""
    out, seen = {}, set()
    for k, v in net.state_dict().items():
        v = v.detach().to("cpu").contiguous()
        ptr = v.data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    return out


def atomic_write_text(path: Path, text: str) -> None:
    with storage.atomic_write(str(path)) as handle:
        handle.write(text.encode("utf-8"))


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    # Serialised in memory and written through the one atomic path: a failed write leaves the earlier file.
    data = save(tensors, metadata={"format": "pt"})
    with storage.atomic_write(str(path)) as handle:
        handle.write(data)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file; anything else (a pickle, a torch.save zip, junk) is a ValueError."""
    path = Path(path)
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type for a bad header
        with open(path, "rb") as f:
            head = f.read(2)
        # Only sniffed after a failed parse: a valid header length can start with these bytes too.
        if head[:2] == b"PK" or head[:1] == b"\x80":
            raise ValueError(f"{path} looks like a pickle / torch.save file; "
                             "only safetensors files are loaded") from exc
        raise ValueError(f"{path} is not a valid safetensors file: {exc}") from exc


def check_state_shapes(net: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = [f"missing {k}" for k in expected if k not in got]
    problems += [f"unexpected {k}" for k in got if k not in expected]
    problems += [f"{k}: file {got[k]} vs config {expected[k]}" for k in expected if k in got and got[k] != expected[k]]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise ValueError(f"{source} does not match the architecture in its config: {shown}")


def save_mapper(out_dir: str | Path, net: nn.Module, objective, metadata: dict | None = None,
                training: dict | None = None, data_fingerprint: str | None = None) -> Path:
    """Write config.json + model.safetensors into out_dir; returns out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata or {})
    arch = architecture_of(net)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": mapper_name(arch["kind"], arch["arch"]),
        **arch,
        "input_dim": arch["dim"],
        "output_dim": arch["dim"],
        "objective": objective.settings(),
        "trainable_params": count_trainable_params(net),
        "aggregator": metadata.get("aggregator"),
        "data_fingerprint": metadata.get("data_fingerprint", data_fingerprint),
        "array_fingerprint": data_fingerprint,
        "metadata": metadata,
        "training": training or {},
        "v2a_version": v2a.__version__,
        "torch_version": torch.__version__,
    }
    save_safetensors(state_dict_to_safetensors(net), out_dir / WEIGHTS_NAME)
    atomic_write_text(out_dir / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True, default=str))
    return out_dir


class LoadedMapper:
    """A trained mapper ready to turn CLIP image embeddings into pseudo-CLAP audio embeddings."""

    def __init__(self, net: nn.Module, objective, config: dict, checkpoint_id: str, device: torch.device,
                 bf16: bool = False):
        self.net = net.eval()
        self.objective = objective
        self.config = config
        self.checkpoint_id = checkpoint_id
        self.device = device
        self.bf16 = bf16 and device.type == "cuda"

    @property
    def kind(self) -> str:
        return self.config["kind"]

    def map(self, clip_emb: np.ndarray, samples: int = 1, seed: int = 0, guidance_scale: float | None = None,
            steps: int | None = None, batch_size: int = 1024, eta: float | None = None,
            row_keys=None) -> np.ndarray:
        """(N, dim) CLIP embeddings -> (N, samples, dim) L2-normalised float32 audio embeddings.

        Inputs are L2-normalised first (the mapper was trained on unit vectors).
        Diffusion: sample j of row i uses noise keyed by (seed, i, j), so the result does not
        depend on batch_size. `row_keys` (N integers, e.g. hashes of clip ids) replace the row
        positions in that key, so a row's samples also do not depend on which other rows are
        mapped with it; guidance_scale/steps/eta default to the checkpoint's settings
        (paper: 0.9, 200 steps). Regression: the mapping is deterministic, so the one
        prediction is repeated `samples` times (seed, guidance_scale, steps, eta are unused).
        """
        clip_emb = np.asarray(clip_emb, dtype=np.float32)
        dim = self.config["input_dim"]
        if clip_emb.ndim != 2 or clip_emb.shape[1] != dim:
            raise ValueError(f"clip_emb must have shape (N, {dim}), got {clip_emb.shape}")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples={samples!r} is not accepted; accepted: an integer >= 1")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is not accepted; accepted: an integer >= 1")
        n = clip_emb.shape[0]
        out_dim = self.config["output_dim"]
        if n == 0:
            return np.zeros((0, samples, out_dim), dtype=np.float32)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        cond_all = torch.from_numpy(clip_emb)
        if self.kind == "regression":
            outs = []
            for i in range(0, n, batch_size):
                cond = cond_all[i:i + batch_size].to(self.device)
                outs.append(self.objective.generate(self.net, cond, autocast=autocast).float().cpu())
            pred = torch.cat(outs).numpy()
            return np.repeat(pred[:, None, :], samples, axis=1).astype(np.float32)
        keys = torch.arange(n) if row_keys is None else torch.as_tensor(np.asarray(row_keys, dtype=np.int64))
        if keys.shape != (n,):
            raise ValueError(f"row_keys must hold one integer per row ({n}), got shape {tuple(keys.shape)}")
        rows = torch.arange(n).repeat_interleave(samples)
        sample_idx = torch.arange(samples).repeat(n)
        out = torch.empty(n * samples, out_dim)
        for i in range(0, n * samples, batch_size):
            r = rows[i:i + batch_size]
            cond = cond_all[r].to(self.device)
            out[i:i + batch_size] = self.objective.generate(
                self.net, cond, keys[r].to(self.device), sample_idx[i:i + batch_size].to(self.device), seed=seed,
                steps=steps, guidance_scale=guidance_scale, eta=eta, autocast=autocast).float().cpu()
        return out.view(n, samples, out_dim).numpy().astype(np.float32)


def load_mapper(path: str | Path, device: str | torch.device = "cpu", bf16: bool = False) -> LoadedMapper:
    """Load a checkpoint folder written by save_mapper / train_mapper.

    bf16: run the network under bfloat16 autocast (CUDA only; faster, not bit-identical).
    `path` may be any fsspec URI (s3://...): its two files are fetched into a temporary folder first.
    """
    if "://" in str(path) and not str(path).startswith("file://"):
        return _load_remote_mapper(str(path), device, bf16)
    path = Path(str(path).removeprefix("file://"))
    config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    for p in (config_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"mapper checkpoint {path} has no {p.name}")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_path} is not valid JSON: {exc}") from exc
    if config.get("format") != FORMAT:
        raise ValueError(f"{config_path} is not a v2a mapper config "
                         f"(format={config.get('format')!r}, expected {FORMAT!r})")
    arch_keys = ("kind", "arch", "dim", "depth", "expansion", "heads", "head_dim", "num_timesteps", "block",
                 "text_len")
    arch = {k: config[k] for k in arch_keys if k in config}
    if arch.get("arch") == "transformer":
        arch.setdefault("block", LEGACY_BLOCK)  # written before the block was recorded
    net = build_mapper(**arch)
    tensors = read_safetensors(weights_path)
    check_state_shapes(net, tensors, str(weights_path))
    net.load_state_dict(tensors, strict=True)
    device = torch.device(device)
    net = net.to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    objective = build_objective(config["kind"], config["dim"], config.get("objective"))
    return LoadedMapper(net, objective, config, checkpoint_id(weights_path), device, bf16=bf16)


def _load_remote_mapper(uri: str, device, bf16: bool) -> LoadedMapper:
    import tempfile

    from v2a.core import storage

    with tempfile.TemporaryDirectory(prefix="v2a-mapper-") as tmp:
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            fs, remote = storage.filesystem(storage.join(uri, name))
            if not fs.isfile(remote):
                raise FileNotFoundError(f"mapper checkpoint {uri} has no {name}")
            fs.get_file(remote, os.path.join(tmp, name))
        return load_mapper(tmp, device=device, bf16=bf16)
