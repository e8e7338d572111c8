"""Stage 2: decode clips and cache per-frame CLIP and per-clip CLAP embeddings as Parquet shards.

A shard's file name carries a hash of everything that determines its rows (clip ids, model ids,
preprocessing settings), so a re-run skips finished shards and a changed setting re-embeds.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from storage_schemas import errors as errors_schema
from v2a.core import stopping
from v2a.core.stopping import raise_if_stopped
from v2a.core.rates import DECODE_SAMPLE_RATE
from v2a.core import devices
from v2a.core.threads import device_of, pins_threads
from v2a.core import storage
from v2a.core.names import POOLS
from v2a.core.fingerprint import short_digest
from v2a.media.decoders import resolve_backend
from v2a.io import embeddings as embeddings_io
from v2a.io import clips as clips_io
from v2a.io import parquet
from v2a.io.layout import RunLayout
from v2a.media import MediaError, read_clip
from v2a.stages.shape import Stage, StageRun, WorkItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardPlan:
    index: int
    key: str
    clip_ids: tuple[str, ...]
    uri: str
    errors_uri: str


def shard_key(clip_ids, clip_model_id: str, clap_model_id: str, settings: dict) -> str:
    return short_digest({"ids": list(clip_ids), "clip": clip_model_id, "clap": clap_model_id, "settings": settings}, 16)


def plan_shards(clip_ids, out_uri: str, errors_uri: str, shard_size: int, clip_model_id: str,
                clap_model_id: str, settings: dict) -> list[ShardPlan]:
    # Sorted, so each shard holds one contiguous range of ids: a reader that wants a few clips opens
    # only the shard (and the row group) whose footer range holds them.
    ids = sorted(clip_ids)
    plans = []
    for index, start in enumerate(range(0, len(ids), shard_size)):
        chunk = tuple(ids[start:start + shard_size])
        key = shard_key(chunk, clip_model_id, clap_model_id, settings)
        plans.append(ShardPlan(index, key, chunk, storage.join(out_uri, f"shard-{index:05d}-{key}.parquet"),
                               storage.join(errors_uri, f"embed-{index:05d}-{key}.parquet")))
    return plans


def remove_stale_shards(out_uri: str, plans: list[ShardPlan]) -> list[str]:
    """Shards left by an earlier configuration would mix two model spaces in one table: drop them,
    with their error files and any half-written temporary file of a killed run. Run it before the
    shards of a run start, never while they are being written."""
    removed = _remove_unplanned(out_uri, "shard-", {p.uri.rsplit("/", 1)[-1] for p in plans})
    error_dirs = {p.errors_uri.rsplit("/", 1)[0] for p in plans}
    for errors_dir in error_dirs:
        removed += _remove_unplanned(errors_dir, "embed-", {p.errors_uri.rsplit("/", 1)[-1] for p in plans})
    return removed


def _remove_unplanned(folder: str, prefix: str, keep: set[str]) -> list[str]:
    fs, path = storage.filesystem(folder)
    if not fs.exists(path):
        return []
    removed = []
    for found in sorted(fs.find(path)):
        name = found.rsplit("/", 1)[-1]
        # storage.atomic_write's temporary is ".NAME.tmp-XXXX": a SIGKILL mid-write leaves it behind
        temporary = name.startswith(f".{prefix}") and ".tmp-" in name
        stale = name.startswith(prefix) and name.endswith(".parquet") and name not in keep
        if temporary or stale:
            fs.rm(found)
            removed.append(found)
    return removed


def count_errors(plans: list[ShardPlan]) -> int:
    """Error rows recorded for these shards, whether they were embedded now or by an earlier run."""
    files = set(parquet.table_files(plans[0].errors_uri.rsplit("/", 1)[0])) if plans else set()
    return sum(parquet.count_rows(p.errors_uri)[0] for p in plans if p.errors_uri in files)


@dataclass
class _Prepared:
    """One clip ready for the encoders, made in a decode worker. Plain numpy arrays: from a worker
    process they are pickled by value (torch tensors would go through /dev/shm, which containers
    often keep small)."""

    position: int
    clip: dict
    pixels: np.ndarray                   # CLIP input: uint8 (F, S, S, 3) crops (ClipFramePreprocessor.pack)
    frame_times: np.ndarray
    audio: np.ndarray | None             # (clip_samples,) CLAP input at its own rate, None without sound


def _error_row(clip: dict, reason: str) -> dict:
    return {"clip_id": clip["clip_id"], "stage": "embed", "uri": clip["uri"], "reason": reason}


# Decoding and preprocessing a clip holds the GIL for tens of milliseconds of Python (PyAV's packet
# loop, PIL and tensor glue), which caps a thread pool at a few dozen clips/s however many cores
# there are; processes do not share it. From this many workers on, "auto" takes processes.
AUTO_PROCESS_WORKERS = 4


def resolve_pool(pool: str, workers: int) -> str:
    if pool not in POOLS:
        raise ValueError(f"pool {pool!r} unknown; accepted: {', '.join(POOLS)}")
    if pool == "auto":
        pool = "process" if workers >= AUTO_PROCESS_WORKERS else "thread"
    if pool == "process" and multiprocessing.current_process().daemon:
        # e.g. inside a Dask worker: a daemonic process may not start children
        log.warning("decode workers: this process is daemonic and cannot start worker processes; using threads")
        pool = "thread"
    return pool


@dataclass(frozen=True)
class _Job:
    """Everything a decode worker needs besides the clip; small and picklable (no model weights)."""

    frames: object          # ClipFramePreprocessor
    audio: object           # ClapAudioPreparer
    sample_rate: int        # the audio rate the CLAP takes (16 kHz)
    sampling: dict          # read_clip keywords


def _prepare(job: _Job, position: int, clip: dict) -> _Prepared | dict:
    """Decode and preprocess one clip (in a worker). Bad media gives an error row, never raises."""
    try:
        d = read_clip(clip["uri"], sample_rate=job.sample_rate, **job.sampling)
    except MediaError as err:
        return _error_row(clip, str(err))
    except Exception as err:  # a decoder bug must not stop the other clips
        return _error_row(clip, f"could not decode: {type(err).__name__}: {err}")
    try:
        pixels = job.frames.pack(d.frames)
        has_sound = d.audio is not None and d.audio.size > 0
        audio = job.audio(d.audio, d.sample_rate).numpy() if has_sound else None
    except Exception as err:
        return _error_row(clip, f"could not preprocess: {type(err).__name__}: {err}")
    return _Prepared(position, clip, pixels, d.frame_times, audio)


def _one_torch_thread() -> None:
    # Each worker's resampling and normalisation would otherwise start a team of intra-op threads
    # per worker: 16 workers x 16 threads on 16 cores. (In a thread this sets that thread's team.)
    torch.set_num_threads(1)


# How often a decode worker process checks that its parent is still there.
PARENT_POLL_SECONDS = 0.5


def _worker_process_init(parent: int) -> None:
    """Initializer of a decode worker process: it never outlives the v2a process that started it.

    Signals are the parent's to act on: Ctrl-C and SIGTERM reach the whole process group, and a
    worker dying of them mid-clip would break the pool under a parent that is still stopping in
    order (a traceback per worker, and a new pool). The parent ends its workers on its stop flag.
    A parent killed outright (SIGKILL, the OOM killer) runs nothing, so each worker also watches
    its parent id and leaves when it changes. Linux's parent-death signal (prctl PR_SET_PDEATHSIG)
    would not do: it fires when the *thread* that started the worker ends, and workers are started
    by whichever task thread submits first, which ends with its flow."""
    _one_torch_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked since birth: see _spawning
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="v2a-parent-watch", daemon=True).start()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _spawning():
    """Around a submit that may start a worker: the worker is born with SIGINT and SIGTERM blocked
    (a signal mask is inherited), so a Ctrl-C that reaches the group while it is still importing
    stays pending, and is dropped once its initializer ignores it, rather than printing a
    KeyboardInterrupt traceback from the middle of an import. This thread gets them meanwhile no
    more than before: signals go to the main thread."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_PROCESS_POOLS: dict[int, ProcessPoolExecutor] = {}
