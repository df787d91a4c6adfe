"""Operating the real daemon safely: binding, tokens, Origin, health and metrics,
structured logs, limits, the idle timeout and engine faults. (Slow consumers,
vanishing clients and the soak are in test_soak.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import msgpack
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.typing import Subprotocol

from support.daemon import ROOT, DaemonProcess, Peer, free_port
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Config, Done, Error, Speak

pytestmark = pytest.mark.slow

TOKEN = "op-test-7f3a9c21d0e64b5b"
LONG = ("The museum opens at ten in the morning. Tickets cost twelve dollars for adults, "
        "and children under five get in for free. Please leave large bags at the front desk. ") * 8


# -- helpers ------------------------------------------------------------------

def http_get(url: str, token: str | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def scrape(d: DaemonProcess, token: str | None = None) -> dict[str, float]:
    """Every sample as ``name{label="v",...}`` → value."""
    status, _, body = http_get(d.http + "/metrics", token)
    assert status == 200, body
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


async def ws_status(url: str, **kwargs: Any) -> int:
    """HTTP status of a WebSocket handshake: 101, or the refusal's code."""
    try:
        async with websockets.connect(url, open_timeout=10, **kwargs):
            return 101
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


def bearer(token: str = TOKEN) -> dict[str, Any]:
    return {"additional_headers": {"Authorization": f"Bearer {token}"}}


def speak_until_done(peer: Peer, uid: str, text: str = "Still working.", **kw: Any) -> Any:
    async def run() -> list[Any]:
        await peer.send(Speak(uid, text, final=True, **kw))
        return await peer.until(lambda e: isinstance(e, (Done, Error, Cancelled)) and getattr(e, "utterance", None) == uid)
    return run()


# -- starting up ----------------------------------------------------------------

def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kokorod", "serve", "--port", str(free_port()), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_non_loopback_bind_refuses_without_a_token() -> None:
    # 198.51.100.7 (TEST-NET-2) is on no interface here: getting as far as bind()
    # proves the safety check passed, without ever listening off loopback.
    refused = run_cli("--host", "198.51.100.7", env={"KOKOROD_TOKEN": ""})
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 198.51.100.7 without a token" in lines[0], refused.stderr
    for extra in (["--insecure"], ["--token", TOKEN]):
        result = run_cli("--host", "198.51.100.7", *extra)
        assert result.returncode != 0
        assert "cannot listen on 198.51.100.7" in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert TOKEN not in result.stdout + result.stderr


async def test_health_before_ready_and_token_from_environment() -> None:
    """/healthz answers while the model loads, /readyz and the stream wait for the
    warm-up; a token from $KOKOROD_TOKEN guards the stream and /metrics."""
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"kokorod-test-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kokorod", "serve", "--port", str(port)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "KOKOROD_TOKEN": TOKEN})
    base, url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/stream"
    seen: list[tuple[int, int]] = []
    stream_while_loading: int | None = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and (not seen or seen[-1][1] != 200):
            assert proc.poll() is None, log_path.read_text()
            try:
                state = (http_get(base + "/healthz")[0], http_get(base + "/readyz")[0])
            except OSError:  # not listening yet
                await asyncio.sleep(0.05)
                continue
            if state == (200, 503) and stream_while_loading is None:
                stream_while_loading = await ws_status(url, **bearer())
                if http_get(base + "/readyz")[0] != 503:
                    stream_while_loading = None  # became ready meanwhile: inconclusive
            seen.append(state)
            await asyncio.sleep(0.05)
        assert (200, 503) in seen, seen  # alive, not ready: the model was loading
        assert seen[-1] == (200, 200)
        assert stream_while_loading in (None, 503)
        assert http_get(base + "/metrics")[0] == 401
        assert http_get(base + "/metrics", TOKEN)[0] == 200
        assert await ws_status(url) == 401
        assert await ws_status(url, **bearer()) == 101
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
    text = log_path.read_text()
    assert TOKEN not in text and "Traceback" not in text, text[-2000:]


