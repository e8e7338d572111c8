"""prefect.yaml as the README uses it: a real `prefect server` on loopback, every deployment deployed, the
README's `prefect deployment run` commands run as written on a process worker, and what a person then
sees: tags, versions, descriptions, events, result files, and every artifact opened in the UI by Chromium.

With V2A_SCREENSHOTS=FOLDER the browser test also saves the screenshots of docs/prefect-ui/ there.
"""

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
import yaml

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
STAGES = ("ingest", "embed", "train", "generate", "evaluate", "report")


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
    # The UI (opened by the browser test) asks the API at PREFECT_UI_API_URL, by default port 4200's.
    server_env = {**{k: v for k, v in env.items() if k != "PREFECT_API_URL"}, "PREFECT_UI_API_URL": api}
    log = open(home / "server.log", "w")
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # As conftest's harness: a loaded machine (test runs beside each other) can take minutes to start it.
        deadline = time.monotonic() + 300
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


def _prefect(env, *args, timeout=240) -> str:
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


def readme_run_commands() -> list[str]:
    """The README's `prefect deployment run` commands, continuation lines joined, exactly as written."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Prefect deployments"):]
    block = section[section.index("```bash"):]
    block = block[:block.index("```", 7)]
    lines = block.replace("\\\n", " ").splitlines()
    return [line.split("  #")[0].strip() for line in lines if "prefect deployment run" in line]


def _small_demo_config(demo: Path, data: Path) -> dict:
    """The demo's config (v2a.tools.demo), made small enough for a test run."""
    from v2a.tools.demo import demo_config

    config = demo_config(demo, data, seconds=2.0)
    config["embed"].update(num_frames=3, shard_size=5)
    config["train"].update(epochs=3, batch_size=8, val_sampling_steps=5)
    config["generate"].update(seconds=1.0, steps=3, mapper_steps=5, batch_size=2)
    return config


@pytest.fixture(scope="module")
def readme_runs(prefect_server, synth_dir, tmp_path_factory):
    """Every deployment deployed; the README's run commands run as written (`$PWD` a folder holding
    `.venv` and `demo_out/`, with a small demo config and the session's synthetic set); one worker runs them."""
    env = prefect_server
    _prefect(env, "work-pool", "create", "v2a", "--type", "process")
    _prefect(env, "--no-prompt", "deploy", "--all")
    here = tmp_path_factory.mktemp("readme")
    (here / ".venv").symlink_to(Path(sys.prefix))  # the README's `.venv/bin/prefect`
    demo = here / "demo_out"
    demo.mkdir()
    (demo / "data").symlink_to(synth_dir)
    config = _small_demo_config(demo, demo / "data")
    (demo / "pipeline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commands = readme_run_commands()
    assert any("pipeline/v2a-pipeline" in c for c in commands) and any("ingest/v2a-ingest" in c for c in commands)
    started = {}
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=here, env={**env, "PWD": str(here)}, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        deployment = re.search(r"deployment run '([^']+)'", command).group(1)
        started[deployment] = re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout + done.stderr).group(1)
    _prefect(env, "worker", "start", "--pool", "v2a", "--run-once", timeout=540)
    return env, demo, config, started


