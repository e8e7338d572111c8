"""What an artifact says about a result from the task cache: which run made it, linked only where the
server the artifact goes to knows that run."""

import uuid


def test_an_unchanged_note_links_a_run_of_this_server_and_names_one_of_another_without_a_link(prefect_harness):
    from prefect import flow
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    from flows.artifacts import cached_note

    elsewhere = str(uuid.uuid4())  # a run of another server (the demo's temporary one, say)

    @flow
    def publish() -> tuple[str, str, str]:
        here = {"flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name}
        there = {"flow_run_id": elsewhere, "flow_run_name": "embed-run-1a2b3c4d-5e6f7a"}
        return (cached_note({"cached": True, "made_by": here}), cached_note({"cached": True, "made_by": there}),
                str(flow_run.id))

    with temporary_settings({PREFECT_UI_URL: "http://ui.example:4200"}):
        linked, named, run_id = publish()
    assert linked.startswith("Unchanged since flow run [")
    assert f"](http://ui.example:4200/runs/flow-run/{run_id})" in linked
    assert named == (f"Unchanged since flow run `embed-run-1a2b3c4d-5e6f7a` (flow run {elsewhere}) "
                     "(served from the task cache).")
    assert "](" not in named and "http" not in named


def test_an_unchanged_note_names_a_run_of_v2a_s_temporary_server_without_a_link(prefect_harness, monkeypatch):
    """A command run without PREFECT_API_URL writes to a server on a port of its own, gone when it ends: a
    second `make demo` linked its notes there, and the UI later opened over the same database showed a
    dead page (issue 28's browser check)."""
    from prefect import flow
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    import flows.server
    from flows.artifacts import cached_note

    @flow
    def publish() -> tuple[str, str]:
        here = {"flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name}
        return cached_note({"cached": True, "made_by": here}), str(flow_run.id)

    # The harness's server stands in for the one the command started: the run is there, as on the demo's.
    monkeypatch.setattr(flows.server, "temporary_server", lambda: object())
    with temporary_settings({PREFECT_UI_URL: "http://127.0.0.1:38599"}):
        named, run_id = publish()
    assert named.startswith("Unchanged since flow run `") and f"(flow run {run_id})" in named
    assert "](" not in named and "http" not in named