# -- a daemon with a token, an allowed origin, JSON logs and small limits ------

@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    token_file = tmp_path_factory.mktemp("auth") / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    d = DaemonProcess("--token-file", str(token_file), "--allow-origin", "https://app.example", "--log-json",
                      "--max-connections", "3", "--max-utterances", "2", "--max-active-streams", "1",
                      env={"KOKOROD_TOKEN": ""})
    yield d
    assert d.stop() == 0, d.log()[-3000:]
    log = d.log()
    assert TOKEN not in log, "the token leaked into the log"
    assert "Traceback" not in log, log[-3000:]


async def test_token_is_required_except_for_health(secured: DaemonProcess) -> None:
    d = secured
    assert http_get(d.http + "/healthz")[0] == 200
    assert http_get(d.http + "/readyz")[0] == 200
    status, headers, _ = http_get(d.http + "/metrics")
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
    assert http_get(d.http + "/metrics", "wrong")[0] == 401
    assert http_get(d.http + f"/metrics?token={TOKEN}")[0] == 200
    assert await ws_status(d.url) == 401
    assert await ws_status(d.url, **bearer("wrong")) == 401
    assert await ws_status(d.url, **bearer(TOKEN[:-1])) == 401
    assert await ws_status(d.url + "?token=wrong") == 401
    assert await ws_status(d.url, subprotocols=[Subprotocol("kokorod.token.wrong")]) == 401
    # Each documented way in works, and the session behaves normally.
    for peer in [
        await Peer.connect(d.url, **bearer()),
        await Peer.connect(d.url + f"?token={TOKEN}", encoding="json"),
    ]:
        assert isinstance((await speak_until_done(peer, "hi"))[-1], Done)
        await peer.close()
    async with websockets.connect(d.url, subprotocols=[Subprotocol("kokorod.v1.json"), Subprotocol(f"kokorod.token.{TOKEN}")]) as ws:
        assert ws.subprotocol == "kokorod.v1.json"  # the token entry is never echoed
        assert json.loads(await ws.recv())["type"] == "ready"
    async with websockets.connect(d.url, subprotocols=[Subprotocol(f"kokorod.token.{TOKEN}")]) as ws:
        assert ws.subprotocol is None  # msgpack, the default
        assert msgpack.unpackb(await ws.recv())["type"] == "ready"
    assert scrape(d, TOKEN)['kokorod_connections_refused_total{reason="auth"}'] >= 5


async def test_origin_allowlist(secured: DaemonProcess) -> None:
    d = secured
    own = f"http://127.0.0.1:{d.port}"
    assert await ws_status(d.url, origin=own, **bearer()) == 101  # the daemon's own page
    assert await ws_status(d.url, origin="https://app.example", **bearer()) == 101  # --allow-origin
    assert await ws_status(d.url, origin="https://evil.example", **bearer()) == 403
    assert await ws_status(d.url, origin=f"http://127.0.0.1:{d.port + 1}", **bearer()) == 403
    assert await ws_status(d.url, origin="https://evil.example") == 401  # no token: that comes first