def _flow_runs(client, root_id: str) -> list:
    """The run and its subflow runs (the pipeline's stages)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    root = client.read_flow_run(root_id)
    return [root] + list(client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[root.id]))))


def test_the_readme_commands_run_the_pipeline_and_ingest_deployments_to_completion(readme_runs):
    env, demo, config, started = readme_runs
    with _client(env) as client:
        for deployment, run_id in started.items():
            run = client.read_flow_run(run_id)
            assert run.state.is_completed(), (deployment, run.state)
    results = pd.read_parquet(demo / "run" / "results")
    assert {"fd", "fad", "cs"} <= set(results["metric"]) and results["value"].notna().all()
    clips = pd.read_parquet(demo / "run2" / "clips.parquet")
    assert len(clips) == 12


def test_every_deployment_of_prefect_yaml_is_there_described_and_tagged_with_its_stage(readme_runs):
    env = readme_runs[0]
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    with _client(env) as client:
        for d in declared:
            flow_name = d["entrypoint"].rsplit(":", 1)[1].removesuffix("_flow")
            deployment = client.read_deployment_by_name(f"{flow_name}/{d['name']}")
            assert deployment.description and deployment.description == d["description"]
            assert f"stage:{flow_name}" in deployment.tags
        reevaluate = client.read_deployment_by_name("reevaluate/v2a-reevaluate")
    # The scheduled re-evaluation ships switched off.
    assert [s.active for s in reevaluate.schedules] == [False]
    assert reevaluate.schedules[0].schedule.cron == "0 3 * * *"


def test_runs_carry_stage_profile_and_dataset_tags_v2a_s_version_and_names_with_the_output_digest(readme_runs):
    from flows.naming import location_digest
    from v2a import __version__

    env, demo, config, started = readme_runs
    digest = location_digest(config["out"])
    with _client(env) as client:
        runs = _flow_runs(client, started["pipeline/v2a-pipeline"])
    by_flow = {}
    for r in runs:
        by_flow[r.name.split("-", 1)[0]] = r
    assert set(by_flow) == {"pipeline", *STAGES}
    for stage, run in by_flow.items():
        assert {f"stage:{stage}", "profile:tiny", "dataset:synthetic"} <= set(run.tags) or stage == "ingest", run.tags
        assert run.flow_version == __version__
        assert run.name.endswith(digest), run.name  # two outputs never share a run name
    assert {"stage:ingest", "dataset:synthetic"} <= set(by_flow["ingest"].tags)


def test_the_readme_s_ingest_deployment_run_and_its_task_runs_are_tagged_with_the_synthetic_dataset(readme_runs):
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    env, _, _, started = readme_runs
    run_id = started["ingest/v2a-ingest"]
    with _client(env) as client:
        run = client.read_flow_run(run_id)
        task_runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run_id])))
    expected = {"v2a", "stage:ingest", "dataset:synthetic"}
    assert expected <= set(run.tags) and "dataset:vggsound" not in run.tags, run.tags
    assert task_runs and all(expected <= set(t.tags) for t in task_runs), [(t.name, t.tags) for t in task_runs]


def test_the_results_event_names_the_flow_run_the_deployment_and_the_output_location(readme_runs):
    import httpx

    from flows.naming import location_digest

    env, demo, config, started = readme_runs
    digest = location_digest(config["out"])
    reply = httpx.post(f"{env['PREFECT_API_URL']}/events/filter",
                       json={"filter": {"event": {"name": ["v2a.results.written"]}}, "limit": 50}, timeout=30)
    reply.raise_for_status()
    events = reply.json()["events"]
    assert len(events) == 1, events
    event = events[0]
    assert event["resource"]["prefect.resource.id"].endswith(digest)
    related = {r["prefect.resource.role"]: r for r in event["related"]}
    with _client(env) as client:
        evaluate_run = next(r for r in _flow_runs(client, started["pipeline/v2a-pipeline"]) if r.name.startswith("evaluate"))
        deployment = client.read_deployment_by_name("pipeline/v2a-pipeline")
    assert related["flow-run"]["prefect.resource.id"] == f"prefect.flow-run.{evaluate_run.id}"
    assert related["deployment"]["prefect.resource.id"] == f"prefect.deployment.{deployment.id}"
    assert related["output-location"]["prefect.resource.id"] == f"v2a.location.{digest}"
    assert related["output-location"]["prefect.resource.name"] == str(Path(config["out"]).resolve())
    assert "task-run" not in related  # the event is the flow's, not some task's


def test_nothing_under_the_task_result_cache_is_a_pickle(readme_runs):
    _, demo, _, _ = readme_runs
    files = [p for p in (demo / "run" / ".prefect-results").rglob("*") if p.is_file()]
    assert files
    for path in files:
        record = json.loads(path.read_text())  # a pickle would not even parse
        assert record["metadata"]["serializer"]["type"] == "json", path


def test_the_stages_leave_finished_progress_artifacts(readme_runs):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    env, _, _, started = readme_runs
    with _client(env) as client:
        runs = _flow_runs(client, started["pipeline/v2a-pipeline"])
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[r.id for r in runs])))
    progress = {a.key.split("-progress-")[0]: a for a in artifacts if a.type == "progress"}
    assert set(progress) == {"ingest", "embed", "train", "generate", "evaluate", "report"}  # one per stage
    assert all(float(a.data) == 100.0 for a in progress.values())
    assert "12 of 12 clips" in progress["embed"].description and "3 of 3 shards" in progress["embed"].description
    assert "3 of 3 epochs" in progress["train"].description and "train_loss" in progress["train"].description
    assert "3 of 3 samples" in progress["generate"].description
    assert re.search(r"(\d+) of \1 extractors", progress["evaluate"].description)


def _markdown_images(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text or "")


def test_every_artifact_of_the_run_opens_in_the_browser_with_no_broken_image_or_local_link(readme_runs):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from tests.browser import HeadlessChromium, find_chromium

    env, _, _, started = readme_runs
    with _client(env) as client:
        runs = _flow_runs(client, started["pipeline/v2a-pipeline"])
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[r.id for r in runs])))
    keys = [a.key for a in artifacts if a.key]
    for kind in ("domain-gap", "mapper-training", "mapper-training-curve", "evaluation", "listening-report",
                 "pipeline-summary"):
        assert any(k.startswith(kind + "-") for k in keys), (kind, keys)
    for a in artifacts:  # through the API: what the UI will be handed
        data = a.data if isinstance(a.data, str) else json.dumps(a.data)
        assert "file://" not in data and "file://" not in (a.description or ""), a.key
        for src in _markdown_images(data):
            assert src.startswith("data:image/png;base64,") or src.startswith("http"), (a.key, src[:80])
    assert len(_markdown_images(next(a.data for a in artifacts if a.key.startswith("domain-gap")))) == 2
    assert len(_markdown_images(next(a.data for a in artifacts if a.key.startswith("listening-report")))) >= 3
    summary = next(a.data for a in artifacts if a.key.startswith("pipeline-summary"))
    assert "| gen_time_s |" in summary and "nan" not in summary  # rows of no extractor show `-`

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium here (`make test` installs it)")
    ui = env["PREFECT_API_URL"].removesuffix("/api")
    shots = os.environ.get("V2A_SCREENSHOTS")
    with HeadlessChromium(chromium, timeout=60) as browser:
        page = browser.new_page()
        for a in artifacts:
            page.navigate(f"{ui}/artifacts/artifact/{a.id}")
            expected = len(_markdown_images(a.data)) if a.type == "markdown" else 0
            seen = _wait_for_artifact(page, a, expected)
            assert seen["broken"] == [], (a.key, seen["broken"])
            assert seen["file_links"] == [], (a.key, seen["file_links"])
            assert seen["data_images"] >= expected, (a.key, seen)
            if shots and a.key and a.key.startswith(("listening-report", "domain-gap", "embed-progress")):
                page.screenshot(Path(shots, f"artifact-{a.key.split('-run-')[0]}.png"), height=1400)
        if shots:
            _screenshot_run_pages(page, ui, env, started, Path(shots))
        page.close()


_SEEN = """(() => {
  const imgs = [...document.images];
  return {
    text: document.body.innerText.length,
    loaded: imgs.every(i => i.complete),
    broken: imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src.slice(0, 120)),
    data_images: imgs.filter(i => i.src.startsWith('data:image/') && i.naturalWidth > 0).length,
    file_links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
                  .filter(h => h.startsWith('file:')),
  };
})()"""


def _wait_for_artifact(page, artifact, expected_images: int, timeout: float = 30.0) -> dict:
    """What the artifact page shows once the UI has rendered it (its description, its images loaded)."""
    deadline = time.monotonic() + timeout
    marker = json.dumps((artifact.description or artifact.key or "")[:30])
    while True:
        seen = page.evaluate(_SEEN)
        shown = page.evaluate(f"document.body.innerText.includes({marker})")
        if shown and seen["loaded"] and seen["data_images"] >= expected_images:
            return seen
        if time.monotonic() > deadline:
            return {**seen, "timed_out": True}
        time.sleep(0.3)


def _screenshot_run_pages(page, ui: str, env, started: dict, folder: Path) -> None:
    """The run form of the pipeline deployment, the pipeline run's page and the artifacts of it and of
    its embed stage (docs/prefect-ui/)."""
    with _client(env) as client:
        deployment = client.read_deployment_by_name("pipeline/v2a-pipeline")
        embed_run = next(r for r in _flow_runs(client, started["pipeline/v2a-pipeline"]) if r.name.startswith("embed"))
    pipeline_run = f"{ui}/runs/flow-run/{started['pipeline/v2a-pipeline']}"
    for name, url, text, click, then, height in (
            ("run-form", f"{ui}/deployments/deployment/{deployment.id}/run", "config_file", "PipelineConfig",
             "Num Frames", 2600),
            ("pipeline-run", pipeline_run, "pipeline-", "Details", "Flow Version", 1400),
            ("pipeline-run-artifacts", pipeline_run, "pipeline-", "Artifacts", "Outputs of pipeline run", 1400),
            ("embed-run-artifacts", f"{ui}/runs/flow-run/{embed_run.id}", "embed-", "Artifacts", "embed: 12 of 12",
             1400)):
        page.navigate(url)
        _wait_for_text(page, text)
        # The innermost element reading `click` (a tab, a toggle): its click reaches the handler above it.
        page.evaluate("[...document.querySelectorAll('body *')].filter(e => e.children.length === 0)"
                      f".find(e => e.textContent.trim() === {json.dumps(click)})?.click()")
        _wait_for_text(page, then)
        time.sleep(1.5)
        page.screenshot(folder / f"{name}.png", height=height)


def _wait_for_text(page, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"document.body.innerText.includes({json.dumps(text)})") and time.monotonic() < deadline:
        time.sleep(0.3)
