"""A real daemon for the browser tests (a token, so the page's ?token= path is
exercised too) and headless Chromium on its page with every frame received
logged. Needs Debian's chromium (/usr/bin/chromium; `make browser-deps`) and the
Python `playwright` package; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking", "--disable-component-update", "--disable-gpu",
    "--no-first-run", "--disable-sync",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    """Locally a missing browser is a skip; in CI the test must not silently vanish."""
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def _find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = shutil.which(candidate) if not candidate.startswith("/") else candidate
        if path and os.access(path, os.X_OK):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def daemon() -> Iterator[dict[str, str]]:
    """A real `kokorod serve` on a free loopback port, with a token (so the page's
    ?token= path is exercised too)."""
    port = _free_port()
    token = secrets.token_urlsafe(16)
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "browser-daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOKOROD_TOKEN")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kokorod", "serve", "--host", "127.0.0.1", "--port", str(port), "--token", token],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kokorod exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"kokorod not ready after 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield {"base": base, "token": token}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class WireLog:
    """Every frame the page receives, in order: ("event", dict) or ("audio", header).

    Sync Playwright delivers these only while a Playwright call is running, so
    waits in the test use ``page.wait_for_timeout``, never ``time.sleep``.
    """

    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []

    def on_frame(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.frames.append(("event", json.loads(payload)))
        else:
            (length,) = struct.unpack_from("<I", payload, 0)
            self.frames.append(("audio", json.loads(payload[4:4 + length])))

    def events(self, type_: str, utterance: str | None = None) -> list[dict[str, Any]]:
        return [f for kind, f in self.frames if kind == "event" and f.get("type") == type_
                and (utterance is None or f.get("utterance") == utterance)]


def open_page(daemon: dict[str, str], wire: Any, init_script: str | None = None) -> Iterator[tuple[Any, Any, list[str]]]:
    """Headless Chromium on the daemon's page, frames received logged into
    ``wire``, page errors collected; skipped (or failed on CI) without a browser."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install playwright)")
    chromium = _find_chromium()
    if chromium is None:
        _unavailable("chromium not found (apt-get install chromium, or `make browser-deps`)")
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 960, "height": 760})
            if init_script:
                pg.add_init_script(init_script)
            pg.on("websocket", lambda ws: ws.on("framereceived", wire.on_frame))
            pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            pg.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                  if msg.type == "error" else None)
            pg.goto(f"{daemon['base']}/?token={daemon['token']}")
            yield pg, wire, problems
        finally:
            browser.close()


@pytest.fixture
def page(daemon: dict[str, str]) -> Iterator[tuple[Any, WireLog, list[str]]]:
    yield from open_page(daemon, WireLog())


def is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


def page_state(pg: Any) -> dict[str, Any]:
    return pg.evaluate("""() => ({...window.kokorodTest, ctxTime: window.kokorodTest.ctxTime()})""")