# Re-entrant: a pool made as a stop arrives is ended at once, by on_stop, while it is held.
_PROCESS_POOLS_LOCK = threading.RLock()


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """One pool per size, kept for the life of the process: starting workers (spawn: each imports
    torch) costs seconds, a shard of 256 clips a few seconds on a GPU machine."""
    with _PROCESS_POOLS_LOCK:
        raise_if_stopped()  # no pool starts after a stop: it would only be ended again
        pool = _PROCESS_POOLS.get(workers)
        if pool is None or getattr(pool, "_broken", False):
            _start_resource_tracker_quietly()
            # spawn, not fork: the parent holds a CUDA context and Prefect's threads, neither survives a fork
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_worker_process_init, initargs=(os.getpid(),))
            _PROCESS_POOLS[workers] = pool
            stopping.on_stop(_end_process_pools)
        return pool


def _start_resource_tracker_quietly() -> None:
    """Start multiprocessing's resource tracker (the pool's semaphores register with it) told to keep
    its warnings to itself. When v2a ends without running its exit handlers (a stop ends in os._exit,
    a SIGKILL runs nothing) the tracker removes the semaphores left behind, as it should, and warns
    "There appear to be N leaked semaphore objects" on the terminal, after the stop's one line."""
    from multiprocessing import resource_tracker

    quiet = "ignore:resource_tracker:UserWarning"
    sys.warnoptions.append(quiet)  # read once, for the tracker's command line (-W)
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(quiet)


