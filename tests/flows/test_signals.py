"""Kill-and-signal harness: the `v2a pipeline` command, told to stop at each stage, stops in time and
leaves nothing running; killed outright, it leaves no Prefect server behind; run again, it finishes
with the same results as a run never interrupted.

Each run is a real `v2a pipeline` process in a session of its own (as a terminal or a scheduler runs
it), signalled as a group, the way Ctrl-C and `timeout` do. To land a signal inside a chosen stage,
the process runs with a small shim (_SHIM) that writes a marker file when a stage first asks the stop
flag and slows that one stage's batches down; the shim changes nothing else.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 20  # the promise: a signalled command is gone within this many seconds
STAGES = ("ingest", "embed", "train", "generate", "evaluate", "report")

# Wraps the stop flag: the first time a stage asks it, a marker names the stage; the target stage's
# batches then take PAUSE s each, so the signal lands while that stage is at work.
_SHIM = """
import os, sys, time
from pathlib import Path
from v2a.core import stopping

STAGES = %r
marks, target, pause = Path(os.environ["V2A_TEST_MARKS"]), os.environ.get("V2A_TEST_STAGE"), 0.25


class MarkingEvent(type(stopping._STOP)):
    def is_set(self):
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            stage = module.rsplit(".", 1)[-1]
            if module.startswith("v2a.") and stage in STAGES:
                mark = marks / stage
                if not mark.exists():
                    mark.write_text(str(os.getpid()))
                if stage == target:
                    time.sleep(pause)
                break
            frame = frame.f_back
        return super().is_set()


stopping._STOP = MarkingEvent()
from flows.cli import main
sys.argv[0] = "v2a"
sys.exit(main())
""" % (STAGES,)


def _env(tmp: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(tmp / "prefect"), V2A_TEST_MARKS=str(tmp / "marks"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.update(extra)
    return env


def _start(config: Path, tmp: Path, stage: str | None = None, home: str = "prefect") -> subprocess.Popen:
    (tmp / "marks").mkdir(exist_ok=True)
    for old in (tmp / "marks").iterdir():
        old.unlink()
    extra = {"V2A_TEST_STAGE": stage} if stage else {}
    extra["PREFECT_HOME"] = str(tmp / home)
    return subprocess.Popen([sys.executable, "-c", _SHIM, "pipeline", "--config", str(config)], cwd=tmp,
                            env=_env(tmp, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _processes():
    """(pid, state, parent pid, session id, command line) of every process, from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(entry.name), fields[0], int(fields[1]), int(fields[3]), cmdline


def _session_processes(sid: int) -> list[str]:
    """Every process left in the command's session (decode workers, anything it started there)."""
    return [f"{pid} {cmdline[:120]}" for pid, state, _, session, cmdline in _processes()
            if state != "Z" and session == sid]


def _wait_for_mark(proc: subprocess.Popen, mark: Path, timeout: float = 420) -> None:
    deadline = time.monotonic() + timeout
    while not mark.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (status {proc.returncode}) before {mark.name} began:\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"{mark.name} never began"
        time.sleep(0.05)


def _flow_run_states(tmp: Path, home: str = "prefect") -> list[str]:
    db = tmp / home / "prefect.db"
    with sqlite3.connect(db) as con:
        return [row[0] for row in con.execute("select state_type from flow_run")]


@pytest.fixture(scope="module")
def pipeline_config(tmp_path_factory):
    """A tiny pipeline (8 clips of 1 s), its config written for two output folders."""
    from v2a.tools.demo import demo_config
    from v2a.tools.synth import make_synthetic_dataset

    tmp = tmp_path_factory.mktemp("signals")
    data = tmp / "data"
    make_synthetic_dataset(data, classes=2, clips_per_class=4, seconds=1.0, seed=3, images_per_class=0,
                           progress=False)

    def config(name: str, pool: str = "thread") -> Path:
        cfg = demo_config(tmp / name, data, 1.0)
        cfg["out"] = str(tmp / name / "run")
        cfg["embed"].update(num_frames=2, shard_size=2)
        if pool == "process":  # what the default becomes on a machine with 4 or more cores
            # 4 clips a shard: the pool starts a worker per clip submitted while none is idle
            cfg["embed"].update(pool="process", workers=4, shard_size=4)
        cfg["train"].update(epochs=6)
        cfg["generate"].update(steps=4, mapper_steps=8, batch_size=1)
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path
    return tmp, config


