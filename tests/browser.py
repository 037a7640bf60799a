"""A real headless Chromium driven over the DevTools protocol (websocket-client), for the explorer's tests.

Nothing is downloaded: the browser is the system's ``chromium`` (Debian: ``apt-get install chromium``; or set
``DILATED_CHROMIUM``). :func:`find_chromium` returns ``None`` where there is none, and the tests skip.

Also the README screenshot, from the repository root::

    python tests/browser.py docs/images/explorer.png
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

SCREEN = (1400, 860)  # the screenshot's fixed size in CSS pixels


def find_chromium() -> str | None:
    """The Chromium binary: ``$DILATED_CHROMIUM``, else ``chromium``/``chromium-browser``/``google-chrome``."""
    named = os.environ.get("DILATED_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return next(
        (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
    )


class Chromium:
    """One headless browser with one page; ``events`` holds every protocol event received so far."""

    def __init__(self, binary: str, size: tuple[int, int] = SCREEN) -> None:
        import websocket  # the dev extra's websocket-client; imported here so that this module loads without it

        self.profile = tempfile.mkdtemp(prefix="dilated-chromium-")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                f"--window-size={size[0]},{size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{binary} did not start its DevTools server")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:  # local only
            targets = json.load(response)
        page = next(t for t in targets if t["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.events: list[dict[str, Any]] = []
        self._id = 0
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable")
        self.size = size
        self.send(
            "Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False
        )

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result; events that arrive meanwhile go to ``events``."""
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not load")
            self.evaluate("1")  # pumps the event queue

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited); its exception as ``RuntimeError``."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the centre of the first element matching ``selector``."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
            "return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def centre(self, selector: str) -> tuple[float, float]:
        """The viewport position of the centre of the first element matching ``selector``."""
        x, y = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); "
            "return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        return x, y

    def wheel(self, selector: str, delta_y: float, times: int = 1) -> None:
        """Turn the mouse wheel over the centre of ``selector`` (negative ``delta_y``: away from the user)."""
        x, y = self.centre(selector)
        for _ in range(times):
            self.send("Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0, deltaY=delta_y)

    def drag(self, selector: str, dx: float) -> None:
        """Press the left button at the centre of ``selector``, move ``dx`` pixels right and release."""
        x, y = self.centre(selector)
        self.send("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x + dx, y=y, button="left", buttons=1)
        self.send("Input.dispatchMouseEvent", type="mouseReleased", x=x + dx, y=y, button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        """Click into a text field, select what it holds (Ctrl+A) and type ``text`` over it."""
        self.click(selector)
        self.send(
            "Input.dispatchKeyEvent",
            type="rawKeyDown",
            key="a",
            code="KeyA",
            modifiers=2,
            windowsVirtualKeyCode=65,
            commands=["selectAll"],
        )
        self.send("Input.dispatchKeyEvent", type="keyUp", key="a", code="KeyA", modifiers=2, windowsVirtualKeyCode=65)
        self.send("Input.insertText", text=text)

    def text(self, selector: str) -> str:
        return self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")

    def value(self, selector: str) -> str:
        return self.evaluate(f"document.querySelector({json.dumps(selector)}).value")

    def screenshot(self, path: str | Path) -> Path:
        """A PNG of the viewport at :data:`SCREEN` size."""
        self.evaluate("window.scrollTo(0, 0)")
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    @property
    def requests(self) -> list[str]:
        """URLs the page asked the network for since the last :meth:`open`."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    @property
    def errors(self) -> list[str]:
        """Uncaught exceptions and console errors since the last :meth:`open`."""
        found = [
            e["params"]["exceptionDetails"].get("text", "")
            for e in self.events
            if e.get("method") == "Runtime.exceptionThrown"
        ]
        return found + [
            " ".join(str(a.get("value")) for a in e["params"]["args"])
            for e in self.events
            if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"
        ]

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def explorer_screenshot(browser: Chromium, page: Path, png: Path) -> Path:
    """The explorer on ``page`` with the design panel filled in for the stack's own field, as a PNG."""
    browser.open(page.resolve().as_uri())
    browser.click("#propose")
    return browser.screenshot(png)


if __name__ == "__main__":
    from dilated.explore import write_explorer

    binary = find_chromium()
    if binary is None:
        sys.exit("no chromium found: apt-get install chromium (or set DILATED_CHROMIUM)")
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/explorer.png")
    with tempfile.TemporaryDirectory() as folder:
        browser = Chromium(binary)
        try:
            print(f"wrote {explorer_screenshot(browser, write_explorer(Path(folder) / 'explorer.html'), out)}")
        finally:
            browser.close()
