"""Stage 4: mapped pseudo-CLAP embeddings (or a baseline conditioning) → AudioLDM → 16 kHz audio files.

Each clip's noise comes from a seed derived from the run seed and the clip id, so a clip's audio
does not depend on which batch it lands in, and a resumed run reproduces it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import soundfile as sf
from tqdm import tqdm

from v2a.core.stopping import raise_if_stopped
from v2a.core.threads import device_of, pins_threads
from v2a.io.layout import GenerationLayout
from v2a.core import storage
from v2a.core.aggregate import aggregate_frames, frames_array
from v2a.config import GenerateConfig, TrainStageConfig, defaults
from v2a.core.seeds import derive_seed  # noqa: F401  (re-exported: older scripts import it from here)
from v2a.io import generations as generations_io
from v2a.io.audio import write_wav
from v2a.io.clips import check_clip_id
from v2a.io.generations import read_generations
from v2a.io.layout import RunLayout
from v2a.core import devices
from v2a.stages.shape import Stage, StageRun, WorkItem

# The library's keyword defaults are the configuration's (v2a/config.py), written there once.
_G, _T = defaults(GenerateConfig), defaults(TrainStageConfig)


def audio_uri(gen_dir: str, clip_id: str, sample: int) -> str:
    return storage.join(GenerationLayout(gen_dir).audio, f"{check_clip_id(clip_id)}__s{int(sample)}.wav")


def is_valid_audio(uri: str, seconds: float, sample_rate: int) -> bool:
    """A file that opens as audio of the recorded length; anything else is generated again."""
    try:
        if storage.is_local(uri):  # libsndfile reads the header itself: no Python file object in between
            info = sf.info(storage.local_path(uri))
        else:
            fs, path = storage.filesystem(uri)
            with fs.open(path, "rb") as handle:
                info = sf.info(handle)
    except Exception:
        return False
    return info.samplerate == sample_rate and info.frames == int(round(seconds * sample_rate))


def done_samples(gen_dir: str, clip_ids) -> set[tuple[str, int]]:
    """(clip_id, sample) pairs of these clips with a table row and a valid file: skipped on a re-run, so
    nothing is written twice. Only these clips' rows are read and only their files opened."""
    df = read_generations(gen_dir, ids=clip_ids)
    return {(c, int(s)) for c, s, u, sec, sr in zip(df["clip_id"], df["sample"], df["uri"], df["seconds"],
                                                   df["sample_rate"]) if is_valid_audio(u, float(sec), int(sr))}


def conditioning_rows(embeddings_uri: str, clip_ids, clips_uri: str | None = None) -> list[dict]:
    """The embedding rows of these clips (frames as arrays) with their label from the clips table."""
    from v2a.io import clips as clips_io
    from v2a.io import embeddings as embeddings_io

    rows = embeddings_io.read_block(embeddings_uri, ids=clip_ids, with_audio=False).rows()
    clips = clips_uri or embeddings_io.sibling_clips(embeddings_uri)
    labels = clips_io.labels(clips, ids=clip_ids) if storage.exists(clips) else {}
    for r in rows:
        r["label"] = labels.get(r["clip_id"])
    return rows


class Conditioner:
    """Turns embedding rows into the embeddings AudioLDM is conditioned on, for one conditioning mode."""

    def __init__(self, mode: str, generator, mapper=None, aggregator: str = _T["aggregator"],
                 mapper_guidance: float = _G["mapper_guidance"], mapper_steps: int = _G["mapper_steps"],
                 run_seed: int = _G["seed"]):
        if mode == "mapper" and mapper is None:
            raise ValueError("conditioning 'mapper' needs a mapper checkpoint")
        self.mode, self.generator, self.mapper = mode, generator, mapper
        self.aggregator = (mapper.config.get("aggregator") or aggregator) if mapper is not None else aggregator
        self.mapper_guidance, self.mapper_steps, self.run_seed = mapper_guidance, mapper_steps, run_seed

    def __call__(self, rows, samples: int) -> np.ndarray:
        """(N, samples, D) conditioning for N embedding rows."""
        if self.mode == "text":
            texts = [r["label"] or "" for r in rows]
            emb = self.generator.encode_text(texts)
            return np.repeat(emb[:, None, :], samples, axis=1)
        clip = np.stack([aggregate_frames(frames_array(r["image_frames"]),
                                          self.aggregator, r["clip_id"], self.run_seed) for r in rows])
        if self.mode == "no-mapper":
            return np.repeat(clip[:, None, :], samples, axis=1)
        # Noise keyed by a hash of each clip id: a clip's samples do not depend on the batch it is mapped in.
        keys = [derive_seed(self.run_seed, r["clip_id"], 0, "mapper") for r in rows]
        return self.mapper.map(clip, samples=samples, seed=self.run_seed, guidance_scale=self.mapper_guidance,
                               steps=self.mapper_steps, row_keys=keys)