def _results(out: Path) -> list[tuple]:
    df = pd.read_parquet(out / "results")
    df = df[df["metric"] != "gen_time_s"]  # seconds per sample: a timing, not a result
    return sorted(zip(df["metric"], df["value"].round(6)))


def _audio(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "generations").rglob("*.wav"))}


@pytest.mark.slow
def test_sigterm_or_sigint_at_every_stage_stops_in_time_and_the_rerun_is_identical(pipeline_config):
    tmp, config = pipeline_config
    # The uninterrupted run goes on beside the interrupted ones (its own Prefect home, no stop-flag shim).
    straight = subprocess.Popen([sys.executable, "-m", "flows.cli", "pipeline", "--config", str(config("straight"))],
                                cwd=tmp, env=_env(tmp, PREFECT_HOME=str(tmp / "prefect-straight")),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    interrupted = config("interrupted")
    timings = {}
    # One signal per stage, alternating: both go through the same handler and the same stop flag, and
    # what differs between stages is where that flag is checked (12 runs took 7 min of the suite).
    for i, stage in enumerate(STAGES):
        sig = (signal.SIGTERM, signal.SIGINT)[i % 2]
        proc = _start(interrupted, tmp, stage)
        _wait_for_mark(proc, tmp / "marks" / stage)
        servers = _uvicorn_children_of(proc.pid)
        assert servers, "the run has no temporary Prefect server of its own"
        t0 = time.monotonic()
        os.killpg(proc.pid, sig)
        try:
            _, err = proc.communicate(timeout=BOUND_S + 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{sig.name} during {stage}: still running after {BOUND_S + 30} s")
        took = time.monotonic() - t0
        timings[(stage, sig.name)] = round(took, 1)
        assert took < BOUND_S, (stage, sig.name, took, err[-2000:])
        assert proc.returncode == 128 + sig, (stage, sig.name, proc.returncode, err[-2000:])
        ours = [line for line in err.splitlines() if line.startswith("v2a pipeline:")]
        assert ours == [f"v2a pipeline: stopped by {sig.name}; run the same command again to resume "
                        "(finished shards, epochs and generated files are kept)"], err[-2000:]
        assert "Traceback" not in err and "Crash detected" not in err and "Exception ignored" not in err, err[-3000:]
        time.sleep(0.5)
        assert _session_processes(proc.pid) == [], (stage, sig.name)
        assert not [p for p in servers if _alive(p)], (stage, sig.name)
        # the run's state was reported while the API was up: no flow run is left Running
        assert not {"RUNNING", "PENDING", "SCHEDULED"} & set(_flow_run_states(tmp)), (stage, sig.name)
    print(json.dumps({f"{s}/{n}": t for (s, n), t in timings.items()}))

    rerun = subprocess.run([sys.executable, "-m", "flows.cli", "pipeline", "--config", str(interrupted)], cwd=tmp,
                           env=_env(tmp), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _, straight_err = straight.communicate(timeout=600)
    assert straight.returncode == 0, straight_err[-3000:]
    a, b = tmp / "straight" / "run", tmp / "interrupted" / "run"
    assert _results(a) == _results(b)
    assert _audio(a) == _audio(b) and _audio(a)
    assert pd.read_parquet(a / "clips.parquet").equals(pd.read_parquet(b / "clips.parquet"))
    ea = pd.read_parquet(a / "embeddings").sort_values("clip_id").reset_index(drop=True)
    eb = pd.read_parquet(b / "embeddings").sort_values("clip_id").reset_index(drop=True)
    assert all(np.array_equal(np.stack(x), np.stack(y)) for x, y in zip(ea["image_frames"], eb["image_frames"]))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_with_decode_worker_processes_ends_them_and_the_run_in_time(pipeline_config, sig):
    """`embed: {pool: process, workers: 4}`: the stop ends the pool in order (not by the 10-s watchdog,
    which would leave the runs Running), starts no new one, and leaves no process behind."""
    tmp, config = pipeline_config
    home = f"prefect-pool-{sig.name}"  # its own: a run's states are read from it
    proc = _start(config(f"pool-{sig.name}", "process"), tmp, "embed", home=home)
    try:
        _wait_for_mark(proc, tmp / "marks" / "embed")
        # Signalled as soon as the workers exist, most still importing: a Ctrl-C then must not print
        # their KeyboardInterrupt tracebacks (they are born with the signals blocked).
        workers = _wait_for_decode_workers(proc, 4, ready=False)
        family = _descendants(proc.pid)
        t0 = time.monotonic()
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=BOUND_S + 30)
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    took = time.monotonic() - t0
    print(json.dumps({f"pool/{sig.name}": round(took, 1)}))
    assert took < BOUND_S, (took, err[-2000:])
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert [line for line in err.splitlines() if line.startswith("v2a pipeline:")] == [
        f"v2a pipeline: stopped by {sig.name}; run the same command again to resume "
        "(finished shards, epochs and generated files are kept)"], err[-2000:]
    assert not [w for w in ("Traceback", "Crash detected", "Exception ignored", "leaked") if w in err], err[-3000:]
    assert _gone_within(family, 5) == [], f"left running 5 s after the stop: {family}"
    assert not _decode_workers_of(proc.pid) and set(workers) <= set(family)
    assert not {"RUNNING", "PENDING", "SCHEDULED"} & set(_flow_run_states(tmp, home))


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_sigkilled_run_leaves_nothing_behind(pipeline_config, pool):
    """Killed outright, as the OOM killer does: the temporary server, the decode worker processes and
    multiprocessing's resource tracker all end within 5 s. The next command on the same Prefect home
    marks the killed run's flow runs Crashed."""
    tmp, config = pipeline_config
    killed, home = config(f"killed-{pool}", pool), f"prefect-killed-{pool}"
    proc = _start(killed, tmp, "embed", home=home)
    try:
        _wait_for_mark(proc, tmp / "marks" / "embed")
        if pool == "process":
            # Initialised: a worker watches its parent from then on (one still importing leaves when its
            # initializer finds the parent gone, its start-up later).
            _wait_for_decode_workers(proc, 4, ready=True)
        servers = _uvicorn_children_of(proc.pid)
        assert servers, "the run has no temporary Prefect server of its own"
        family = _descendants(proc.pid)
    finally:
        proc.kill()  # the main process only, as the OOM killer does: not its group
        proc.wait()
    assert _gone_within(family, 5) == [], f"outlived the killed run by 5 s: {family}"
    assert "RUNNING" in _flow_run_states(tmp, home)
    if pool == "thread":
        cfg = yaml.safe_load(killed.read_text())
        again = subprocess.run([sys.executable, "-m", "flows.cli", "ingest", "--out", cfg["out"], "--csv",
                                cfg["data"]["csv"], "--videos", cfg["data"]["videos"]],
                               cwd=tmp, env=_env(tmp, PREFECT_HOME=str(tmp / home)), capture_output=True,
                               text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        states = _flow_run_states(tmp, home)
        assert "RUNNING" not in states and "CRASHED" in states, states


def _descendants(pid: int) -> list[int]:
    """Every process below pid (children, theirs, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for child, _, parent, _, _ in _processes():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _gone_within(pids, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [f"{p} {_cmdline(p)[:120]}" for p in pids if _alive(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _decode_workers_of(pid: int) -> list[int]:
    return [p for p in _descendants(pid) if "spawn_main" in _cmdline(p) and _alive(p)]


def _ignores_stop_signals(pid: int) -> bool:
    """Whether the worker's initializer has run (it ignores SIGINT and SIGTERM from then on; before,
    while it imports, it cannot yet watch its parent)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return all(ignored >> (sig - 1) & 1 for sig in (signal.SIGINT, signal.SIGTERM))


def _wait_for_decode_workers(proc: subprocess.Popen, n: int, ready: bool, timeout: float = 240) -> list[int]:
    """n decode worker processes, started (and, if ready, initialised)."""
    deadline = time.monotonic() + timeout
    while len(workers := [p for p in _decode_workers_of(proc.pid) if not ready or _ignores_stop_signals(p)]) < n:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before its decode workers started")
        assert time.monotonic() < deadline, "the decode worker processes never started"
        time.sleep(0.1)
    return workers


def _uvicorn_children_of(pid: int) -> list[int]:
    return [child for child, _, parent, _, cmdline in _processes()
            if parent == pid and "prefect.server.api.server" in cmdline]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
