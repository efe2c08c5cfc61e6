"""A headless Chromium driven over the DevTools protocol on a pipe: what the report's browser tests use.

Why this and not Selenium: Chromium speaks the DevTools protocol itself on two
file descriptors (``--remote-debugging-pipe``: commands in on fd 3, replies
out on fd 4, each a JSON object ended by a NUL byte), so the standard library
drives it with no chromedriver, no WebSocket library and no port to open, and
the protocol gives what WebDriver does not (print media emulation, network
events, full-page screenshots). Protocol reference:
https://chromedevtools.github.io/devtools-protocol/ (Target, Page, Runtime,
Emulation, Network domains).

The flags are the ones known to keep Debian's ``chromium`` quiet on a closed
network (no background networking, component updates or sync).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-breakpad", "--disable-crash-reporter", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-pipe")
A4_WIDTH_MM = 210.0
PX_PER_MM = 96 / 25.4  # CSS pixels: 96 per inch


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One browser with one page; use as a context manager."""

    def __init__(self, timeout_s: float = 20.0) -> None:
        if CHROMIUM is None:
            raise BrowserError("chromium is not installed (Debian package `chromium`)")
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="wattfleet-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        cmd_r, out_w = _above_4(cmd_r), _above_4(out_w)  # else moving one onto 3 or 4 would close the other
        # bash puts the pipe ends on the descriptors Chromium expects (3: commands in, 4: replies out) and
        # closes the originals: no preexec_fn, which is unsafe in a process with threads.
        redirect = f'exec "$0" "$@" 3<&{cmd_r} 4>&{out_w} {cmd_r}<&- {out_w}>&-'
        self.proc = subprocess.Popen(["bash", "-c", redirect, CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(cmd_r, out_w))
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._next_id = 0
        self.session = ""
        self.events: list[dict[str, Any]] = []
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- protocol ---------------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self._out_r, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium closed the pipe (exit {self.proc.poll()})")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; events that arrive meanwhile are kept in :attr:`events`."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self.call(method, session=True, **params)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            for i, ev in enumerate(self.events):
                if ev["method"] == method:
                    return self.events.pop(i)
            message = self._read_message(deadline)
            if "method" in message:
                self.events.append(message)

    # --- what the tests do --------------------------------------------------------------------------------
    def open(self, path: Path, width: int, height: int = 900, print_media: bool = False) -> None:
        """Load a file at a viewport ``width`` (CSS px), as screen or as print."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.send("Emulation.setEmulatedMedia", media="print" if print_media else "")
        self.events.clear()
        self.send("Page.navigate", url=path.resolve().as_uri())
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since it was opened."""
        return [ev["params"]["request"]["url"] for ev in self.events if ev["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, width: int) -> None:
        """The whole page (not only the viewport) as a PNG ``width`` CSS px wide."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))

    def print_pdf(self, path: Path) -> None:
        """The page printed to PDF with its own @page size and margins (what a reader's "Print" makes)."""
        pdf = self.send("Page.printToPDF", preferCSSPageSize=True, printBackground=True)
        path.write_bytes(base64.b64decode(pdf["data"]))


def _above_4(fd: int) -> int:
    """The same pipe end on a descriptor numbered 10 or more (closing ``fd`` if it was moved)."""
    if fd > 4:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def a4_content_width_px(margin_mm: float) -> int:
    """The width an A4 portrait page leaves between side margins of ``margin_mm``, in CSS px."""
    return int((A4_WIDTH_MM - 2 * margin_mm) * PX_PER_MM)
