"""Every user mistake and storage fault the `v2a` command can meet ends in one line on stderr naming
the problem and the remedy, exit status 2, no traceback; --debug adds the traceback; a bug keeps it.

The cases run `main()` in this process and fail before any Prefect flow starts (as the command
itself arranges: inputs and configs are checked first), so the whole file takes seconds; only the
Prefect start-up timeout needs a process of its own."""

import errno
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows import errors
from flows.cli import main

ROOT = Path(__file__).resolve().parents[2]


def one_error_line(capsys, command: str) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"v2a {command}: error: ") and "Traceback" not in captured.err
    return lines[0]


@pytest.fixture()
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("abc,0,dog,train\nxyz,0,cat,test\n")
    (tmp_path / "videos").mkdir()
    return tmp_path


@pytest.fixture()
def no_prefect(monkeypatch):
    """A mistake must be refused before Prefect's server starts: starting one fails the test."""
    from flows import server

    def refused(self):
        raise AssertionError("Prefect's server was started before the mistake was found")

    monkeypatch.setattr(server.TemporaryServer, "start", refused)


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _checkpoint(folder: Path, config: str) -> str:
    (folder / "ckpt").mkdir()
    _write(folder / "ckpt" / "config.json", config)
    return str(folder / "ckpt")


GOOD_DATA = "data: {csv: data.csv, videos: videos}\n"

# argv (files made in the test's folder), words the line must contain
CASES = {
    "yaml syntax error": (lambda d: ["pipeline", "--config", _write(d / "c.yaml", "out: o\ndata:\n  csv: a\n   videos: v\n")],
                          ["line 4", "not valid YAML", "fix the file"]),
    "config is a JSON list": (lambda d: ["pipeline", "--config", _write(d / "config.json", "[1, 2]")],
                              ["must be a mapping", "list"]),
    "config value of the wrong type": (lambda d: ["pipeline", "--config",
                                                  _write(d / "c.yaml", "out: o\n" + GOOD_DATA + "embed: {device: 0}\n")],
                                       ["embed.device", "valid string"]),
    "config value not accepted": (lambda d: ["pipeline", "--config",
                                             _write(d / "c.yaml", "out: o\n" + GOOD_DATA + "embed: {decoder: ffmpeg}\n")],
                                  ["embed.decoder", "accepted: 'auto'"]),
    "config field unknown": (lambda d: ["pipeline", "--config", _write(d / "c.yaml", "out: o\n" + GOOD_DATA + "embd: {}\n")],
                             ["unknown top-level field", "embd"]),
    "config file missing": (lambda d: ["pipeline", "--config", str(d / "nope.yaml")], ["nope.yaml", "not found"]),
    "csv missing": (lambda d: ["ingest", "--out", "o", "--csv", "missing.csv", "--videos", "videos"],
                    ["missing.csv", "not found"]),
    "csv without videos": (lambda d: ["ingest", "--out", "o", "--csv", "data.csv"], ["--videos"]),
    "nothing to ingest": (lambda d: ["ingest", "--out", "o"], ["--csv", "--images"]),
    "embed before ingest": (lambda d: ["embed", "--out", "o", "--profile", "tiny"], ["no clips table", "v2a ingest"]),
    "train before embed": (lambda d: ["train", "--embeddings", "o/embeddings", "--out", "m"], ["no embeddings", "v2a embed"]),
    "status of nothing": (lambda d: ["status", "--out", "nowhere"], ["nowhere", "no such output location"]),
    "results of nothing": (lambda d: ["results", "--out", "nowhere"], ["nowhere", "no such output location"]),
    "checkpoint config is a JSON list": (lambda d: ["map", "--checkpoint", _checkpoint(d, "[1]"), "--embeddings", "e",
                                                    "--out", "m"], ["JSON list", "v2a train"]),
    "checkpoint folder without config": (lambda d: ["generate", "x.png", "--checkpoint", str(d)], ["no config.json"]),
    "profile yaml syntax error": (lambda d: ["check-models", "--profile", _write(d / "p.yaml", "model:\n  clip: [\n")],
                                  ["p.yaml", "YAML syntax error"]),
    "profile unknown": (lambda d: ["check-models", "--profile", "huge"], ["huge", "accepted"]),
    "bad option value": (lambda d: ["synth", "--out", "s", "--classes", "0"], ["classes"]),
    # Checked before Prefect starts, in the stage commands and the pipeline alike (flows/preflight.py).
    "videos folder missing": (lambda d: ["ingest", "--out", "o", "--csv", "data.csv", "--videos", "novideos"],
                              ["video folder novideos", "not found"]),
    "csv is a folder": (lambda d: ["ingest", "--out", "o", "--csv", "videos", "--videos", "videos"], ["is a folder"]),
    "output is a file": (lambda d: ["ingest", "--out", "data.csv", "--csv", "data.csv", "--videos", "videos"],
                         ["data.csv", "is a file"]),
    "embed profile misspelt": (lambda d: ["embed", "--out", "o", "--profile", "tinny"], ["tinny", "accepted"]),
    "generate of a missing file": (lambda d: ["generate", "nope.png", "--conditioning", "no-mapper", "--profile", "tiny"],
                                   ["nope.png", "not found"]),
    "generate split not in the clips table": (lambda d: ["generate", "--embeddings", _clips(d) + "/embeddings",
                                                         "--out", "run", "--profile", "tiny", "--conditioning",
                                                         "no-mapper", "--split", "validate"],
                                              ["--split = 'validate'", "accepted: test, train"]),
    "evaluate split not in the clips table": (lambda d: ["evaluate", "--generations", "videos", "--out", _clips(d),
                                                         "--profile", "tiny", "--split", "valid"],
                                              ["--split = 'valid'", "accepted: test, train"]),
    "report of a run that is not there": (lambda d: ["report", "--runs-root", _clips(d), "--run", "gen-x"],
                                          ["gen-x", "not found"]),
    "pipeline csv missing": (lambda d: ["pipeline", "--config", _write(d / "c.yaml", "out: o\nprofile: tiny\n"
                                        "data: {csv: nope.csv, videos: videos}\n")], ["CSV nope.csv", "not found"]),
    "pipeline videos missing": (lambda d: ["pipeline", "--config", _write(d / "c.yaml", "out: o\nprofile: tiny\n"
                                           "data: {csv: data.csv, videos: novideos}\n")], ["novideos", "not found"]),
    "pipeline profile misspelt": (lambda d: ["pipeline", "--config", _write(d / "c.yaml", "out: o\nprofile: tinny\n"
                                             + GOOD_DATA)], ["tinny", "accepted"]),
    "pipeline split before ingest": (lambda d: ["pipeline", "--config", _write(
        d / "c.yaml", "out: o\nprofile: tiny\n" + GOOD_DATA + "generate: {split: validate}\n")],
        ["generate.split = 'validate'", "accepted: test, train"]),
    "pipeline output is a file": (lambda d: ["pipeline", "--config", _write(d / "c.yaml", "out: data.csv\n"
                                             "profile: tiny\n" + GOOD_DATA)], ["data.csv", "is a file"]),
    # Found before ingest, not after training and generation (issue 29).
    "pipeline results folder is a file": (lambda d: ["pipeline", "--config", _write(
        d / "c.yaml", f"out: {_results_file(d)}\nprofile: tiny\n" + GOOD_DATA)],
        ["results folder", "results is a file"]),
    "evaluate results folder is a file": (lambda d: ["evaluate", "--generations", "videos", "--out",
                                                     _results_file(d, _clips(d)), "--profile", "tiny"],
                                          ["results folder", "results is a file"]),
}


