"""`benchmarks/ui_links.py` without a browser: which strings of an artifact it follows as links, and that a link to a
server that is gone (a command's temporary one) is dead through the API, not taken for a page."""

import json
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import ui_links  # noqa: E402

RUN = "85a00343-ed02-415c-9eb0-16a89003dc4b"


def test_the_links_of_an_artifact_are_its_markdown_links_table_cells_and_description_not_its_images():
    markdown = {"data": (f"_Unchanged since flow run [embed-run](http://127.0.0.1:4200/runs/flow-run/{RUN})_\n\n"
                         "![cosine](data:image/png;base64,AAAA) ![plot](http://127.0.0.1:4200/plot.png) "
                         "[docs](https://docs.prefect.io/v3) [top](#metrics)"),
                "description": "Made by [a run](/runs/flow-run/" + RUN + ")."}
    assert ui_links.artifact_links(markdown) == [f"http://127.0.0.1:4200/runs/flow-run/{RUN}",
                                                 "https://docs.prefect.io/v3", f"/runs/flow-run/{RUN}"]
    table = {"data": json.dumps([{"metric": "fd", "where": "see http://127.0.0.1:4200/artifacts/key/evaluation-x"}]),
             "description": None}
    assert ui_links.artifact_links(table) == ["http://127.0.0.1:4200/artifacts/key/evaluation-x"]


def test_a_link_to_a_server_that_is_gone_is_dead_and_asked_of_that_server():
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        gone = s.getsockname()[1]
    here = ui_links.Api("http://127.0.0.1:4200/api", timeout=5)
    said, expect, dead = ui_links.api_object(here, "http://127.0.0.1:4200",
                                             f"http://127.0.0.1:{gone}/runs/flow-run/{RUN}")
    assert dead and expect is None
    assert said == f"no answer http://127.0.0.1:{gone}/api/flow_runs"
    # A page that names no object (a list, the dashboard) is opened only.
    assert ui_links.api_object(here, "http://127.0.0.1:4200", "http://127.0.0.1:4200/dashboard") == ("-", None, False)