def _end_process_pools() -> None:
    """On the stop flag: cancel what waits and kill the workers now. A clip being decoded is not
    worth waiting for (the shard is abandoned), and a worker left running would outlive the stop."""
    with _PROCESS_POOLS_LOCK:
        pools = list(_PROCESS_POOLS.values())
        _PROCESS_POOLS.clear()
    for pool in pools:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()


@atexit.register
def _close_process_pools() -> None:
    for pool in _PROCESS_POOLS.values():
        pool.shutdown(wait=False, cancel_futures=True)
    _PROCESS_POOLS.clear()


def ordered_map(fn, items, workers: int, pool: str = "thread"):
    """fn over items on `workers` threads or processes, results in input order, at most 2 x workers
    in flight: prepared clips wait for the encoders in a bounded queue instead of piling up.

    With processes, fn and its results are pickled; torch tensors travel through shared memory."""
    pool = resolve_pool(pool, workers)
    if workers <= 1 and pool == "thread":
        yield from map(fn, items)
        return
    items = iter(items)
    if pool == "process":
        executor, owned = _process_pool(workers), False
    else:
        before = torch.get_num_threads()
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="v2a-decode",
                                      initializer=_one_torch_thread)
        owned = True
    inflight = deque()
    spawning = _spawning if pool == "process" else contextlib.nullcontext
    try:
        with spawning():
            inflight.extend(executor.submit(fn, item) for item in itertools.islice(items, 2 * workers))
        while inflight:
            done = inflight.popleft()
            with spawning():
                for item in itertools.islice(items, 1):
                    inflight.append(executor.submit(fn, item))
            yield done.result()
    except Exception:
        # A pool ended by a stop refuses work and breaks its futures: the stop is the news, not that.
        raise_if_stopped()
        raise
    finally:
        for future in inflight:
            future.cancel()
        if owned:
            executor.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(before)  # threads started from now on get the process default again


def _prepare_item(item: tuple) -> _Prepared | dict:
    return _prepare(*item)


def resolve_workers(workers: int | None) -> int:
    """0 or None: one decode worker per core, at most 16 (past that, one GPU's encoders are the limit)."""
    if not workers:
        return max(1, min(os.cpu_count() or 1, 16))
    return int(workers)


