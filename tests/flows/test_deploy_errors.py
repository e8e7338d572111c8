"""A deployment run given bad parameters, on a real `prefect server` and a process worker (the fixtures of
test_deploy.py): it fails at once (before any task, within a second of its Running state), its
state message is one line saying what is wrong, no log of it holds a traceback, and it is named after what
it was given."""

import logging
import os
import signal
import subprocess
import time

import pytest

from tests.flows.test_deploy import PREFECT, REPO, _client, _prefect, prefect_server  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def failed_runs(prefect_server, tmp_path_factory):
    """The pipeline deployment run with a missing `config_file`, with both `config` and `config_file`, with
    neither, with a `config` the server's schema lets through but the configuration refuses, and the embed
    deployment on an output without a clips table; one worker runs them all."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    env = prefect_server
    here = tmp_path_factory.mktemp("bad-params")
    _prefect(env, "work-pool", "create", "v2a", "--type", "process")
    _prefect(env, "--no-prompt", "deploy", "--name", "v2a-pipeline", "--name", "v2a-embed")
    missing = str(here / "missing.yaml")
    # A GPU listed twice: valid JSON for the deployment's parameter schema, refused by PipelineConfig.
    bad = {"out": str(here / "run"), "profile": "tiny", "data": {"images": str(here)}, "runner": {"gpus": [0, 0]}}
    cases = {"missing": ("pipeline/v2a-pipeline", {"config_file": missing}),
             "both": ("pipeline/v2a-pipeline", {"config": bad, "config_file": missing}),
             "neither": ("pipeline/v2a-pipeline", {}),
             "invalid": ("pipeline/v2a-pipeline", {"config": bad}),
             "no-clips": ("embed/v2a-embed", {"out": str(here / "empty"), "profile": "tiny"})}
    ids = {}
    with _client(env) as client:
        for case, (deployment, parameters) in cases.items():
            d = client.read_deployment_by_name(deployment)
            ids[case] = client.create_flow_run_from_deployment(d.id, parameters=parameters).id
    # A worker that polls every second: the pipeline deployment runs one at a time (its concurrency limit).
    log = open(here / "worker.log", "w")
    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "v2a"], cwd=REPO, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True,
                              env={**env, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"})
    try:
        deadline = time.monotonic() + 480
        with _client(env) as client:
            while True:
                runs = {case: client.read_flow_run(i) for case, i in ids.items()}
                if all(r.state.is_final() for r in runs.values()) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            logs = {case: _logs(client, i) for case, i in ids.items()}
            tasks = {case: len(client.read_task_runs(task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[i])))) for case, i in ids.items()}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        log.close()
    runs = {case: (runs[case], logs[case], tasks[case]) for case in cases}
    return runs, missing, bad["out"], here / "worker.log"


def _logs(client, flow_run_id) -> list:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    return list(client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))))


# The bound, from the run's start (its Running state) to its Failed state and to the ERROR line of its log,
# all timestamps the run's own process gave the server. Measured 2026-12-07 (2 cores, load 3-13): 0.10-0.71 s on the
# process worker. What it is made of: v2a's check of the parameters takes 0.0-4.4 ms; the rest is Prefect's (API
# calls, and the flow-run heartbeat thread, joined when the flow exits: a failure that finds it asleep waits for the
# end of its 1-s sleep, 1.04 s where an in-process run has already sent its first heartbeat; a fresh worker process
# is still sending it). The import of the flow's modules (torch, 6-20 s) comes before the Running state.
FAILS_WITHIN_S = 1.0

EXPECTED = {
    "missing": r"^Flow run encountered an exception: ConfigError: pipeline: config_file \S+/missing\.yaml: not "
               r"found; check the path \(a relative path is read from \S+\)$",
    "both": r"^Flow run encountered an exception: ConfigError: pipeline: `config` and `config_file` were both "
            r"given: give one, not both \(",
    "neither": r"^Flow run encountered an exception: ConfigError: pipeline: neither `config` nor `config_file` was "
               r"given: give one \(",
    "invalid": r"^Flow run encountered an exception: ConfigError: runner\.gpus = \[0, 0\]: a GPU listed twice; "
               r"accepted: ",
    "no-clips": r"^Flow run encountered an exception: FileNotFoundError: no clips table at \S+/empty/clips\.parquet; "
                r"run `v2a ingest",
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_a_bad_parameter_fails_the_run_at_once_with_one_line_and_no_traceback(failed_runs, case):
    import re

    runs, _, _, worker_log = failed_runs
    run, logs, tasks = runs[case]
    assert run.state.is_failed(), (case, run.state, worker_log.read_text()[-3000:])
    message = run.state.message
    lines = [r.message for r in logs]
    assert "\n" not in message and re.search(EXPECTED[case], message), message
    assert lines and not [line for line in lines if "Traceback" in line], lines
    # Refused before any work: no task ran, and the run failed within a second of its start.
    assert tasks == 0
    error_at = min(r.timestamp for r in logs if r.level >= logging.ERROR)
    took = {"failed": (run.end_time - run.start_time).total_seconds(),
            "error logged": (error_at - run.start_time).total_seconds()}
    print(f"{case}: {took}")
    assert max(took.values()) < FAILS_WITHIN_S, (case, took, run.start_time)


def test_failed_runs_are_named_after_what_they_were_given(failed_runs):
    from flows.naming import location_digest

    runs, missing, out, _ = failed_runs
    names = {case: run.name for case, (run, _, _) in runs.items()}
    assert names["missing"] == f"pipeline-bad-config-missing-yaml-{location_digest(missing)}"
    assert names["both"] == "pipeline-config-and-config-file"
    assert names["neither"] == "pipeline-no-config"
    assert names["invalid"] == f"pipeline-bad-config-run-{location_digest(out)}"
    assert names["no-clips"].startswith("embed-empty-")
