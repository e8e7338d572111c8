"""A deployment run given bad parameters, on a real `prefect server` and a process worker (the fixtures of
test_deploy.py): it fails at once (before any task; 0.6 s from Running to Failed on a quiet machine), its
state message is one line saying what is wrong, no log of it holds a traceback, and it is named after what
it was given."""

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


def _logs(client, flow_run_id) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [r.message for r in logs]


FAILS_WITHIN_S = 5.0

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
    assert "\n" not in message and re.search(EXPECTED[case], message), message
    assert logs and not [line for line in logs if "Traceback" in line], logs
    # Refused before any work: no task ran. 0.6 s from Running to Failed on a quiet machine; the bound leaves
    # room for a loaded one (2.4 s seen at load 25 on 2 cores), still far below any model or media work.
    assert tasks == 0
    assert (run.end_time - run.start_time).total_seconds() < FAILS_WITHIN_S, (run.start_time, run.end_time)


def test_failed_runs_are_named_after_what_they_were_given(failed_runs):
    from flows.naming import location_digest

    runs, missing, out, _ = failed_runs
    names = {case: run.name for case, (run, _, _) in runs.items()}
    assert names["missing"] == f"pipeline-bad-config-missing-yaml-{location_digest(missing)}"
    assert names["both"] == "pipeline-config-and-config-file"
    assert names["neither"] == "pipeline-no-config"
    assert names["invalid"] == f"pipeline-bad-config-run-{location_digest(out)}"
    assert names["no-clips"].startswith("embed-empty-")