def _results_file(folder: Path, out: str | None = None) -> str:
    """An output location whose `results` is a file where the run writes a folder."""
    out = Path(out or folder / "o")
    out.mkdir(exist_ok=True)
    (out / "results").write_text("not a folder")
    return str(out)


def _clips(folder: Path) -> str:
    """A run folder holding a clips table (splits train and test) and nothing else."""
    from v2a.stages import ingest

    ingest.ingest(str(folder / "run" / "clips.parquet"), csv=str(folder / "data.csv"), videos=str(folder / "videos"))
    (folder / "run" / "embeddings").mkdir(exist_ok=True)
    (folder / "run" / "embeddings" / "shard-00000.parquet").write_bytes(b"")  # listed, never read: refused first
    return str(folder / "run")


@pytest.mark.parametrize("case", list(CASES))
def test_a_user_mistake_is_one_line_and_exit_2(here, capsys, no_prefect, case):
    argv, words = CASES[case][0](here), CASES[case][1]
    capsys.readouterr()
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < 3.0
    line = one_error_line(capsys, argv[0])
    for word in words:
        assert word in line, line


# Storage faults: the OS error a full, read-only or forbidden disk raises where `synth` writes.
FAULTS = {
    "full disk": (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "s/videos/a.mp4"), ["no space left", "s/videos/a.mp4"]),
    "read-only disk": (OSError(errno.EROFS, os.strerror(errno.EROFS), "s/x"), ["read-only", "writable"]),
    "forbidden folder": (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "s"), ["permission denied", "(s)"]),
    "quota": (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), ["quota", "(s)"]),  # no file name: --out is named
    "safetensors on a full disk": (RuntimeError("No space left on device (os error 28)"), ["no space left"]),
    "input/output error": (OSError(errno.EIO, os.strerror(errno.EIO), "s/x"), ["storage error", "Input/output"]),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_storage_fault_is_one_line_and_exit_2(here, capsys, monkeypatch, fault):
    import v2a.tools.synth

    exc, words = FAULTS[fault]

    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr(v2a.tools.synth, "make_synthetic_dataset", broken)
    assert main(["synth", "--out", "s"]) == 2
    line = one_error_line(capsys, "synth")
    for word in words:
        assert word in line, line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_folder_without_write_permission_is_one_line(here, capsys):
    locked = here / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["synth", "--out", str(locked / "s"), "--classes", "1", "--clips-per-class", "1"]) == 2
    finally:
        locked.chmod(0o700)
    assert "permission denied" in one_error_line(capsys, "synth")


