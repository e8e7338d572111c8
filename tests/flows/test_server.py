"""The temporary Prefect server of a `v2a` command tells its failures apart: a broken PREFECT_HOME is one
line naming it and the remedy, exit 2, without retries; first runs sharing a new home all start."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows import server

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


@pytest.fixture()
def images(tmp_path) -> Path:
    """An image folder of one picture: the cheapest input a flow (ingest) runs on."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(folder / "red.png")
    return folder


def _ingest(home: Path, out: Path, images: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "ingest", "--out", str(out), "--images", str(images)],
                            cwd=out.parent, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_corrupt_prefect_database_is_one_line_and_exit_2_at_once(tmp_path, images):
    home = tmp_path / "prefect"
    home.mkdir()
    (home / "prefect.db").write_bytes(b"this was a database before a disk went bad" * 100)
    started = time.monotonic()
    proc = _ingest(home, tmp_path / "out", images)
    _, err = proc.communicate(timeout=300)
    took = time.monotonic() - started
    assert proc.returncode == 2, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("v2a ingest: error: "), err[-3000:]
    assert f"PREFECT_HOME={home}" in lines[0] and f"move {home / 'prefect.db'} aside" in lines[0], lines[0]
    # Refused before a server is started (no start-up to wait for, no retries): the command's own
    # imports are the time it takes (seconds; far more only on a machine as loaded as this suite's).
    assert took < 60, took


def test_a_database_the_server_cannot_migrate_stops_it_once_with_one_line(tmp_path, monkeypatch):
    """A valid SQLite file at a schema revision Prefect does not know: the server exits while starting.
    That is not a taken port (the server is handed its socket): no second server is started."""
    home = tmp_path / "prefect"
    home.mkdir()
    with sqlite3.connect(home / "prefect.db") as con:
        con.execute("create table alembic_version (version_num varchar(32) not null primary key)")
        con.execute("insert into alembic_version values ('0123456789ab')")
    monkeypatch.setenv("PREFECT_HOME", str(home))
    launches = []
    real_launch = server.TemporaryServer._launch

    def counted(self):
        launches.append(time.monotonic())
        real_launch(self)

    monkeypatch.setattr(server.TemporaryServer, "_launch", counted)
    temporary = server.TemporaryServer().start()
    with pytest.raises(server.ServerHomeError) as err:
        temporary.wait(timeout=240)
    assert len(launches) == 1
    line = str(err.value)
    assert "\n" not in line and f"PREFECT_HOME={home}" in line and "aside" in line and "0123456789ab" in line, line
    assert "Application startup failed" in err.value.log  # the server's own words, for --debug


def test_a_run_waits_for_another_starting_a_server_on_the_same_home(tmp_path, monkeypatch):
    """Servers on one PREFECT_HOME start one at a time: each creates or migrates the database as it starts."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    first, second = server.TemporaryServer(), server.TemporaryServer()
    try:
        assert first._take_lock(blocking=False)  # as first.start() does before launching its server
        second.start()
        assert second.process is None, "a second server started while the first was starting"
        with pytest.raises(server.ServerStartError, match="another v2a run"):
            second.wait(timeout=0.5)
        first._release_lock()  # the first server answers: the next may start
        assert second._take_lock(blocking=False)
    finally:
        first.stop()
        second.stop()
        second._release_lock()


@pytest.mark.slow
def test_three_first_runs_at_once_on_a_new_shared_home_all_complete(tmp_path, images):
    home = tmp_path / "shared-prefect"  # does not exist yet: the runs' servers create its database
    runs = [_ingest(home, tmp_path / f"out{i}", images) for i in range(3)]
    failed = []
    for i, proc in enumerate(runs):
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failed.append(f"run {i}: exit {proc.returncode}\n{err[-2000:]}")
    assert not failed, "\n".join(failed)
    with sqlite3.connect(home / "prefect.db") as con:
        states = [row[0] for row in con.execute("select state_type from flow_run")]
    assert sorted(states) == ["COMPLETED"] * 3
