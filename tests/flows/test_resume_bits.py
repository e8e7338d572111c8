"""A pipeline stopped during embed and again during training, each time in a process whose history
differs (one left on a single CPU thread, as overlapping decode pools leave it), then resumed, ends
with the bits of a run never interrupted: the mapper's sha256, every WAV's bytes, every result value.

The runs are real `v2a pipeline` processes with the stop-flag shim of test_signals.py, which marks the
stage a stop lands in and slows that stage's batches. The tiny profile's matrices are too small for the
thread count to change their sums, so this test guards the resume itself (epoch seeds, checkpoints,
shards, batches); tests/core/test_threads.py shows the thread count changing a mapper's and a waveform's
bits, and the pinning that stops it."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.flows.test_signals import _SHIM, _env

ROOT = Path(__file__).resolve().parents[2]
# Run first in the shimmed process: what a process looks like after two embed tasks' decode pools overlapped.
_ONE_THREAD = "import torch; torch.set_num_threads(1)\n"


def _config(tmp: Path, data: Path, name: str) -> Path:
    from v2a.tools.demo import demo_config

    cfg = demo_config(tmp / name, data, 1.0)
    cfg["out"] = str(tmp / name / "run")
    cfg["embed"].update(num_frames=2, shard_size=2)
    cfg["train"].update(epochs=8, batch_size=2, checkpoint_every=2)  # 3 batches an epoch
    cfg["generate"].update(steps=4, mapper_steps=8, batch_size=1)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _stop_when(config: Path, tmp: Path, stage: str, landed, one_thread: bool) -> None:
    """Run the pipeline, SIGTERM its group once `landed()` holds (the stage is at work), wait for it."""
    marks = tmp / "marks"
    marks.mkdir(exist_ok=True)
    for old in marks.iterdir():
        old.unlink()
    code = (_ONE_THREAD if one_thread else "") + _SHIM
    proc = subprocess.Popen([sys.executable, "-c", code, "pipeline", "--config", str(config)], cwd=tmp,
                            env=_env(tmp, V2A_TEST_STAGE=stage), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 400
    while not ((marks / stage).exists() and landed()):
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before the stop in {stage}:\n"
                        f"{proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"{stage} never began"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]


def _bits(run: Path) -> dict:
    results = pd.read_parquet(run / "results")
    results = results[results["metric"] != "gen_time_s"]  # seconds per sample: a timing, not a result
    return {"mapper": {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in (run / "mappers").glob("*/model.safetensors")},
            "wavs": {p.name: p.read_bytes() for p in sorted((run / "generations").rglob("*.wav"))},
            "results": sorted(zip(results["metric"], results["extractor"].astype(str), results["value"]))}


@pytest.mark.slow
def test_stops_during_embed_and_training_resume_to_the_uninterrupted_bits(tmp_path):
    from v2a.tools.synth import make_synthetic_dataset

    data = tmp_path / "data"
    make_synthetic_dataset(data, classes=2, clips_per_class=4, seconds=1.0, seed=3, images_per_class=0,
                           progress=False)
    straight = subprocess.Popen([sys.executable, "-m", "flows.cli", "pipeline", "--config",
                                 str(_config(tmp_path, data, "straight"))], cwd=tmp_path,
                                env=_env(tmp_path, PREFECT_HOME=str(tmp_path / "prefect-straight")),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    config = _config(tmp_path, data, "stopped")
    run = tmp_path / "stopped" / "run"

    # 1: on one thread, stopped once the first embedding shard is written (the others are still to do).
    _stop_when(config, tmp_path, "embed", lambda: any((run / "embeddings").glob("*.parquet")), one_thread=True)
    assert not (run / "mappers").exists()
    # 2: with the machine's threads, embeds the rest, stopped after its first epoch checkpoint (the shim makes
    # each batch take 0.25 s: 6 epochs to go take 4.5 s).
    _stop_when(config, tmp_path, "train",
               lambda: any((run / "mappers").glob("*/checkpoints/epoch_*/state.json")), one_thread=False)
    assert not list((run / "mappers").glob("*/model.safetensors"))
    # 3: on one thread again, resumes training from its checkpoint, generates and evaluates.
    resumed = subprocess.run([sys.executable, "-c", _ONE_THREAD + _SHIM, "pipeline", "--config", str(config)],
                             cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err[-3000:]

    a, b = _bits(tmp_path / "straight" / "run"), _bits(run)
    assert a["mapper"] and a["mapper"] == b["mapper"]
    assert a["wavs"] and a["wavs"].keys() == b["wavs"].keys()
    assert [k for k in a["wavs"] if a["wavs"][k] != b["wavs"][k]] == []
    assert a["results"] and a["results"] == b["results"]  # exact values, not rounded