# A waveform's bits depend on the CPU thread count: pinned, a resumed run writes the files an uninterrupted
# one writes, whatever ran before it in the process (v2a/core/threads.py).
@pins_threads(device_of("generator"))
def generate_clips(rows: list[dict], gen_dir: str, run_id: str, conditioner: Conditioner, generator, negative,
                   samples: int = _G["samples"], seconds: float = _G["seconds"], steps: int = _G["steps"],
                   generator_guidance: float = _G["generator_guidance"], scheduler: str = _G["scheduler"],
                   batch_size: int = _G["batch_size"], run_seed: int = _G["seed"], progress: bool = False,
                   mapper_checkpoint_id: str | None = None, mapper_kind: str | None = None,
                   on_samples: Callable[[int], None] | None = None, provenance: dict | None = None) -> dict:
    """Generate audio for embedding rows not yet done: one table part per finished batch while it runs,
    merged into one part for these rows at the end. on_samples(n) is called as each batch of n
    (clip, sample) files is written (a progress report). provenance: the host and device recorded in
    each row (storage_schemas/provenance.py)."""
    clip_ids = [r["clip_id"] for r in rows]
    key = generations_io.shard_key(run_id, clip_ids, samples)
    done = done_samples(gen_dir, clip_ids)
    jobs = [(r, s) for r in rows for s in range(samples) if (r["clip_id"], s) not in done]
    written = 0
    bar = tqdm(total=len(jobs), desc="generate", disable=not progress, leave=False)
    cond_cache: dict[str, np.ndarray] = {}
    for start in range(0, len(jobs), batch_size):
        raise_if_stopped()  # between batches: the finished ones are kept, a re-run does the rest
        batch = jobs[start:start + batch_size]
        t0 = time.perf_counter()
        need = [r for r, _ in batch if r["clip_id"] not in cond_cache]
        if need:
            unique = list({r["clip_id"]: r for r in need}.values())
            cond_cache.update(zip([r["clip_id"] for r in unique], conditioner(unique, samples)))
        cond = np.stack([cond_cache[r["clip_id"]][s] for r, s in batch])
        seeds = [derive_seed(run_seed, r["clip_id"], s) for r, s in batch]
        waves = generator.generate(cond, seeds=seeds, negative=negative, steps=steps, guidance_scale=generator_guidance,
                                   seconds=seconds, scheduler=scheduler)
        per_item = (time.perf_counter() - t0) / len(batch)
        out_rows = []
        for (r, s), seed, wave in zip(batch, seeds, waves):
            uri = audio_uri(gen_dir, r["clip_id"], s)
            write_wav(uri, wave, generator.sample_rate)
            out_rows.append({
                "run_id": run_id, "clip_id": r["clip_id"], "sample": s, "uri": uri, "seed": seed,
                "conditioning": conditioner.mode, "mapper_checkpoint_id": mapper_checkpoint_id,
                "mapper_kind": mapper_kind, "aggregator": conditioner.aggregator if conditioner.mode != "text" else None,
                "mapper_guidance": conditioner.mapper_guidance if conditioner.mode == "mapper" else None,
                "mapper_steps": conditioner.mapper_steps if conditioner.mode == "mapper" else None,
                "generator_id": generator.model_id, "generator_guidance": generator_guidance, "generator_steps": steps,
                "scheduler": scheduler, "seconds": seconds, "sample_rate": generator.sample_rate,
                "gen_time_s": per_item, "host": (provenance or {}).get("host"),
                "device": (provenance or {}).get("device"),
            })
        generations_io.write_batch(gen_dir, out_rows, key)
        written += len(out_rows)
        bar.update(len(batch))
        if on_samples is not None:
            on_samples(len(batch))
    bar.close()
    if written or generations_io.batch_parts(gen_dir, key):
        generations_io.merge_shard(gen_dir, key, read_generations(gen_dir, ids=clip_ids))
    return {"generated": written, "skipped": len(rows) * samples - len(jobs)}