# An embedding's bits depend on the thread count the encoders run with, which the decode threads' own
# setting (or any earlier stage) would otherwise decide (v2a/core/threads.py).
@pins_threads(device_of("clip_encoder"))
def embed_clips(clips: list[dict], clip_encoder, clap_encoder, num_frames: int = 10, max_seconds: float = 10.0,
                batch_size: int = 64, progress: bool = False, *, frame_rate: float | None = None,
                decoder: str = "auto", workers: int | None = 1, pool: str = "auto",
                audio_batch_size: int = 16,
                on_clip: Callable[[int], None] | None = None) -> tuple[embeddings_io.EmbeddingBlock, list[dict]]:
    """Embed a list of clip rows; return (an EmbeddingBlock of the usable clips, error rows). Bad media never raises.

    ``workers`` threads or processes (``pool``; auto: processes from 4 workers) decode and preprocess clips (frames for
    CLIP, 48 kHz audio for CLAP) while this thread runs the encoders on batches gathered across
    clips: ``batch_size`` frames for CLIP, ``audio_batch_size`` clips for CLAP. Memory stays bounded
    by the batches plus 2 x workers prepared clips, whatever the number of clips. Rows come back in
    the order of ``clips``. ``on_clip(1)`` is called as each clip is decoded (a progress report).
    """
    workers = resolve_workers(workers)
    # resolved once, here: a decoder missing on this machine fails the shard, not every clip in it
    sampling = {"num_frames": num_frames, "frame_rate": frame_rate, "max_seconds": max_seconds,
                "backend": resolve_backend(decoder), "threads": 1 if workers > 1 else 0,
                # The CLAP target's channel choice (AudioLDM keeps channel 0) is made while decoding:
                # the decoders hand on one channel.
                "channels": getattr(clap_encoder.audio_preparer, "channel", "mean")}
    job = _Job(clip_encoder.frame_preprocessor, clap_encoder.audio_preparer, clap_encoder.sample_rate, sampling)
    frame_embs: dict[int, np.ndarray] = {}
    audio_embs: dict[int, np.ndarray] = {}
    done: dict[int, _Prepared] = {}
    errors: list[dict] = []
    frame_queue: list[_Prepared] = []
    audio_queue: list[_Prepared] = []

    def flush_frames():
        pixels = np.concatenate([p.pixels for p in frame_queue])
        embs = np.concatenate([clip_encoder.encode_packed(pixels[i:i + batch_size])
                               for i in range(0, len(pixels), batch_size)])
        offset = 0
        for p in frame_queue:
            n = len(p.pixels)
            frame_embs[p.position] = embs[offset:offset + n]
            offset += n
            p.pixels = None  # the clip's row needs only its embeddings from here on
        frame_queue.clear()

    def flush_audio():
        embs = clap_encoder.encode_prepared(torch.from_numpy(np.stack([p.audio for p in audio_queue])))
        for p, emb in zip(audio_queue, embs):
            audio_embs[p.position] = emb
            p.audio = None
        audio_queue.clear()

    bar = tqdm(total=len(clips), desc="embed", unit="clip", disable=not progress, leave=False)
    for result in ordered_map(_prepare_item, ((job, i, c) for i, c in enumerate(clips)), workers, pool):
        bar.update()
        raise_if_stopped()  # between clips: a stop abandons the shard, which a re-run embeds whole
        if on_clip is not None:
            on_clip(1)
        if isinstance(result, dict):
            errors.append(result)
            continue
        done[result.position] = result
        frame_queue.append(result)
        if sum(len(p.pixels) for p in frame_queue) >= batch_size:
            flush_frames()
        if result.audio is not None:
            audio_queue.append(result)
            if len(audio_queue) >= audio_batch_size:
                flush_audio()
    if frame_queue:
        flush_frames()
    if audio_queue:
        flush_audio()
    bar.close()

    order = sorted(done)
    n = len(order)
    dim = int(clip_encoder.embed_dim)  # known even when every clip of a shard failed
    frames = (np.concatenate([frame_embs[p] for p in order]).astype(np.float32, copy=False) if n
              else np.zeros((0, dim), np.float32))
    offsets = np.concatenate([[0], np.cumsum([len(frame_embs[p]) for p in order])]).astype(np.int64)
    audio = np.zeros((n, dim), np.float32)
    has_audio = np.zeros(n, bool)
    for i, p in enumerate(order):
        if p in audio_embs:
            audio[i], has_audio[i] = audio_embs[p], True
    clips_done = [done[p].clip for p in order]
    times = [np.asarray(done[p].frame_times, np.float32).tolist() for p in order]
    block = embeddings_io.EmbeddingBlock(
        [c["clip_id"] for c in clips_done], [c["kind"] for c in clips_done], frames, offsets, audio, has_audio,
        [clip_encoder.model_id] * n, [clap_encoder.model_id] * n, times)
    return block, errors


def run_shard(plan: ShardPlan, clips_by_id: dict[str, dict], clip_encoder, clap_encoder, num_frames: int,
              max_seconds: float, batch_size: int, progress: bool = False, *, frame_rate: float | None = None,
              decoder: str = "auto", workers: int | None = 1, pool: str = "auto",
              on_clip: Callable[[int], None] | None = None, provenance: dict | None = None) -> dict:
    """Embed one shard (whether it is already there is the caller's question: `STAGE.done`). Errors are
    written before the shard, so a shard file on disk always means its errors are recorded too.
    on_clip: see embed_clips. provenance: the host and device recorded in every row
    (storage_schemas/provenance.py)."""
    missing = [c for c in plan.clip_ids if c not in clips_by_id]
    if missing:
        raise ValueError(f"shard {plan.index}: {len(missing)} clip(s) of the plan are not in the clips table "
                         f"(first: {missing[0]!r}); the table changed since planning: run the stage again")
    block, errors = embed_clips([clips_by_id[c] for c in plan.clip_ids], clip_encoder, clap_encoder,
                                       num_frames, max_seconds, batch_size, progress, frame_rate=frame_rate,
                                       decoder=decoder, workers=workers, pool=pool, on_clip=on_clip)
    if errors:
        parquet.write_table(errors, plan.errors_uri, errors_schema.SCHEMA, "errors")
    embeddings_io.write_embeddings(block, plan.uri, provenance=provenance)
    return {"shard": plan.index, "skipped": False, "rows": len(block), "errors": len(errors)}


