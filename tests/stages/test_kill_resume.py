"""SIGKILL a long stage in a real subprocess as soon as its first output appears, run it again, and
compare with a run that was never interrupted: the same rows, none twice, no half-written files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from v2a.stages import generate

ROOT = Path(__file__).resolve().parents[2]


def _start(script: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> None:
    assert proc.wait(timeout=180) == 0, proc.stderr.read().decode()[-3000:]


def _kill_when(proc: subprocess.Popen, appeared, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not appeared():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the stage never wrote its first output"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".tmp-" in p.name or p.name.endswith(".partial")]


# --------------------------------------------------------------------------- generate

_GENERATE = """
import sys, time
import numpy as np
from v2a.stages import generate
from v2a.runtime.model_cache import empty_text_embedding, get_model

gen_dir, pause = sys.argv[1], float(sys.argv[2])
generator = get_model("tiny", "generator")
rng = np.random.default_rng(0)
rows = []
for i in range(4):
    frames = rng.normal(size=(3, generator.cond_dim)).astype(np.float32)
    rows.append({"clip_id": f"clip{i}", "label": None, "image_frames": (frames / np.linalg.norm(frames)).tolist()})


class Slow:
    # the real generator, pausing before every batch but the first (whose rows are on disk by then),
    # so a kill lands mid-run
    def __init__(self, inner):
        self.inner, self.calls = inner, 0
    def __getattr__(self, name):
        return getattr(self.inner, name)
    def generate(self, *a, **kw):
        if self.calls:
            time.sleep(pause)
        self.calls += 1
        return self.inner.generate(*a, **kw)


g = Slow(generator) if pause else generator
generate.generate_clips(rows, gen_dir, "r1", generate.Conditioner("no-mapper", generator), g,
                        empty_text_embedding("tiny"), samples=2, seconds=1.0, steps=2, batch_size=2, run_seed=3)
"""


def test_a_killed_generation_resumed_matches_an_uninterrupted_one(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = _start(_GENERATE, straight, 0)
    first = _start(_GENERATE, killed, 30)
    _kill_when(first, lambda: any((killed / "table").glob("*.parquet")))
    _finish(reference)
    assert len(list((killed / "table").glob("*.parquet"))) == 1  # killed with batches to go
    _finish(_start(_GENERATE, killed, 0))

    a, b = generate.read_generations(str(straight)), generate.read_generations(str(killed))
    from v2a.io import parquet
    from storage_schemas import generations as schema
    raw = parquet.read_table(str(killed / "table"), schema.SCHEMA).to_pandas()
    assert not raw.duplicated(["clip_id", "sample"]).any()  # nothing written twice
    assert sorted(zip(a["clip_id"], a["sample"])) == sorted(zip(b["clip_id"], b["sample"]))
    for clip_id, sample in zip(a["clip_id"], a["sample"]):
        x, _ = sf.read(generate.audio_uri(str(straight), clip_id, sample))
        y, _ = sf.read(generate.audio_uri(str(killed), clip_id, sample))
        assert np.array_equal(x, y), (clip_id, sample)  # same seed, same audio
    assert _leftovers(killed) == []


# --------------------------------------------------------------------------- train

_TRAIN = """
import sys, time
from tests.mapper.conftest import ClassPairs
from v2a.mapper import TrainConfig, train_mapper

out, pause = sys.argv[1], float(sys.argv[2])
data = ClassPairs(classes=4, dim=16, seed=2)
(tc, ta, _, _), (vc, va, _, _) = data.draw(256), data.draw(32)
config = TrainConfig(mapper="diff-mlp", depth=1, expansion=1, epochs=4, batch_size=64, lr=1e-3, num_timesteps=100,
                     sampling_steps=10, val_sampling_steps=5, ema=True, ema_decay=0.9, checkpoint_every=1)


def epoch_done(record):
    # every epoch any process trains, in order: a resume that started over would show epoch 1 twice
    with open(out + "/epochs_trained.txt", "a") as f:
        f.write(f"{record['epoch']}\\n")
    time.sleep(pause)


train_mapper(tc, ta, vc, va, config, out, progress=False, on_epoch_end=epoch_done)
"""


def test_a_killed_training_resumed_gives_the_uninterrupted_weights(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = _start(_TRAIN, straight, 0)
    first = _start(_TRAIN, killed, 30)
    _kill_when(first, lambda: any((killed / "checkpoints").glob("epoch_*/state.json")))
    _finish(reference)
    assert not (killed / "model.safetensors").exists()
    kept = sorted(p.name for p in (killed / "checkpoints").glob("epoch_*") if (p / "state.json").is_file())
    assert kept == ["epoch_0001"], kept  # killed after its first epoch: the resume trains the other three
    _finish(_start(_TRAIN, killed, 0))

    assert (killed / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
    assert (killed / "epochs_trained.txt").read_text().split() == ["1", "2", "3", "4"]
    history = json.loads((killed / "history.json").read_text())
    assert [h["epoch"] for h in history] == sorted({h["epoch"] for h in history})  # no epoch twice
    assert _leftovers(killed) == []


# --------------------------------------------------------------------------- evaluate

_EVALUATE = """
import sys, time
from v2a.stages.evaluate import evaluate_folder
from v2a.runtime.model_cache import get_model