async def test_metrics_move_and_utterances_are_logged_as_json(secured: DaemonProcess) -> None:
    d = secured
    before = scrape(d, TOKEN)
    peer = await Peer.connect(d.url, **bearer())
    events = await speak_until_done(peer, "metered", "The quick brown fox jumps over the lazy dog.")
    assert isinstance(events[-1], Done)
    await peer.send(Speak("stopped", LONG, final=True))
    await peer.until(lambda e: isinstance(e, Audio) and e.utterance == "stopped")
    await peer.send(Cancel(utterance="stopped"))
    await peer.utterance("stopped")
    await peer.close()
    after = scrape(d, TOKEN)

    def moved(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert moved("kokorod_connections_total") == 1
    assert moved("kokorod_utterances_started_total") == 2
    assert moved("kokorod_utterances_completed_total") == 1
    assert moved('kokorod_utterances_cancelled_total{reason="cancel"}') == 1
    assert moved("kokorod_time_to_first_audio_seconds_count") == 2
    assert moved("kokorod_time_to_first_audio_seconds_sum") > 0
    assert moved("kokorod_synthesis_rtf_count") >= 2
    assert moved("kokorod_audio_seconds_total") > 2.0
    for name in ("kokorod_utterances_failed_total", "kokorod_engine_errors_total", "kokorod_underruns_total",
                 "kokorod_active_streams", "kokorod_engine_queue_depth", "kokorod_open_connections"):
        assert name in after, name
    assert after["kokorod_ready"] == 1 and after["kokorod_engine_threads"] == after["kokorod_engine_workers"] >= 1
    assert after["kokorod_tasks"] > 0 and after["kokorod_threads"] >= 2
    assert after["process_resident_memory_bytes"] > 50e6

    await asyncio.sleep(0.3)  # the log line is written as the utterance retires
    records = [json.loads(line) for line in d.log().splitlines() if line.strip()]  # every line is JSON
    spoken = [r for r in records if r["msg"] == "utterance" and r.get("utterance") == "metered"]
    assert len(spoken) == 1, records[-5:]
    r = spoken[0]
    assert r["outcome"] == "done" and r["level"] == "info" and r["logger"] == "kokorod.daemon.session"
    assert isinstance(r["ttfa_ms"], int) and r["ttfa_ms"] > 0
    assert isinstance(r["rtf"], float) and r["audio_s"] > 1.0 and r["chunks"] >= 1 and r["session"]
    cancelled = [r for r in records if r["msg"] == "utterance" and r.get("utterance") == "stopped"]
    assert cancelled and cancelled[0]["outcome"] == "cancel"
    assert any(r["msg"] == "listening" and r["url"].endswith("/v1/stream") for r in records)


async def test_ready_and_metrics_carry_the_measured_capacity(secured: DaemonProcess) -> None:
    """The RTF the daemon measured and the capacity it implies: in ``ready`` (both
    encodings), as /metrics gauges, and in the start-up log line."""
    d = secured
    peer = await Peer.connect(d.url, **bearer())
    assert peer.ready is not None and peer.ready.capacity is not None
    cap = peer.ready.capacity
    metrics = scrape(d, TOKEN)
    assert cap.rtf is not None and cap.rtf > 0
    assert cap.max_streams == 1  # measured admission, capped by --max-active-streams 1
    assert cap.active == 0 and cap.workers >= 1 and cap.utilisation == 0.8
    assert metrics["kokorod_rtf_estimate"] == pytest.approx(cap.rtf, abs=0.0015)  # no job ran in between
    assert metrics["kokorod_capacity_streams"] == 1
    assert metrics["kokorod_engine_workers"] == cap.workers == metrics["kokorod_engine_threads"]
    assert metrics["kokorod_capacity_bound_workers"] == pytest.approx(cap.workers * 0.8)
    assert metrics["kokorod_stream_demand_workers"] == 0
    async with websockets.connect(d.url + f"?token={TOKEN}", subprotocols=[Subprotocol("kokorod.v1.json")]) as ws:
        wire = json.loads(await ws.recv())["capacity"]
    assert set(wire) == {"rtf", "max_streams", "active", "workers", "utilisation", "queued", "max_queued",
                         "queue_timeout_s", "admission_rtf", "margin", "background", "engine"} and wire["max_streams"] == 1
    assert wire["engine"] == cap.engine == "onnx"  # test daemons run int8 (--engine onnx)
    # What max_streams comes from: the conservative RTF and the learnt margin (within its bounds: earlier
    # tests on this daemon may have run late on a loaded machine and raised it), no background work.
    assert cap.admission_rtf is not None and cap.admission_rtf >= cap.rtf
    assert cap.margin is not None and 1.15 <= cap.margin <= 3.0
    assert metrics["kokorod_admission_margin"] == pytest.approx(cap.margin, abs=0.0015)
    assert metrics["kokorod_admission_rtf"] == pytest.approx(cap.admission_rtf, abs=0.0015)
    assert wire["background"] == 0 and metrics["kokorod_background_requests"] == 0
    # The request queue's bounds (defaults) and what waits in it now.
    assert (wire["queued"], wire["max_queued"], wire["queue_timeout_s"]) == (0, 32, 120.0)
    assert (cap.queued, cap.max_queued, cap.queue_timeout_s) == (0, 32, 120.0)
    assert metrics["kokorod_request_queue_depth"] == 0
    # While a stream speaks, a new connection sees it counted, and its demand.
    await peer.send(Speak("busy", LONG, final=True))
    await peer.until(lambda e: isinstance(e, Audio))
    other = await Peer.connect(d.url, **bearer())
    assert other.ready is not None and other.ready.capacity is not None and other.ready.capacity.active == 1
    assert scrape(d, TOKEN)["kokorod_stream_demand_workers"] > 0
    await peer.send(Cancel(all=True))
    await peer.utterance("busy")
    await other.close()
    await peer.close()
    records = [json.loads(line) for line in d.log().splitlines() if line.strip()]
    started = [r for r in records if r["msg"] == "ready"]
    assert len(started) == 1, records[:10]
    r = started[0]
    assert r["rtf"] > 0 and r["max_streams"] == 1 and r["max_active_streams"] == 1
    assert r["engine_workers"] == cap.workers and r["utilisation"] == 0.8 and 0 <= r["speed_slope"] <= 1
    assert r["warmup_s"] > 0


async def test_connection_limit_is_http_503(secured: DaemonProcess) -> None:
    d = secured
    peers = [await Peer.connect(d.url, **bearer()) for _ in range(3)]
    try:
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(d.url, open_timeout=10, **bearer())
        assert info.value.response.status_code == 503
        assert info.value.response.headers.get("Retry-After") == "1"
        assert http_get(d.http + "/healthz")[0] == 200  # plain HTTP is not a connection slot
        # The connections already open are unaffected.
        assert isinstance((await speak_until_done(peers[0], "still"))[-1], Done)
    finally:
        await peers.pop().close()
    # A slot freed is a slot reusable.
    peers.append(await Peer.connect(d.url, **bearer()))
    for peer in peers:
        await peer.close()
    assert scrape(d, TOKEN)['kokorod_connections_refused_total{reason="capacity"}'] >= 1


async def test_utterance_limits_per_connection_and_daemon_wide(secured: DaemonProcess) -> None:
    """--max-utterances 2 per connection; --max-active-streams 1 for the daemon,
    and a connection's queued utterances share its one stream slot."""
    d = secured
    a = await Peer.connect(d.url, **bearer())
    b = await Peer.connect(d.url, **bearer())
    await a.send(Config(on_new_utterance="queue"))
    # No terminator and not final: each utterance holds a slot without synthesizing.
    await a.send(Speak("a1", "Waiting for more text"))
    await a.send(Speak("a2", "Waiting as well"))
    await a.send(Speak("a3", "One too many"))
    error = await a.expect_error("too_many_utterances")
    assert error.utterance == "a3"
    await b.send(Speak("b1", "Hello.", final=True))
    error = await b.expect_error("overloaded")
    assert error.utterance == "b1"
    await a.send(Cancel(all=True))
    await a.utterance("a1")
    await a.utterance("a2")
    assert isinstance((await speak_until_done(b, "b2"))[-1], Done)
    metrics = scrape(d, TOKEN)
    assert metrics['kokorod_utterances_refused_total{reason="too_many"}'] >= 1
    assert metrics['kokorod_utterances_refused_total{reason="overloaded"}'] >= 1
    assert metrics["kokorod_active_streams"] == 0
    await a.close()
    await b.close()


# -- a daemon with a corrupt voice, a tiny idle timeout and send buffer --------

IDLE_S = 1.5


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    from kokorod.assets.paths import resolve_cache_dir

    real = resolve_cache_dir(None)
    cache = tmp_path_factory.mktemp("cache")
    (cache / "voices").mkdir()
    for f in real.glob("*.onnx"):
        (cache / f.name).symlink_to(f)
    for f in (real / "voices").glob("*.bin"):
        (cache / "voices" / f.name).symlink_to(f)
    (cache / "voices" / "af_bella.bin").unlink()
    (cache / "voices" / "af_bella.bin").write_bytes(b"\0" * 1000)  # listed, but not a voice
    d = DaemonProcess("--cache-dir", str(cache), "--idle-timeout-s", str(IDLE_S), "--max-send-buffer-s", "1",
                      "--max-active-streams", "8")
    yield d
    assert d.stop() == 0, d.log()[-3000:]
    shutil.rmtree(cache, ignore_errors=True)


async def test_engine_failure_ends_only_that_utterance(fragile: DaemonProcess) -> None:
    d = fragile
    before = scrape(d)
    peer = await Peer.connect(d.url)
    events = await speak_until_done(peer, "broken", "This voice file is corrupt.", voice="af_bella")
    assert isinstance(events[-1], Error) and events[-1].code == "engine_error", events[-1]
    assert not any(isinstance(e, Audio) for e in events)
    assert isinstance((await speak_until_done(peer, "after"))[-1], Done)  # same connection goes on
    # Connected only now: this daemon closes idle connections after IDLE_S, and on
    # a loaded machine the two utterances above can take longer than that.
    bystander = await Peer.connect(d.url)
    assert isinstance((await speak_until_done(bystander, "other"))[-1], Done)
    after = scrape(d)
    assert after["kokorod_engine_errors_total"] - before["kokorod_engine_errors_total"] == 1
    assert after["kokorod_utterances_failed_total"] - before["kokorod_utterances_failed_total"] == 1
    await peer.close()
    await bystander.close()


async def test_idle_connection_is_closed(fragile: DaemonProcess) -> None:
    d = fragile
    peer = await Peer.connect(d.url)
    opened = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed) as info:
        await peer.recv(timeout=IDLE_S + 15)
    assert time.monotonic() - opened >= IDLE_S - 0.1
    assert info.value.rcvd is not None and info.value.rcvd.code in (1000, 1001)
    assert "idle" in info.value.rcvd.reason


