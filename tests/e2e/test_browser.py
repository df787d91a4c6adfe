"""The browser client (kokorod/web/) in real headless Chromium against a real daemon.

Audio really goes through the page's AudioWorklet: the test checks the audio
clock runs, non-silent samples reach the worklet's output, words light up in
spoken order *as they are heard*, and Stop silences everything at once.

Needs Debian's chromium (/usr/bin/chromium; `make browser-deps`) and the Python
`playwright` package. Playwright's own browser downloads are never used.
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

pytestmark = [pytest.mark.browser, pytest.mark.slow]

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


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


def _test_state(pg: Any) -> dict[str, Any]:
    return pg.evaluate("""() => ({...window.kokorodTest, ctxTime: window.kokorodTest.ctxTime()})""")


def test_page_speaks_highlights_in_time_and_stops(page: tuple[Any, WireLog, list[str]]) -> None:
    pg, wire, problems = page
    pg.wait_for_function("window.kokorodTest && window.kokorodTest.state === 'idle'", timeout=30_000)
    ready = wire.events("ready")[0]
    assert pg.locator("#voice").input_value() == ready["voice"]
    assert pg.locator("#voice option").count() >= len(ready["voices"])
    # The picker groups voices by language, with the names the daemon gives.
    groups = pg.evaluate("""() => [...document.querySelectorAll('#voice optgroup')].map(
        g => [g.label, [...g.querySelectorAll('option')].map(o => o.value)])""")
    by_label = dict((label, values) for label, values in groups)
    for code, info in ready["languages"].items():
        assert sorted(by_label[info["name"]]) == sorted(info["voices"]), code
    assert "ef_dora" in by_label["Spanish"] and "zf_xiaobei" in by_label["Mandarin Chinese"]

    # --- Speak one sentence and follow it on the audio clock ------------------
    pg.fill("#text", SENTENCE)
    pg.click("#speak")
    pg.wait_for_function("window.kokorodTest.state === 'speaking'", timeout=5_000)
    start = _test_state(pg)
    utterance = start["utterance"]
    deadline = time.monotonic() + 60
    while (state := _test_state(pg))["state"] == "speaking":
        assert time.monotonic() < deadline, f"still speaking after 60 s: {state}"
        pg.wait_for_timeout(40)
    end = _test_state(pg)
    assert end["state"] == "idle"

    done = wire.events("done", utterance)
    assert done, f"no done event for {utterance}: {wire.events('error')}"
    duration = done[0]["duration"]
    words = [w["text"] for w in wire.events("word", utterance)]
    highlighted = end["wordsHighlighted"]
    print(f"duration {duration:.2f}s, first audio {end['firstAudioMs']} ms, peak {end['outputPeak']:.3f}, "
          f"underruns {end['underruns']}\nwords       {words}\nhighlighted {highlighted}")

    # The AudioContext clock ran for (at least about) the whole utterance.
    assert end["ctxTime"] - start["ctxTime"] >= 0.9 * duration
    # Real samples reached the worklet's output, not silence.
    assert end["outputPeak"] > 0.01
    assert end["playedSamples"] == done[0]["samples"]
    # The transcript's words are the sentence's words, highlighted in spoken order.
    assert len(words) >= 0.8 * len(SENTENCE.split())
    assert _is_subsequence(highlighted, words), (highlighted, words)
    assert len(highlighted) >= 0.8 * len(words)
    # Driven by the audio clock, not by message arrival: every word event is
    # received long before playback ends, yet the highlight takes about as long
    # as the speech to go from the first word to the last.
    # Timed by the page on its audio clock when it highlights: polling from here
    # under load samples too coarsely (a 2.03 s span seen for 3.44 s of speech).
    times = end["highlightTimes"]
    first, last = times[0], times[-1]
    spoken_span = wire.events("word", utterance)[-1]["start"] - wire.events("word", utterance)[0]["start"]
    # Highlighting on message arrival would take milliseconds for the whole sentence.
    assert last - first >= 0.5 * spoken_span, (last - first, spoken_span, times)

    # --- LLM-style stream, then Stop mid-speech -------------------------------
    pg.click("#demo")
    pg.wait_for_function(
        f"""window.kokorodTest.utterance !== {json.dumps(utterance)}
            && window.kokorodTest.playedSamples > 1.5 * 24000
            && window.kokorodTest.wordsHighlighted.length > 0""",
        timeout=30_000,
    )
    demo = _test_state(pg)["utterance"]
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
    pg.click("#stop")
    assert _test_state(pg)["state"] == "idle"

    deadline = time.monotonic() + 5
    while not wire.events("cancelled", demo):
        assert time.monotonic() < deadline, "the daemon did not send cancelled after Stop"
        pg.wait_for_timeout(50)
    assert wire.events("cancelled", demo)[0]["reason"] == "cancel"
    pg.wait_for_timeout(200)  # let the worklet's last progress report arrive
    before = _test_state(pg)
    pg.wait_for_timeout(1000)
    after = _test_state(pg)
    assert after["playedSamples"] == before["playedSamples"], "audio kept playing after Stop"
    assert after["buffered"] == 0
    assert after["state"] == "idle"
    assert after["ctxTime"] > before["ctxTime"]  # the clock runs; only the audio stopped

    # Nothing of the demo utterance after its `cancelled`, and it was one utterance.
    kinds = [(kind, f.get("type"), f.get("utterance")) for kind, f in wire.frames]
    cut = next(i for i, (kind, t, u) in enumerate(kinds) if t == "cancelled" and u == demo)
    assert not [k for k in kinds[cut + 1:] if k[2] == demo]
    assert not wire.events("error"), wire.events("error")
    assert not problems, problems