def test_a_prefect_parameter_type_error_is_one_line(here, capsys, monkeypatch):
    import flows.ingest

    real = flows.ingest.ingest_flow

    def validating(*args, **kwargs):  # what Prefect does with a flow's parameters before it runs
        real.validate_parameters({"out": "o", "data": {"csv": "data.csv", "videos": "videos",
                                                      "dataset": ["not", "text"]}})

    monkeypatch.setattr(flows.ingest, "ingest_flow", validating)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # validation needs no server: none is started
    assert main(["ingest", "--out", "o", "--csv", "data.csv", "--videos", "videos"]) == 2
    err = capsys.readouterr().err  # Prefect logs the failed validation too, as it would in a real run
    line = err.strip().splitlines()[-1]
    assert line.startswith("v2a ingest: error: ") and "Traceback" not in err
    assert "dataset" in line and "check the option" in line


def test_debug_shows_the_traceback_before_the_line(here, capsys):
    assert main(["status", "--out", "nowhere", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("v2a status: error: ")
    assert main(["--debug", "status", "--out", "nowhere"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(here, monkeypatch):
    import v2a.tools.synth

    def bug(*args, **kwargs):
        raise KeyError("a bug in v2a")

    monkeypatch.setattr(v2a.tools.synth, "make_synthetic_dataset", bug)
    with pytest.raises(KeyError):
        main(["synth", "--out", "s"])


def test_prefect_logs_of_a_user_error_lose_their_traceback_but_a_bugs_keep_it(caplog):
    logger = logging.getLogger("v2a.test.flow_runs")
    with errors.quiet_tracebacks(), caplog.at_level(logging.ERROR, logger="v2a.test.flow_runs"):
        for exc in (ValueError("bad value"), KeyError("bug")):
            try:
                raise exc
            except Exception:
                logger.exception("Encountered exception during execution: %r", exc)
    user, bug = caplog.records
    assert user.exc_info is None and "bad value" in user.getMessage()
    assert bug.exc_info is not None


def test_the_prefect_start_up_timeout_is_one_line(tmp_path):
    (tmp_path / "data.csv").write_text("abc,0,dog,train\n")
    (tmp_path / "videos").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(tmp_path / "prefect"),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    done = subprocess.run([sys.executable, "-m", "flows.cli", "ingest", "--out", "o", "--csv", "data.csv",
                           "--videos", "videos"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode == 0:
        pytest.skip("the temporary Prefect server started within 1 s here")
    assert done.returncode == 2, done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("v2a ingest: error:")]
    assert len(ours) == 1 and "did not start" in ours[0] and "PREFECT_API_URL" in ours[0]
    assert "Traceback" not in done.stderr


def test_describe_leaves_bugs_alone():
    assert errors.describe(KeyError("x")) is None and errors.describe(AttributeError("x")) is None
    assert errors.describe(ValueError("two\nlines")) == "two lines"


@pytest.mark.parametrize("code, words", [(errno.EROFS, ["read-only", "(ro-out)"]),
                                         (errno.EACCES, ["permission denied", "(ro-out)"])])
def test_an_output_location_that_cannot_be_written_is_refused_before_prefect(here, capsys, monkeypatch, no_prefect,
                                                                             code, words):
    from flows import preflight

    real_open = os.open

    def refusing(path, flags, *args):
        if ".v2a-write-check-" in str(path):  # the probe file: what a read-only or forbidden disk refuses
            raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(preflight.os, "open", refusing)
    started = time.monotonic()
    assert main(["ingest", "--out", "ro-out", "--csv", "data.csv", "--videos", "videos"]) == 2
    assert time.monotonic() - started < 3.0
    line = one_error_line(capsys, "ingest")
    for word in words:
        assert word in line, line
    assert not (here / "ro-out").exists()  # nothing was made there


def test_a_read_only_results_folder_is_refused_before_the_pipeline_starts(here, capsys, monkeypatch, no_prefect):
    """Also as root (who writes anywhere): the probe file in OUT/results is refused as on a read-only mount."""
    out = here / "o"
    (out / "results").mkdir(parents=True)
    real_open = os.open

    def read_only_results(path, *args, **kwargs):
        if os.path.dirname(os.fspath(path)) == str(out / "results"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_results)
    started = time.monotonic()
    assert main(["pipeline", "--config", _write(here / "c.yaml", f"out: {out}\nprofile: tiny\n" + GOOD_DATA)]) == 2
    assert time.monotonic() - started < 3.0
    line = one_error_line(capsys, "pipeline")
    assert "read-only" in line and str(out / "results") in line, line
