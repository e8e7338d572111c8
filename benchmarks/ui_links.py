"""Dead links in the Prefect UI after a run: every flow run page, every artifact page, and every link a
person can click inside an artifact, opened in headless Chromium and checked against the server's API.

    .venv/bin/python benchmarks/ui_links.py --api http://127.0.0.1:4200/api               # every run on the server
    .venv/bin/python benchmarks/ui_links.py --api ... --flow-run ID --screenshots DIR     # one run and its subflows

The README's path (`make demo`, then the `v2a-pipeline` deployment re-run on `demo_out/pipeline.yaml`) is
where a dead link was met (issue 28): the re-run's "Unchanged since flow run X" notes linked runs of the
demo's temporary server, and the UI answered "Page not found". Each row of the table is one page or link:

- `flow-run`, `artifact`, `artifact-key`: the pages of the selected runs and of their artifacts; each must
  show what the API says is there (the run's name, the artifact's key) and not "Page not found";
- `link`: a link written in an artifact (its markdown, table cells or description, which the UI renders as
  markdown), and `ui-link`: a link the UI itself draws on those pages to an object (a flow, a deployment,
  a work pool, another run). Each is opened and, where it names an object of the server (a flow run, a task
  run, an artifact, a deployment, a flow, a work pool), that object is read through the REST API too.
  A link to a host other than the UI's is listed and not opened (the machines this was written on have
  no network); one to another port of this host is opened (a temporary server that is gone is dead).

The UI is a client-side app: a page is done when the text the API predicts is shown, or "Page not found";
a page that shows neither within --timeout seconds counts as dead too. Exit status 1 when anything is dead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import HeadlessChromium, find_chromium  # noqa: E402

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NOT_FOUND = "Page not found"
# A UI path -> (API path, the field of the API's answer the page shows). Anything else the UI links to is
# opened only.
OBJECT_PAGES = (
    (rf"/runs/flow-run/({UUID})", "flow_runs/{}", "name"),
    (rf"/runs/task-run/({UUID})", "task_runs/{}", "name"),
    (rf"/artifacts/artifact/({UUID})", "artifacts/{}", "key"),
    (r"/artifacts/key/([^/?#]+)", "artifacts/{}/latest", "key"),
    (rf"/deployments/deployment/({UUID})", "deployments/{}", "name"),
    (rf"/flows/flow/({UUID})", "flows/{}", "name"),
    (r"/work-pools/work-pool/([^/?#]+)/queue/([^/?#]+)", "work_pools/{}/queues/{}", "name"),
    (r"/work-pools/work-pool/([^/?#]+)$", "work_pools/{}", "name"),
)
MARKDOWN_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)")
BARE_URL = re.compile(r"(?<![(<\"'])\bhttps?://[^\s)\"'<>|`]+")


@dataclass
class Row:
    kind: str
    target: str
    source: str
    api: str = "-"
    browser: str = "-"
    dead: bool = False
    notes: list[str] = field(default_factory=list)


class Api:
    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url.rstrip("/"), timeout

    def call(self, path: str, body: dict | None = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/{path}", data=data, method="POST" if data else "GET",
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as err:
            return err.code, None
        except OSError:  # nothing listens there (a temporary server that has ended)
            return 0, None

    def filter(self, what: str, body: dict) -> list[dict]:
        """Every object a filter matches, page by page (the API caps one answer at 200)."""
        found, offset = [], 0
        while True:
            status, page = self.call(f"{what}/filter", {**body, "limit": 200, "offset": offset})
            if status != 200:
                raise SystemExit(f"ui_links: POST {self.url}/{what}/filter answered {status}")
            found += page
            if len(page) < 200:
                return found
            offset += 200


def select_runs(api: Api, roots: list[str]) -> list[dict]:
    """The given runs and every run below them (a pipeline's stage runs), or, given none, every run."""
    if not roots:
        return api.filter("flow_runs", {"sort": "START_TIME_ASC"})
    runs, frontier = [], list(roots)
    for run_id in roots:
        status, run = api.call(f"flow_runs/{run_id}")
        if status != 200:
            raise SystemExit(f"ui_links: no flow run {run_id} on {api.url} (HTTP {status})")
        runs.append(run)
    while frontier:
        children = api.filter("flow_runs", {"flow_runs": {"parent_flow_run_id": {"any_": frontier}}})
        children = [c for c in children if c["id"] not in {r["id"] for r in runs}]
        runs += children
        frontier = [c["id"] for c in children]
    return runs


def artifact_links(artifact: dict) -> list[str]:
    """The links a person can click in an artifact: markdown links (not images) and bare URLs, in its data
    (markdown, or the cells of a table) and its description, which the UI renders as markdown too."""
    data = artifact.get("data")
    texts = [data if isinstance(data, str) else json.dumps(data), artifact.get("description") or ""]
    links = []
    for text in texts:
        for url in MARKDOWN_LINK.findall(text) + BARE_URL.findall(text):
            if not url.startswith(("data:", "#")) and url not in links:
                links.append(url)
    return links


def api_object(api: Api, ui: str, url: str) -> tuple[str, str | None, bool]:
    """(what the API says, the text its page should show, dead) for a UI address; ('-', None, False) for a
    page that names no object. The object is looked up on the server the link points to: a link to another
    port (another server) is asked there, not here."""
    link, home = urllib.parse.urlsplit(url), urllib.parse.urlsplit(ui)
    elsewhere = bool(link.netloc) and link.netloc != home.netloc
    if elsewhere:
        api = Api(f"{link.scheme}://{link.netloc}/api", api.timeout)
    path = link.path.removeprefix(home.path.rstrip("/"))
    for pattern, api_path, shown in OBJECT_PAGES:
        m = re.fullmatch(pattern.removesuffix("$"), path)
        if m:
            status, obj = api.call(api_path.format(*(urllib.parse.quote(g, safe="") for g in m.groups())))
            what = f"{status or 'no answer'} {api.url + '/' if elsewhere else ''}{api_path.split('/')[0]}"
            if status != 200:
                return what, None, True
            return what, str(obj.get(shown) or ""), False
    return "-", None, False


_SNAPSHOT = """(() => ({
  href: location.href,
  text: document.body ? document.body.innerText : '',
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
}))()"""


def render(page, url: str, expect: str | None, timeout: float, settle: float = 1.0) -> dict:
    """Open `url` and wait until it shows `expect` (or, with nothing to expect, some text), or "Page not found";
    then until its text and links have not changed for `settle` seconds, since the UI fills a page's panels one
    request at a time (a run's name comes before the links to its flow and deployment)."""
    page.navigate(url)
    deadline = time.monotonic() + timeout
    while True:
        seen = page.evaluate(_SNAPSHOT)
        text = seen["text"]
        if seen["href"].startswith("chrome-error:"):  # Chromium's own page for a host that did not answer
            return {**seen, "verdict": "no answer (" + (re.findall(r"ERR_[A-Z_]+", text) or ["?"])[0] + ")"}
        if NOT_FOUND in text:
            return {**seen, "verdict": NOT_FOUND}
        if (expect and expect in text) or (not expect and len(text.strip()) > 40):
            break
        if time.monotonic() > deadline:
            return {**seen, "verdict": f"{expect!r} not shown in {timeout:.0f} s" if expect else "blank page"}
        time.sleep(0.3)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < settle and time.monotonic() < deadline:
        time.sleep(0.25)
        now = page.evaluate(_SNAPSHOT)
        if (now["text"], now["links"]) != (seen["text"], seen["links"]):
            seen, stable_since = now, time.monotonic()
    verdict = NOT_FOUND if NOT_FOUND in seen["text"] else "shown"
    return {**seen, "verdict": verdict}


def check(api: Api, ui: str, runs: list[dict], chromium: str, timeout: float, screenshots: Path | None,
          ui_links: bool) -> list[Row]:
    ui_origin = urllib.parse.urlsplit(ui)
    ids = [r["id"] for r in runs]
    artifacts = api.filter("artifacts", {"artifacts": {"flow_run_id": {"any_": ids}}}) if ids else []
    rows: list[Row] = []
    pages = [Row("flow-run", f"{ui}/runs/flow-run/{r['id']}", r["name"]) for r in runs]
    for a in artifacts:
        label = a.get("key") or a["id"]
        pages.append(Row("artifact", f"{ui}/artifacts/artifact/{a['id']}", label))
        if a.get("key"):
            pages.append(Row("artifact-key", f"{ui}/artifacts/key/{a['key']}", label))
    links: dict[str, Row] = {}
    for a in artifacts:
        for url in artifact_links(a):
            row = links.setdefault(url, Row("link", url, "in"))
            row.source += ("" if row.source == "in" else ",") + f" {a.get('key') or a['id']}"

    with HeadlessChromium(chromium, timeout=max(60.0, timeout)) as browser:
        page = browser.new_page()

        def visit(row: Row, shot: str | None = None) -> dict | None:
            row.api, expect, row.dead = api_object(api, ui, row.target)
            seen = render(page, row.target, expect, timeout)
            row.browser = seen["verdict"]
            row.dead = row.dead or seen["verdict"] != "shown"
            if shot and screenshots:
                screenshots.mkdir(parents=True, exist_ok=True)
                page.screenshot(screenshots / shot, width=1400, height=1000)
                row.notes.append(f"screenshot {screenshots / shot}")
            return seen

        drawn: dict[str, Row] = {}
        for row in pages:
            shot = f"{row.kind}-{row.source[:80]}.png" if row.kind != "flow-run" else None
            seen = visit(row, shot)
            for href in seen["links"] if ui_links else ():
                parts = urllib.parse.urlsplit(href)
                # Links the UI draws to an object (the run's flow, deployment, work pool, parent run); its menus
                # and list pages are the same on every page and need no check.
                if parts.netloc == ui_origin.netloc and any(re.search(p.removesuffix("$"), parts.path)
                                                            for p, _, _ in OBJECT_PAGES):
                    if href not in links and href not in drawn and not any(p.target == href for p in pages):
                        drawn[href] = Row("ui-link", href, f"on {row.source}")
            rows.append(row)
        for row in [*links.values(), *drawn.values()]:
            parts = urllib.parse.urlsplit(row.target)
            if not parts.scheme:  # a relative link: the UI resolves it against its own address
                row.target = urllib.parse.urljoin(ui + "/", row.target)
                parts = urllib.parse.urlsplit(row.target)
            if parts.scheme not in ("http", "https"):
                row.browser, row.dead = f"not a web link ({parts.scheme})", True
            elif parts.hostname not in (ui_origin.hostname, "127.0.0.1", "localhost"):
                row.browser = "not opened (another host)"
            else:
                visit(row)
            rows.append(row)
        page.close()
    return rows


def print_table(rows: list[Row]) -> None:
    head = ("kind", "page or link", "from", "API", "browser", "")
    table = [head] + [(r.kind, r.target, r.source, r.api, r.browser, "DEAD" if r.dead else "ok") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        for note in r.notes:
            print(f"{r.kind} {r.source}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", default=os.environ.get("PREFECT_API_URL"),
                        help="the server's API address (default: PREFECT_API_URL)")
    parser.add_argument("--ui", help="the UI's address (default: --api without /api)")
    parser.add_argument("--flow-run", action="append", default=[], metavar="ID",
                        help="a run to check with its subflow runs (repeatable; default: every run on the server)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a page may take to show (default 30)")
    parser.add_argument("--screenshots", type=Path, help="save every artifact page here (1400 x 1000)")
    parser.add_argument("--no-ui-links", action="store_true",
                        help="follow only the links inside artifacts, not those the UI draws on the pages")
    args = parser.parse_args(argv)
    if not args.api:
        parser.error("give --api or set PREFECT_API_URL")
    ui = (args.ui or args.api.rstrip("/").removesuffix("/api")).rstrip("/")
    chromium = find_chromium()
    if chromium is None:
        parser.error("no Chromium here (Debian: apt-get install chromium)")
    api = Api(args.api, timeout=30)
    runs = select_runs(api, args.flow_run)
    started = time.monotonic()
    rows = check(api, ui, runs, chromium, args.timeout, args.screenshots, not args.no_ui_links)
    print_table(rows)
    dead = [r for r in rows if r.dead]
    counts = {kind: sum(r.kind == kind for r in rows) for kind in ("flow-run", "artifact", "artifact-key", "link",
                                                                  "ui-link")}
    print(f"{len(runs)} flow runs; pages and links checked: "
          + ", ".join(f"{n} {kind}" for kind, n in counts.items())
          + f"; {len(dead)} dead; {time.monotonic() - started:.0f} s")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
