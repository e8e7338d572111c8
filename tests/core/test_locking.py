"""Two runs writing the same output location: the second fails at once, saying who holds it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows import cli
from v2a.core import locking
from v2a.core.locking import RunLockedError, run_lock

_HOLD = """
import sys, time
from v2a.core.locking import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock on tmp_path/out until the test ends (or kills it)."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield out, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_run_on_the_same_out_fails_fast_naming_the_first(holder):
    out, proc = holder
    started = time.monotonic()
    with pytest.raises(RunLockedError) as err:
        with run_lock(str(out)):
            pass
    assert time.monotonic() - started < 2.0  # no waiting
    message = str(err.value)
    assert f"pid {proc.pid} on " in message and str(out) in message
    assert "wait for it or use another --out" in message


def test_a_killed_holder_leaves_the_location_free(holder):
    out, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with run_lock(str(out)):
        assert (out / locking.LOCK_NAME).exists()


def _held_elsewhere(out) -> bool:
    """Whether another process finds the location locked right now."""
    probe = ("import sys\nfrom v2a.core.locking import RunLockedError, run_lock\n"
             "try:\n    with run_lock(sys.argv[1]):\n        pass\nexcept RunLockedError:\n    sys.exit(3)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    code = subprocess.run([sys.executable, "-c", probe, str(out)], env=env, timeout=60).returncode
    assert code in (0, 3)
    return code == 3


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    with run_lock(str(tmp_path)):
        with run_lock(str(tmp_path)):  # the pipeline flow holds it while its stages take it again
            assert _held_elsewhere(tmp_path)
        assert _held_elsewhere(tmp_path)  # leaving the inner hold does not release the outer one
        with run_lock(str(tmp_path)):
            pass
        assert _held_elsewhere(tmp_path)
    assert not _held_elsewhere(tmp_path)


def test_a_released_lock_can_be_taken_again(tmp_path):
    with run_lock(str(tmp_path)):
        assert _held_elsewhere(tmp_path)
    assert not _held_elsewhere(tmp_path)
    with run_lock(str(tmp_path)):
        assert _held_elsewhere(tmp_path)
    assert not _held_elsewhere(tmp_path)


def test_the_lock_file_is_hidden_from_tables_and_fingerprints(tmp_path):
    from v2a.core import storage
    from v2a.core.fingerprint import fingerprint

    before = fingerprint(str(tmp_path))
    with run_lock(str(tmp_path)):
        assert storage.list_files(str(tmp_path), ".lock") == []
        assert fingerprint(str(tmp_path)) == before  # a lock never invalidates the cache


def test_a_stage_command_on_a_locked_out_exits_2_with_the_message(holder, capsys, synth_dir):
    out, proc = holder
    code = cli.main(["ingest", "--out", str(out), "--csv", str(synth_dir / "vggsound.csv"),
                     "--videos", str(synth_dir / "videos")])
    assert code == 2
    err = capsys.readouterr().err
    assert "another v2a run" in err and f"pid {proc.pid}" in err
    assert not (out / "clips.parquet").exists()  # nothing written by the refused run


def test_a_remote_location_is_held_by_a_marker_object():
    import fsspec

    out = "memory://v2a-lock-test/out"
    with run_lock(out):
        assert fsspec.filesystem("memory").exists("/v2a-lock-test/out/.v2a.lock")
        locking._held.clear()  # as another process would see it: no lock held here
        try:
            with pytest.raises(RunLockedError, match="delete .*\\.v2a\\.lock"):
                with run_lock(out):
                    pass
        finally:
            locking._held[out + "/.v2a.lock"] = 1
    assert not fsspec.filesystem("memory").exists("/v2a-lock-test/out/.v2a.lock")
