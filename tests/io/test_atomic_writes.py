"""Tables, audio files and checkpoints are written through one atomic path (`storage.atomic_write`):
a write that fails after some of its bytes leaves no visible part and the earlier file whole.

The failure is real, not a patched function: the writer runs in a child process whose file-size limit
(RLIMIT_FSIZE) is below what it writes, so the operating system refuses the write midway, as a full
disk would, whichever library does the writing."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from tests.io.writers import ROOT, calls_atomic_write, direct_writers

# Everything that still writes a file by itself, and why it may. A new direct writer fails
# `test_every_direct_file_writer_is_listed`: route it through `storage.atomic_write`, or add it here with
# the reason it must not be.
DIRECT_WRITERS = {
    "v2a/core/storage.py:atomic_write": "the one atomic path: a temporary sibling, renamed over the target",
    "v2a/core/locking.py:_lock_local": "a lock file: exclusive creation and flock are the point",
    "v2a/core/locking.py:_lock_remote": "a lock file on object storage, removed on release",
    "v2a/weights/fetch.py:_locked": "the weights cache's lock file",
    "flows/server.py:TemporaryServer._take_lock": "the temporary server's start-up lock file (flock)",
    "flows/preflight.py:writable": "a probe that the output folder is writable, removed at once",
    "tasks/caching.py:result_storage": "saves a Prefect block on the server, not a file",
    "v2a/weights/download.py:download": "a resumable download: its .part file must survive a failed attempt, "
                                        "then it is checked and renamed",
    "v2a/stages/report/__init__.py:_build": "the report is built in a private folder swapped in whole",
    "v2a/stages/report/__init__.py:build_report": "swaps the finished report folder in (os.replace)",
    "v2a/stages/report/assets.py:copy_file": "into the report's private build folder",
    "v2a/stages/report/assets.py:write_mel_png": "into the report's private build folder",
    "v2a/stages/report/assets.py:write_poster_png": "into the report's private build folder",
    "v2a/tools/demo.py:prepare_demo": "the demo's config file for the user to read, not data",
    "v2a/tools/synth.py:_save_png": "synthetic inputs (`v2a synth`), not a stage's output",
    "v2a/tools/synth.py:_write_mp4": "synthetic inputs (`v2a synth`), written beside and renamed",
    "v2a/tools/synth.py:_write_text": "synthetic inputs (`v2a synth`), written beside and renamed",
    "v2a/runtime/trace.py:record": "an opt-in diagnostic log (V2A_TRACE_DIR), appended one line at a time",
}

# The writers of the project's tables, audio files and checkpoints: each goes through atomic_write.
ATOMIC_WRITERS = [
    ("v2a/io/parquet.py", "write_table"),            # every Parquet table and part
    ("v2a/io/audio.py", "write_wav"),                # generated audio
    ("v2a/mapper/checkpoint.py", "save_safetensors"),  # mapper weights, optimizer and EMA state
    ("v2a/mapper/checkpoint.py", "atomic_write_text"),  # checkpoint config.json, state.json, history
    ("v2a/mapper/trainer.py", "_plot_curve"),        # the training curve beside the checkpoint
    ("v2a/metrics/reference_stats.py", "_save"),     # reference statistics (safetensors + JSON)
    ("v2a/weights/cache.py", "write_manifest"),      # the weights cache's manifest
    ("v2a/media/mux.py", "mux_soundtrack"),          # generated audio muxed into the clip's video
    ("v2a/stages/domain_gap.py", "_save_png"),
]


def test_every_direct_file_writer_is_listed():
    found = direct_writers()
    new = {w: sorted(found[w]) for w in sorted(set(found) - set(DIRECT_WRITERS))}
    assert not new, f"files written outside storage.atomic_write (route them through it, or list them): {new}"
    assert not set(DIRECT_WRITERS) - set(found), f"listed but no longer writing: {set(DIRECT_WRITERS) - set(found)}"


@pytest.mark.parametrize("module,function", ATOMIC_WRITERS, ids=[f for _, f in ATOMIC_WRITERS])
def test_tables_audio_and_checkpoints_are_written_through_atomic_write(module, function):
    assert calls_atomic_write(module, function), f"{module}:{function} does not call storage.atomic_write"
    assert f"{module}:{function}" not in direct_writers()


def test_the_scan_sees_a_direct_write_and_passes_an_in_memory_one(tmp_path):
    (tmp_path / "v2a").mkdir()
    (tmp_path / "v2a" / "m.py").write_text(textwrap.dedent("""
        import io
        import pyarrow.parquet as pq
        def direct(table, uri):
            pq.write_table(table, uri)
        def buffered(table, uri):
            buf = io.BytesIO()
            pq.write_table(table, buf)
            with storage.atomic_write(uri) as handle:
                handle.write(buf.getvalue())
        def opened(path):
            with open(path, "ab") as f:
                f.write(b"x")
        def read(path):
            with open(path, "rb") as f:
                return f.read()
    """))
    assert direct_writers(tmp_path, ("v2a",)) == {"v2a/m.py:direct": {"pq.write_table"}, "v2a/m.py:opened": {"open"}}
    assert calls_atomic_write("v2a/m.py", "buffered", tmp_path)
    assert not calls_atomic_write("v2a/m.py", "direct", tmp_path)


# ---- a write refused midway by the operating system ---------------------------------------------

LIMIT = 256 * 1024  # bytes any file of the child may hold; each failing write below is several times that

_CHILD = """
import json, resource, signal, sys
import numpy as np
{imports}
target, extra = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write() fails with EFBIG instead of a kill
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
errors = []
for uri in (target, extra):
    try:
{write}
    except OSError as err:
        errors.append(err.errno)