# --------------------------------------------------------------------------- the stage's shape (v2a.stages.shape)

def shard_settings(section) -> dict:
    """What besides the clip ids and model ids determines a shard's rows: part of its file name."""
    # The decoder is left out: every backend gives the same frames and audio (tests/media/test_decoders.py).
    settings = {"num_frames": section.num_frames, "max_seconds": section.max_seconds, "audio_rate": DECODE_SAMPLE_RATE}
    if section.frame_rate is not None:  # only when set, so the keys of shards embedded by frame count stay as they were
        settings["frame_rate"] = section.frame_rate
    return settings


def _plans(items) -> list[ShardPlan]:
    return [ShardPlan(**{**i.inputs, "clip_ids": tuple(i.inputs["clip_ids"])}) for i in map(WorkItem.from_json, items)]


def _plan(section, run: StageRun, models) -> list[WorkItem]:
    # Both encoders are built for their model ids (the task caches the plan: an unchanged re-run loads none).
    layout = RunLayout(run.out)
    ids = clips_io.read_clips(layout.clips, columns=["clip_id"]).column("clip_id").to_pylist()
    plans = plan_shards(ids, layout.embeddings, layout.errors, section.shard_size, models.get("clip").model_id,
                        models.get("clap").model_id, shard_settings(section))
    return [WorkItem(str(p.index), {**p.__dict__, "clip_ids": list(p.clip_ids)},
                     {"clips": len(p.clip_ids), "shards": 1}) for p in plans]


def _run(item: WorkItem, section, run: StageRun, models, report) -> dict:
    (plan,) = _plans([item])
    by_id = clips_io.clip_rows(RunLayout(run.out).clips, plan.clip_ids)  # only this shard's rows are decoded
    with models.lock("encoders"):
        summary = run_shard(plan, by_id, models.get("clip"), models.get("clap"), section.num_frames,
                            section.max_seconds, section.batch_size, progress=sys.stderr.isatty(),
                            frame_rate=section.frame_rate, decoder=section.decoder, workers=section.workers,
                            pool=section.pool, on_clip=lambda n: report(clips=n),
                            provenance=devices.provenance(run.device))
    report(shards=1)
    return summary


def _summarize(results, section, run: StageRun, closing=None) -> dict:
    layout = RunLayout(run.out)
    # Shards from the task cache or found on disk were done by an earlier run: only the rest is new.
    new = [r for r in results if not r["skipped"] and not r["cached"]]
    errors_dir = layout.errors
    files = [f for f in parquet.table_files(errors_dir) if f.rsplit("/", 1)[-1].startswith("embed-")] \
        if storage.exists(errors_dir) else []
    summary = {"shards": len(results), "skipped": len(results) - len(new),
               "rows": sum(r["rows"] for r in new), "errors": sum(r["errors"] for r in new),
               # the stale shards' error files are gone (`before`): what is left is this plan's
               "errors_total": sum(parquet.count_rows(f)[0] for f in files),
               "rows_total": parquet.count_rows(layout.embeddings)[0]}  # from the shards' footers
    summary["line"] = (f"embed: {summary['shards']} shards ({summary['skipped']} already done), "
                       f"{summary['rows']} new rows, {summary['errors']} new clips in the errors table "
                       f"({summary['errors_total']} in all, see {errors_dir})")
    return summary


STAGE = Stage(
    name="embed", section="embed", plan=_plan, run=_run, summarize=_summarize,
    done=lambda item, section, run: storage.exists(item.inputs["uri"]),
    outputs=lambda item, section, run: [item.inputs["uri"]],
    reads=lambda section, run: [RunLayout(run.out).clips],
    # Shards left by an earlier configuration would mix two model spaces in one table.
    before=lambda items, section, run: remove_stale_shards(RunLayout(run.out).embeddings, _plans(items)),
    # A task embeds a few shards in turn: a shard is the unit of storage and resumption, a task the unit of
    # scheduling, whose fixed cost (~0.1 s in Prefect) would otherwise be paid ~800 times for VGGSound.
    items_per_task=lambda section: section.shards_per_task, task_label="shards",
)
