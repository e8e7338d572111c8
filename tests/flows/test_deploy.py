"""prefect.yaml deploys: a real `prefect server` on loopback, a process work pool, one deployment run by a worker."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """`prefect server start` in a subprocess with a PREFECT_HOME of its own; yields the CLI's environment."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    # The test session's own Prefect settings (a harness, a profile) must not leak into these commands.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PWD=str(REPO),
               PREFECT_API_URL=api, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    log = open(home / "server.log", "w")
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start:\n" + (home / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _prefect(env, *args, timeout=180) -> str:
    done = subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _client(env):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    class _Session:
        def __enter__(self):
            self._settings = temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]})
            self._settings.__enter__()
            self._client = get_client(sync_client=True)
            return self._client.__enter__()

        def __exit__(self, *exc):
            self._client.__exit__(*exc)
            self._settings.__exit__(*exc)

    return _Session()


def test_a_deployed_flow_runs_on_a_process_worker_and_writes_its_output(prefect_server, synth_dir, tmp_path):
    env = prefect_server
    _prefect(env, "work-pool", "create", "v2a", "--type", "process")
    _prefect(env, "--no-prompt", "deploy", "--name", "v2a-ingest", "--name", "v2a-reevaluate")
    out = tmp_path / "run"
    data = json.dumps({"csv": str(synth_dir / "vggsound.csv"), "videos": str(synth_dir / "videos"),
                       "dataset": "synthetic"})
    started = _prefect(env, "deployment", "run", "ingest/v2a-ingest", "-p", f"out={out}", "-p", f"data={data}")
    flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", started).group(1)
    _prefect(env, "worker", "start", "--pool", "v2a", "--run-once", timeout=240)

    with _client(env) as client:
        run = client.read_flow_run(flow_run_id)
        assert run.state.is_completed(), run.state
        reevaluate = client.read_deployment_by_name("reevaluate/v2a-reevaluate")
    clips = pd.read_parquet(out / "clips.parquet")
    assert len(clips) == 12 and set(clips["dataset"]) == {"synthetic"}
    # The scheduled re-evaluation ships switched off.
    assert [s.active for s in reevaluate.schedules] == [False]
    assert reevaluate.schedules[0].schedule.cron == "0 3 * * *"
