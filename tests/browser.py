"""Headless Chromium driven over the DevTools protocol, for tests that must see a page as a browser does.

`--dump-dom` returns before slow media has fired its events; over the protocol a test can await them.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name) if not os.path.isabs(name) else (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


class DevToolsError(RuntimeError):
    pass


class Page:
    """One tab; `send` waits for the reply to its own call and keeps events for `wait_event`."""

    def __init__(self, ws_url: str, timeout: float):
        from websockets.sync.client import connect

        # Screenshots of a tall page arrive as one large base64 message.
        self._ws = connect(ws_url, max_size=64 * 2**20, open_timeout=timeout)
        self._ids = itertools.count(1)
        self._events: list[dict] = []
        self.timeout = timeout

    def send(self, method: str, params: dict | None = None) -> dict:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + self.timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == call_id:
                if "error" in msg:
                    raise DevToolsError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self._events):
                if ev["method"] == method:
                    return self._events.pop(i)
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if "method" in msg:
                self._events.append(msg)

    def navigate(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JS expression; a promise is awaited."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: str | Path, width: int = 1280, height: int = 2000) -> Path:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._ws.close()


class HeadlessChromium:
    """A private Chromium process (own profile folder, no network chatter), stopped on exit."""

    def __init__(self, binary: str, timeout: float = 30.0):
        self.binary, self.timeout = binary, timeout
        self._profile = tempfile.mkdtemp(prefix="v2a-chromium-")
        self._proc = None

    def __enter__(self) -> "HeadlessChromium":
        args = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0", "about:blank"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise DevToolsError(f"{self.binary} did not open a DevTools port")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])
        return self

    def new_page(self) -> Page:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            target = json.load(resp)
        return Page(target["webSocketDebuggerUrl"], self.timeout)

    def __exit__(self, *exc) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)