print(json.dumps(errors))
"""

CASES = {
    "parquet table part": (
        "import pyarrow as pa\nfrom v2a.io import parquet",
        "        parquet.write_table(pa.table({'x': np.random.default_rng(0).standard_normal(400_000)}), uri, "
        "pa.schema([('x', pa.float64())]))",
        ".parquet"),
    "generated audio": (
        "from v2a.io.audio import write_wav",
        "        write_wav(uri, 0.5 * np.random.default_rng(0).standard_normal(48000 * 10), 48000)",
        ".wav"),
    "checkpoint weights": (
        "import torch\nfrom v2a.mapper.checkpoint import save_safetensors",
        "        save_safetensors({'w': torch.randn(1000, 1000)}, uri)",
        ".safetensors"),
    "checkpoint config": (
        "from v2a.mapper.checkpoint import atomic_write_text",
        "        atomic_write_text(uri, json.dumps({'metadata': ['x' * 100] * 10_000}))",
        ".json"),
}


def _earlier(path, suffix: str) -> None:
    """A small, complete file of the kind (what an earlier run left)."""
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"x": np.arange(5, dtype=np.float64)}), path)
    elif suffix == ".wav":
        import soundfile as sf

        sf.write(path, np.zeros(800, np.float32), 16000)
    elif suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({"w": np.ones(4, np.float32)}, str(path))
    else:
        path.write_text(json.dumps({"earlier": True}))


@pytest.mark.parametrize("case", list(CASES))
def test_a_write_failing_midway_leaves_no_part_and_the_earlier_file_whole(tmp_path, case):
    imports, write, suffix = CASES[case]
    folder = tmp_path / "table"
    folder.mkdir()
    earlier, sibling = folder / f"part-b{suffix}", folder / f"part-a{suffix}"
    _earlier(earlier, suffix)
    _earlier(sibling, suffix)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code = _CHILD.format(imports=imports, write=write, limit=LIMIT)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code, str(earlier), str(folder / f"part-c{suffix}")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    import errno

    # Both writes (over the earlier file, and a new part) were refused by the file-size limit.
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [errno.EFBIG, errno.EFBIG], done.stdout
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after == before  # no new part, no leftover temporary, the earlier file byte for byte
