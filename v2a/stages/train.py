"""Stage 3 glue: embeddings table → aggregated (CLIP, CLAP) pairs → a trained mapper checkpoint."""

from __future__ import annotations


import numpy as np

from v2a.mapper.settings import TrainConfig
from v2a.core import storage
from v2a.core.fingerprint import short_digest
from v2a.io.pairs import compact
from v2a.io.pairs import load_pairs as load_aggregated
from v2a.stages.shape import Stage, StageRun, WorkItem


def load_pairs(embeddings_uri: str, aggregator: str = "mean", seed: int = 0, val_fraction: float = 0.1,
               clips_uri: str | None = None, progress: bool = False):
    """Training and validation pairs: split `val` where present, else a seeded hold-out of `train`.

    Streams the table shard by shard into contiguous arrays (peak: the arrays plus one shard); the
    split of each clip is read from the clips table. Returns (train_clip, train_clap, val_clip,
    val_clap, info) with float32 (N, D) arrays, rows in clip-id order.
    """
    pairs = load_aggregated(embeddings_uri, aggregator, seed=seed, audio_only=True, clips_uri=clips_uri,
                            progress=progress)
    if not len(pairs.clip_ids):
        raise ValueError(f"{embeddings_uri}: no rows with an audio embedding to train on")
    is_train, is_val = pairs.splits == "train", pairs.splits == "val"
    if not is_train.any():
        raise ValueError(f"{embeddings_uri}: no rows in split 'train'")
    ids = np.asarray(pairs.clip_ids, dtype=object)
    if not is_val.any():
        train_rows = np.flatnonzero(is_train)
        order = np.random.default_rng(seed).permutation(len(train_rows))
        n_val = max(1, int(round(len(train_rows) * val_fraction))) if len(train_rows) > 1 else 0
        is_val = np.zeros(len(ids), bool)
        is_val[train_rows[order[:n_val]]] = True
        is_train &= ~is_val
    # The validation rows are copied out (a tenth); the training rows are packed in place, so the
    # peak stays near one copy of the arrays however large the table.
    val_clip, val_clap, val_ids = pairs.clip[is_val], pairs.clap[is_val], ids[is_val]
    train_clip, train_clap = compact(pairs.clip, is_train), compact(pairs.clap, is_train)
    train_ids = ids[is_train]
    models = sorted(pairs.model_ids)
    fingerprint = short_digest("\n".join(list(train_ids) + list(val_ids) + models + [aggregator]), 16)
    info = {"aggregator": aggregator, "data_fingerprint": fingerprint, "n_train": len(train_ids),
            "n_val": len(val_ids), "clip_model_id": pairs.clip_model_id, "clap_model_id": pairs.clap_model_id,
            "embeddings": str(embeddings_uri)}
    return train_clip, train_clap, (val_clip if len(val_ids) else None), (val_clap if len(val_ids) else None), info


def discard_incompatible_checkpoints(out_dir: str, config, train_clip: np.ndarray, train_clap: np.ndarray) -> bool:
    """Remove out_dir's epoch checkpoints when training with `config` on these arrays cannot resume
    from them; True when some were removed."""
    import json
    import shutil
    from pathlib import Path

    from v2a.mapper.trainer import CHECKPOINTS_DIR, check_resumable, epoch_dirs, fingerprint_arrays

    epochs = epoch_dirs(Path(out_dir))
    if not epochs:
        return False
    where = epochs[-1][1]
    try:
        check_resumable(json.loads((where / "state.json").read_text()), config,
                         fingerprint_arrays(train_clip, train_clap), where)
        return False
    except ValueError:
        shutil.rmtree(Path(out_dir) / CHECKPOINTS_DIR)
        return True


