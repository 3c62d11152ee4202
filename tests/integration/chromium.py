"""Headless Chromium driven over the DevTools protocol: open a page, collect console errors
and uncaught exceptions, evaluate JavaScript, save a screenshot.

    with Chromium() as browser:
        page = browser.open(Path("runs/x/latest/report.html"), wait_for="window.ready === true")
        page.errors          # console errors, exceptions, failed loads
        page.evaluate("document.title")
        page.screenshot(Path("shot.png"))

Also a command: ``python tests/integration/chromium.py REPORT.html SHOT.png`` (how
``docs/report.png`` is made).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One tab: the DevTools session to it and everything it reported."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        self.events.append(message)
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")

    def pump(self, seconds: float) -> None:
        """Read events for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._event(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression!r}")
            self.pump(0.1)

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM Chromium's process group (its own session), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait()


class Chromium:
    """A headless Chromium process with its own profile directory; stopped on exit."""

    def __init__(self, width: int = 1400, height: int = 2000) -> None:
        binary = chromium_binary()
        if binary is None:
            raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
        self.binary, self.width, self.height = binary, width, height
        self.proc: subprocess.Popen[str] | None = None
        self.profile = ""
        self.port = 0
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> Chromium:
        self.profile = tempfile.mkdtemp(prefix="harness-chromium-")
        self.proc = subprocess.Popen(
            [
                self.binary,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                self.port = int(found.group(1))
                return self
        self.__exit__()
        raise RuntimeError("chromium did not open its DevTools port within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
        if self.proc is not None:
            _stop_group(self.proc)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _page_ws(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as r:
            targets = json.loads(r.read())
        pages = [t for t in targets if t.get("type") == "page"]
        return pages[0]["webSocketDebuggerUrl"]

    def open(self, path: Path, wait_for: str | None = None, timeout: float = 30.0) -> Page:
        """Navigate the tab to `path`, with console and exception reporting on."""
        ws = self.stack.enter_context(
            connect(self._page_ws(), max_size=64 * 2**20, open_timeout=10)
        )
        page = Page(ws)
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            page.call(domain)
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        page.call("Page.navigate", url=path.resolve().as_uri())
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in page.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not finish loading in {timeout} s")
            page.pump(0.2)
        if wait_for:
            page.wait_for(wait_for, timeout=max(1.0, deadline - time.monotonic()))
        page.pump(0.5)  # late errors (rendering after load)
        return page


if __name__ == "__main__":
    report, shot = Path(sys.argv[1]), Path(sys.argv[2])
    with Chromium() as browser:
        page = browser.open(report, wait_for="window.reportReady === true")
        page.screenshot(shot, full_page="--full" in sys.argv)
        print("\n".join(page.errors) or "no console errors", file=sys.stderr)