# --------------------------------------------------------------------------- the stage's shape (v2a.stages.shape)
# Run arguments (StageRun.args): run_id, embeddings (the table the split's embeddings are read from) and
# checkpoint (the mapper's folder; None without a mapper).

def generation_dir(run: StageRun) -> str:
    return RunLayout(run.out).generations(run.arg("run_id")).root


def _plan(section, run: StageRun, models) -> list[WorkItem]:
    from v2a.io.embeddings import split_ids

    # Split from the clips table, ids from one column of the embeddings: no vector is read here.
    ids = split_ids(run.arg("embeddings"), section.split, RunLayout(run.out).clips)
    ids = ids[:section.max_clips] if section.max_clips else ids
    if not ids:
        raise ValueError(f"{run.arg('embeddings')}: no clips in split {section.split!r} to generate for")
    shards = [ids[i:i + section.shard_size] for i in range(0, len(ids), section.shard_size)]
    return [WorkItem(str(i), {"clip_ids": list(c)}, {"samples": len(c) * section.samples, "clips": len(c)})
            for i, c in enumerate(shards)]


def _before(items, section, run: StageRun) -> None:
    # Written before any shard starts: evaluation tells a half-finished set from a finished one by it.
    generations_io.write_plan(generation_dir(run), [c for i in items for c in i.inputs["clip_ids"]], section.samples)


def _outputs(item: WorkItem, section, run: StageRun) -> list[str]:
    return [audio_uri(generation_dir(run), c, s) for c in item.inputs["clip_ids"] for s in range(section.samples)]


def _done(item: WorkItem, section, run: StageRun) -> bool:
    """Every (clip, sample) of the shard has a table row and a valid file; only the shard's own files are opened."""
    clip_ids = item.inputs["clip_ids"]
    want = {(c, s) for c in clip_ids for s in range(section.samples)}
    return want <= done_samples(generation_dir(run), clip_ids)


def _run(item: WorkItem, section, run: StageRun, models, report) -> dict:
    import sys

    g = section
    rows = conditioning_rows(run.arg("embeddings"), item.inputs["clip_ids"], RunLayout(run.out).clips)
    generator = models.get("generator")
    mapper = models.mapper(run.arg("checkpoint")) if g.conditioning == "mapper" else None
    conditioner = Conditioner(g.conditioning, generator, mapper, mapper_guidance=g.mapper_guidance,
                              mapper_steps=g.mapper_steps, run_seed=g.seed)
    with models.lock("generator"):
        done = generate_clips(
            rows, generation_dir(run), run.arg("run_id"), conditioner, generator, models.empty_text(),
            samples=g.samples, seconds=g.seconds, steps=g.steps, generator_guidance=g.generator_guidance,
            scheduler=g.scheduler, batch_size=g.batch_size, run_seed=g.seed, progress=sys.stderr.isatty(),
            mapper_checkpoint_id=mapper.checkpoint_id if mapper else None,
            mapper_kind=mapper.config.get("name") if mapper else None,
            on_samples=lambda n: report(samples=n, clips=n / g.samples), provenance=devices.provenance(run.device))
    return {"generated": done["generated"], "files_skipped": done["skipped"]}


def _summarize(results, section, run: StageRun, closing=None) -> dict:
    gen_dir = generation_dir(run)
    ran = [r for r in results if not r["skipped"] and not r["cached"]]
    generated = sum(r["generated"] for r in ran)
    # Skipped: files a shard found already there, and every file of a shard done by an earlier run or cached.
    skipped = sum(r["files_skipped"] for r in ran) + sum(r["units"]["samples"] for r in results
                                                         if r["skipped"] or r["cached"])
    return {"gen_dir": gen_dir, "generated": generated, "skipped": skipped,
            "line": f"generate: {generated} files written, {skipped} already there → {gen_dir}"}


STAGE = Stage(
    name="generate", section="generate", plan=_plan, run=_run, summarize=_summarize, done=_done,
    outputs=_outputs, before=_before, task_label="shard",
    reads=lambda section, run: [run.arg("embeddings"), run.arg("checkpoint"), RunLayout(run.out).clips],
)