gen, ref, results, stats, pause = sys.argv[1:5] + [float(sys.argv[5])]


class Slow:
    # the real VGGish, pausing before it embeds: the PANNs stats are on disk by then, the VGGish ones are not
    def __init__(self, inner):
        self.inner = inner
    def __getattr__(self, name):
        return getattr(self.inner, name)
    def embed(self, *a, **kw):
        time.sleep(pause)
        return self.inner.embed(*a, **kw)


extractors = {n: get_model("tiny", f"extractor:{n}") for n in ("panns", "vggish", "wav2clip")}
extractors["vggish"] = Slow(extractors["vggish"])
evaluate_folder(gen, results, extractors, reference_dir=ref, run_id="r1", clip_seconds=1.0,
                metrics=("fd", "fad", "kl", "is"), stats_dir=stats)
"""


def _tone_folder(folder: Path, freqs) -> Path:
    folder.mkdir()
    t = np.arange(16000) / 16000
    for i, f in enumerate(freqs):
        sf.write(folder / f"clip{i}.wav", 0.3 * np.sin(2 * np.pi * f * t), 16000)
    return folder


def test_a_killed_evaluation_resumed_appends_the_uninterrupted_rows_once(tmp_path):
    from v2a.io import parquet
    from storage_schemas import results as schema

    gen = _tone_folder(tmp_path / "gen", [300, 500, 700, 900])
    ref = _tone_folder(tmp_path / "ref", [310, 520, 680, 950])
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = _start(_EVALUATE, gen, ref, straight / "results", straight / "stats", 0)
    first = _start(_EVALUATE, gen, ref, killed / "results", killed / "stats", 30)
    _kill_when(first, lambda: any((killed / "stats").glob("*.json")))
    _finish(reference)
    assert len(list((killed / "stats").glob("*.json"))) == 1  # killed with the VGGish stats to go
    assert not list((killed / "results").glob("*.parquet"))  # rows are written once, at the end
    _finish(_start(_EVALUATE, gen, ref, killed / "results", killed / "stats", 0))

    columns = ["run_id", "metric", "extractor", "sample_rate", "clip_seconds", "n_clips", "id_list_sha256"]
    a = parquet.read_table(str(straight / "results"), schema.SCHEMA).to_pandas()
    b = parquet.read_table(str(killed / "results"), schema.SCHEMA).to_pandas()
    assert len(list((killed / "results").glob("*.parquet"))) == 1 and not b.duplicated("metric").any()
    a, b = a.sort_values("metric").reset_index(drop=True), b.sort_values("metric").reset_index(drop=True)
    assert a[columns].equals(b[columns])
    np.testing.assert_allclose(b["value"], a["value"], rtol=0, atol=1e-9)
    assert _leftovers(killed) == []


def test_a_kill_mid_write_leaves_only_a_hidden_temporary_that_readers_skip(tmp_path):
    """What atomic_write leaves if killed between writing and renaming: a dot-file no table read sees."""
    from v2a.core import storage
    from v2a.io import parquet
    from storage_schemas import errors as schema

    parquet.write_table([{"clip_id": "a", "stage": "embed", "uri": "x", "reason": "r"}],
                       str(tmp_path / "part-1.parquet"), schema.SCHEMA, "errors")
    (tmp_path / ".part-2.parquet.tmp-deadbeef").write_bytes(b"PAR1 half a file")
    assert storage.list_files(str(tmp_path), ".parquet") == [str(tmp_path / "part-1.parquet")]
    assert parquet.read_table(str(tmp_path), schema.SCHEMA).num_rows == 1


@pytest.mark.parametrize("clip_id", ["../escape", "a/b", "..", "a\\b"])
def test_a_clip_id_that_could_leave_the_output_folder_is_refused(tmp_path, clip_id):
    with pytest.raises(ValueError, match="clip id"):
        generate.audio_uri(str(tmp_path), clip_id, 0)


def test_a_non_ascii_clip_id_names_its_audio_file(tmp_path):
    uri = generate.audio_uri(str(tmp_path), "vidéo_猫_000010", 1)
    assert Path(uri).parent == tmp_path / "audio" and Path(uri).name == "vidéo_猫_000010__s1.wav"