async def test_an_utterance_left_waiting_for_text_does_not_hold_its_slot(fragile: DaemonProcess) -> None:
    d = fragile
    peer = await Peer.connect(d.url)
    await peer.send(Speak("open", "An LLM that never finishes its"))  # no terminator, not final
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await peer.recv(timeout=IDLE_S + 15)
    assert info.value.rcvd is not None and "idle" in info.value.rcvd.reason
    deadline = time.monotonic() + 10
    while scrape(d)["kokorod_active_streams"] != 0:
        assert time.monotonic() < deadline, "the stream slot was not released"
        await asyncio.sleep(0.1)


async def test_talking_and_listening_are_not_idle(fragile: DaemonProcess) -> None:
    d = fragile
    peer = await Peer.connect(d.url)
    for _ in range(4):  # messages keep it open past the timeout
        await asyncio.sleep(IDLE_S / 2)
        await peer.send(Config())
        await peer.recv()
    # An utterance whose audio outlasts the timeout keeps it open while it plays.
    await peer.send(Speak("long", "Counting slowly now: one, two, three, four, five, six, seven, eight, nine, ten.", final=True))
    first_audio: float | None = None
    while True:
        event = await peer.recv()
        if isinstance(event, Audio) and first_audio is None:
            first_audio = time.monotonic()
        if isinstance(event, (Done, Error)):
            break
    assert isinstance(event, Done) and event.duration > IDLE_S and first_audio is not None
    with pytest.raises(websockets.ConnectionClosed) as info:
        await peer.recv(timeout=event.duration + IDLE_S + 15)
    assert info.value.rcvd is not None and "idle" in info.value.rcvd.reason
    # Not before playback (1x from the first frame) ended, plus the timeout.
    assert time.monotonic() - first_audio >= event.duration + IDLE_S - 0.5
    assert scrape(d)["kokorod_idle_disconnects_total"] >= 2
