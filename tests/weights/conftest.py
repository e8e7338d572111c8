"""A real HTTP server on 127.0.0.1 that serves fixture files the way the weights' publishers do:
plain files with ``Range`` support, a Hugging Face-style tree API and ``resolve`` URLs, and a
Zenodo-style record API. It can cut a transfer halfway (once per path) and ignore ``Range``."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FixtureServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}      # URL path -> body
        self.json: dict[str, object] = {}      # URL path (no query) -> JSON body
        self.cut_once: set[str] = set()        # paths whose next transfer stops halfway
        self.ignore_range = False
        self.log: list[dict] = []              # one record per request: path, range, bytes sent
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def requests_for(self, path: str) -> list[dict]:
        return [r for r in self.log if r["path"] == path]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                record = {"path": path, "range": self.headers.get("Range"), "sent": 0}
                server.log.append(record)
                if path in server.json:
                    body = json.dumps(server.json[path]).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[path]
                start = 0
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if path in server.cut_once:  # promise the whole body, send half, hang up
                    server.cut_once.discard(path)
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)
                record["sent"] = len(body)

        return Handler


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv = FixtureServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty weights cache in tmp, online (the suite runs offline otherwise)."""
    root = tmp_path / "weights-cache"
    monkeypatch.setenv("V2A_WEIGHTS_DIR", str(root))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "V2A_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.fixture
def registry_of():
    """Install a registry of test entries for one test: ``registry_of({name: raw_entry_dict})``."""
    from v2a.weights.registry import make_entry, use_registry

    def install(raw: dict):
        entries = {name: make_entry(name, value) for name, value in raw.items()}
        use_registry(entries)
        return entries

    yield install
    use_registry(None)


def payload(n: int, seed: int = 0) -> bytes:
    """Deterministic fixture bytes (not all equal, so a shifted resume would be caught)."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
