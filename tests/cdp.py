"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (no extra dependencies).

Opens a page in headless Chromium (Debian's package), records console errors, uncaught exceptions,
log errors and every network request, and takes a screenshot.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--no-default-browser-check",
         "--window-size=1280,1600", "--remote-debugging-pipe"]


@dataclass
class PageLoad:
    console_errors: list = field(default_factory=list)
    exceptions: list = field(default_factory=list)
    log_errors: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    screenshot: bytes = b""
    loaded: bool = False
    results: list = field(default_factory=list)  # values of the ``evaluate`` expressions
    shots: list = field(default_factory=list)  # a screenshot after each expression


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    def __init__(self, exe: str, profile: str):
        to_chrome_r, self.to_chrome_w = os.pipe()
        self.from_chrome_r, from_chrome_w = os.pipe()
        hi_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        hi_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire():  # in the child: Chromium reads commands on fd 3, writes replies on fd 4
            os.dup2(hi_in, 3)
            os.dup2(hi_out, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=wire, pass_fds=(3, 4))
        os.close(hi_in)
        os.close(hi_out)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for m in self._read(deadline):
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)

    def _read(self, deadline: float) -> list[dict]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("chromium did not answer in time")
        ready, _, _ = select.select([self.from_chrome_r], [], [], left)
        if not ready:
            return []
        chunk = os.read(self.from_chrome_r, 1 << 20)
        if not chunk:
            raise RuntimeError("chromium closed the DevTools pipe")
        self.buf += chunk
        *msgs, self.buf = self.buf.split(b"\0")
        return [json.loads(m) for m in msgs if m]

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.extend(self._read(deadline))
            except TimeoutError:
                break

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self.to_chrome_w, self.from_chrome_r):
            try:
                os.close(fd)
            except OSError:
                pass


def load_page(url: str, exe: str | None = None, timeout: float = 60, settle: float = 0.5,
              evaluate: list[str] = ()) -> PageLoad:
    """Open ``url`` in a fresh headless Chromium; record errors and requests; screenshot it. Then run
    each JavaScript expression of ``evaluate`` (its value in ``results``, a screenshot after it in
    ``shots``)."""
    exe = exe or chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium is not installed")
    out = PageLoad()
    with tempfile.TemporaryDirectory(prefix="cdp-profile-") as profile:
        pipe = _Pipe(exe, profile)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": url}, session=session, timeout=timeout)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not out.loaded:
                pipe.pump(0.2)
                out.loaded = any(e.get("method") == "Page.loadEventFired" for e in pipe.events)
            pipe.pump(settle)
            shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout)
            out.screenshot = base64.b64decode(shot["data"])
            for expr in evaluate:
                r = pipe.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                              session=session, timeout=timeout)
                out.results.append(r.get("result", {}).get("value"))
                pipe.pump(0.3)
                shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout)
                out.shots.append(base64.b64decode(shot["data"]))
            pipe.pump(0.2)
        finally:
            pipe.close()
    for e in pipe.events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                               for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            out.exceptions.append(params.get("exceptionDetails", {}).get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            out.log_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            out.requests.append(params.get("request", {}).get("url", ""))
    return out
