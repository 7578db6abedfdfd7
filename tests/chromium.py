"""Drive headless Chromium over the DevTools protocol through a pipe (stdlib only, no network).

`--remote-debugging-pipe` makes Chromium read protocol commands from fd 3 and write replies and
events to fd 4, each message a JSON object ended by a NUL byte: no port, no websocket library.
`load_page` opens a local file and reports every request, every failed one, console errors and
facts evaluated in the page, plus a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
]


@dataclass
class PageLoad:
    """What happened while a page loaded."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """'URL: reason' for each request that failed or was blocked."""
    errors: list[str] = field(default_factory=list)
    """Console / log errors and uncaught exceptions."""
    facts: Any = None
    """The value of the JavaScript expression evaluated after the load event."""
    screenshot: bytes = b""


class _Pipe:
    """The protocol connection: numbered commands, replies matched by id, events collected."""

    def __init__(self, to_browser: int, from_browser: int, timeout: float) -> None:
        self.to_browser, self.from_browser = to_browser, from_browser
        self.deadline = time.monotonic() + timeout
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return dict(json.loads(message))


def load_page(path: Path, expression: str, width: int = 1280, timeout: float = 60) -> PageLoad:
    """Open `path` in a fresh headless Chromium; evaluate `expression` once it has loaded."""
    commands_read, commands_write = os.pipe()
    replies_read, replies_write = os.pipe()
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, replies_write)]

    def as_fds_3_and_4() -> None:  # runs in the child, before exec
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    # Chromium's helper processes may still write to the profile as it is removed
    with tempfile.TemporaryDirectory(
        prefix="megalith-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=as_fds_3_and_4,
            start_new_session=True,  # its own process group, so all of Chromium stops below
        )
        for fd in (commands_read, replies_write, *high):
            os.close(fd)
        try:
            return _drive(_Pipe(commands_write, replies_read, timeout), path, expression, width)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            os.close(commands_write)
            os.close(replies_read)


def _drive(pipe: _Pipe, path: Path, expression: str, width: int) -> PageLoad:
    target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
    session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Network", "Page", "Runtime", "Log"):
        pipe.call(f"{domain}.enable", session)
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    pipe.events.clear()  # only what the page itself does counts
    pipe.call("Page.navigate", session, url=path.resolve().as_uri())
    pipe.wait_for("Page.loadEventFired")
    facts = pipe.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
    size = pipe.call("Page.getLayoutMetrics", session)["cssContentSize"]
    shot = pipe.call(
        "Page.captureScreenshot",
        session,
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
    )
    result = PageLoad(facts=facts["result"].get("value"), screenshot=base64.b64decode(shot["data"]))
    _collect(pipe.events, result)
    return result


def _collect(events: list[dict[str, Any]], result: PageLoad) -> None:
    urls: dict[str, str] = {}
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
            result.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            reason = params.get("blockedReason") or params.get("errorText")
            result.failed.append(f"{urls.get(params['requestId'], '?')}: {reason}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            result.errors.append(params["entry"]["text"])
        elif method == "Runtime.exceptionThrown":
            result.errors.append(str(params["exceptionDetails"].get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            result.errors.append(str(params.get("args")))