def train_stage(embeddings_uri: str, out_dir: str, config: TrainConfig | None = None, aggregator: str = "mean",
                progress: bool = True, restart_incompatible: bool = False, clips_uri: str | None = None,
                on_epoch_end=None) -> dict:
    """Train a mapper with `config` (the paper's settings when None) into out_dir, a local folder or any URI.

    A remote out_dir is trained in a local temporary folder, seeded with what out_dir already holds
    (so an interrupted run resumes from its last epoch checkpoint) and uploaded afterwards, the final
    config.json and model.safetensors last so that their presence means the checkpoint is whole.
    restart_incompatible: epoch checkpoints of another configuration or other data are removed
    instead of stopping the run. on_epoch_end(record): called after each epoch (train_mapper).
    """
    import tempfile

    from v2a.core.checkpoints import CONFIG_NAME, WEIGHTS_NAME
    from v2a.mapper.trainer import CHECKPOINTS_DIR, train_mapper

    config = TrainConfig() if config is None else config.trainer_settings()
    tc, ta, vc, va, info = load_pairs(embeddings_uri, aggregator, seed=config.seed, clips_uri=clips_uri,
                                      progress=progress)
    with tempfile.TemporaryDirectory(prefix="v2a-train-") as tmp:
        remote = not storage.is_local(out_dir)
        work = tmp if remote else storage.local_path(out_dir)
        if remote:
            storage.download_dir(out_dir, work)
        if restart_incompatible and discard_incompatible_checkpoints(work, config, tc, ta) and remote:
            storage.remove(storage.join(out_dir, CHECKPOINTS_DIR), recursive=True)
        metrics = train_mapper(tc, ta, vc, va, config, work, metadata=info, progress=progress,
                               on_epoch_end=on_epoch_end)
        if remote:
            _upload_checkpoint(work, out_dir, (WEIGHTS_NAME, CONFIG_NAME), CHECKPOINTS_DIR)
    return {**info, **metrics, "out_dir": str(out_dir)}


def _upload_checkpoint(work: str, out_dir: str, final: tuple[str, ...], checkpoints_dir: str) -> None:
    import os

    storage.upload_dir(work, out_dir, skip=lambda rel: rel in final)
    # Epoch checkpoints pruned locally go remotely too, once the kept ones are safely up.
    kept = {os.path.relpath(os.path.join(d, n), work).replace(os.sep, "/")
            for d, _, names in os.walk(os.path.join(work, checkpoints_dir)) for n in names}
    fs, root = storage.filesystem(out_dir)
    root = root.rstrip("/") + "/"
    for path in fs.find(root + checkpoints_dir):
        if path.startswith(root) and path[len(root):] not in kept:
            fs.rm(path)
    for name in final:  # last: their presence means the checkpoint is whole
        storage.upload_dir(work, out_dir, skip=lambda rel, keep=name: rel != keep)


# --------------------------------------------------------------------------- the stage's shape (v2a.stages.shape)
# Run arguments (StageRun.args): embeddings, mapper_dir (the checkpoint's folder), clips (the clips table the
# splits are read from; None: the one beside the embeddings) and restart_incompatible (see train_stage).
# One item; a retry resumes from the last epoch checkpoint, it does not start over.

_SHOWN = ("train_loss", "val_loss", "val_cosine", "val_r1", "val_r10")
MAX_EPOCH_LINES = 100  # at most this many epoch lines in a run's log: every N-th (and the last) past it


def epoch_line(record: dict, epochs: int) -> str:
    """`epoch 12/60: train_loss 0.01234, val_cosine 0.4120 (0.8 s)`."""
    values = ", ".join(f"{k} {record[k]:.4g}" for k in _SHOWN if isinstance(record.get(k), (int, float)))
    return f"epoch {record['epoch']}/{epochs}: {values} ({record.get('train_seconds', 0):.1f} s)"


def _run(item: WorkItem, section, run: StageRun, models, report) -> dict:
    import math
    import sys

    every = max(1, math.ceil(section.epochs / MAX_EPOCH_LINES))

    def on_epoch_end(record: dict) -> None:
        shown = record["epoch"] % every == 0 or record["epoch"] >= section.epochs or record.get("early_stop")
        # `at`: a resumed run starts past epoch 0
        report(note=epoch_line(record, section.epochs), log=bool(shown), at={"epochs": record["epoch"]})

    return train_stage(run.arg("embeddings"), run.arg("mapper_dir"), section, aggregator=section.aggregator,
                       restart_incompatible=bool(run.arg("restart_incompatible")), clips_uri=run.arg("clips"),
                       progress=sys.stderr.isatty(), on_epoch_end=on_epoch_end)


def _summarize(results, section, run: StageRun, closing=None) -> dict:
    (result,) = results
    metrics = {k: v for k, v in result.items() if k not in ("key", "units", "skipped")}
    return {**metrics, "line": f"train: {section.mapper} → {run.arg('mapper_dir')}"
                               + (" (from the task cache)" if result["cached"] else "")}


def _outputs(item: WorkItem, section, run: StageRun) -> list[str]:
    from v2a.core.checkpoints import CONFIG_NAME, WEIGHTS_NAME

    return [storage.join(run.arg("mapper_dir"), WEIGHTS_NAME), storage.join(run.arg("mapper_dir"), CONFIG_NAME)]


STAGE = Stage(
    name="train", section="train", run=_run, summarize=_summarize, outputs=_outputs, task_label="mapper",
    mapped=False,
    plan=lambda section, run, models: [WorkItem("mapper", {}, {"epochs": section.epochs})],
    reads=lambda section, run: [run.arg("embeddings"), run.arg("clips")],
)
