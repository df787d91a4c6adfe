"""A hostile HTTP client against a REAL daemon (issue 18, attack 2 and the
HTTP items among the degraded ones): slowloris heads and bodies, connections
past the limits, heads too big in one write, and the documented 503 of
/readyz while draining. Loopback only; the attackers use other loopback
source addresses (127.0.0.2...) so that the per-address limit applies to them
and not to the normal client (127.0.0.1). Each attack is bounded in time and
count (at most 60 connections, 12 s).

Before (same machine, same commands, the old daemon): a head sent one byte a
second was still open after the 12 s attack (the time-out was reset by every
byte), HTTP connections were not counted (the 61st got its answer), a 120 KB
head in one write was accepted, 60,000 emoji were a 413, and /readyz after
SIGTERM was a refused connection.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from typing import Iterator

import httpx
import pytest

from support.daemon import DaemonProcess, Peer, free_port
from kokorod.protocol.messages import Audio, Speak

pytestmark = pytest.mark.slow

TOKEN = "attack-test-token"
MAX_CONNECTIONS, PER_IP = 60, 12
DEADLINE_S = 4.0          # --http-head-timeout-s / --http-body-timeout-s for these tests
ATTACK_S = 12.0           # an attack's sockets trickle for this long at most
RSS_GROWTH_MAX_MB = 120
ATTACKERS = [f"127.0.0.{i}" for i in range(2, 7)]  # 5 addresses x PER_IP = MAX_CONNECTIONS


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    d = DaemonProcess("--token", TOKEN, "--max-connections", str(MAX_CONNECTIONS),
                      "--max-connections-per-ip", str(PER_IP), "--http-head-timeout-s", str(DEADLINE_S),
                      "--http-body-timeout-s", str(DEADLINE_S), "--stream-utilisation", "inf",
                      "--max-active-streams", "8", "--wyoming-uri", f"tcp://127.0.0.1:{free_port()}")
    yield d
    d.stop()
    assert "Traceback" not in d.log(), d.log()[-3000:]


def wyoming_port(d: DaemonProcess) -> int:
    for arg in d.proc.args:  # type: ignore[union-attr]
        if str(arg).startswith("tcp://127.0.0.1:"):
            return int(str(arg).rsplit(":", 1)[1])
    raise AssertionError("no --wyoming-uri")


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def answer(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """What the daemon sends until it closes (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def speak_http(d: DaemonProcess, text: str = "A normal request still works.") -> int:
    r = httpx.post(d.http + "/v1/audio/speech", timeout=120, headers={"Authorization": f"Bearer {TOKEN}"},
                   json={"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"})
    assert r.status_code != 200 or len(r.content) > 2400, len(r.content)
    return r.status_code


def healthz(source: str, port: int) -> bytes:
    with connect_from(source, port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return answer(sock, 10)


class Trickle(threading.Thread):
    """Sends one byte a second on every socket, and notes when each is closed."""

    def __init__(self, socks: list[socket.socket], byte: bytes = b"a") -> None:
        super().__init__(daemon=True)
        self.socks, self.byte = socks, byte
        self.closed_after: dict[int, float] = {}
        self.answers: dict[int, bytes] = {}
        self.began = time.monotonic()

    def run(self) -> None:
        for s in self.socks:
            s.setblocking(False)
        while time.monotonic() - self.began < ATTACK_S and len(self.closed_after) < len(self.socks):
            for i, s in enumerate(self.socks):
                if i in self.closed_after:
                    continue
                try:
                    got = s.recv(65536)
                    self.answers[i] = self.answers.get(i, b"") + got
                    if not got:
                        self.closed_after[i] = time.monotonic() - self.began
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_after[i] = time.monotonic() - self.began
                    continue
                try:
                    s.send(self.byte)
                except OSError:
                    self.closed_after[i] = time.monotonic() - self.began
            time.sleep(1.0)


def run_attack(d: DaemonProcess, socks: list[socket.socket]) -> Trickle:
    start = peak = d.rss_mb()
    trickle = Trickle(socks)
    trickle.start()
    served = []
    while trickle.is_alive():
        assert healthz("127.0.0.1", d.port).startswith(b"HTTP/1.1 200"), "/healthz during the attack"
        served.append(speak_http(d))
        peak = max(peak, d.rss_mb())
    for s in socks:
        s.close()
    closed = sorted(trickle.closed_after.values()) or [float("nan")]
    print(f"RSS start {start:.0f} MB, peak {peak:.0f} MB; {len(trickle.closed_after)}/{len(socks)} closed, "
          f"after {closed[0]:.1f}-{closed[-1]:.1f} s; normal requests: {served.count(200)}/{len(served)} served")
    assert served and all(status == 200 for status in served), served
    assert peak - start < RSS_GROWTH_MAX_MB
    return trickle


def test_a_head_trickled_a_byte_a_second_is_cut_at_the_head_deadline(daemon: DaemonProcess) -> None:
    socks = []
    for source in ATTACKERS[:4]:
        for _ in range(10):
            sock = connect_from(source, daemon.port)
            sock.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # no token: never sent
            socks.append(sock)
    trickle = run_attack(daemon, socks)
    assert len(trickle.closed_after) == len(socks), "still open at the end of the attack"
    assert all(a.startswith(b"HTTP/1.1 408") for a in trickle.answers.values() if a), trickle.answers


def test_a_body_trickled_a_byte_a_second_is_cut_at_the_body_deadline(daemon: DaemonProcess) -> None:
    socks = []
    for source in ATTACKERS[:4]:
        for _ in range(5):
            sock = connect_from(source, daemon.port)
            sock.sendall(f"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{".encode())
            socks.append(sock)
    trickle = run_attack(daemon, socks)
    assert len(trickle.closed_after) == len(socks), "still open at the end of the attack"
    assert all(a.startswith(b"HTTP/1.1 408") for a in trickle.answers.values() if a), trickle.answers


def test_every_protocol_counts_against_one_limit_and_health_still_answers(daemon: DaemonProcess) -> None:
    start = daemon.rss_mb()
    held = [connect_from(source, daemon.port) for source in ATTACKERS for _ in range(PER_IP)]
    try:
        time.sleep(0.5)
        # The 61st: HTTP, WebSocket and Wyoming are all told why, and health answers.
        with connect_from("127.0.0.7", daemon.port) as sock:
            sock.sendall(f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
            refused = answer(sock)
        assert refused.startswith(b"HTTP/1.1 503") and b"--max-connections 60" in refused, refused[:300]
        with connect_from("127.0.0.7", daemon.port) as sock:
            sock.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                         + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
            assert answer(sock).startswith(b"HTTP/1.1 503")
        with connect_from("127.0.0.7", wyoming_port(daemon)) as sock:
            sock.sendall(b'{"type": "describe"}\n')
            error = json.loads(answer(sock).split(b"\n", 1)[0])
        assert error["type"] == "error", error
        assert healthz("127.0.0.7", daemon.port).startswith(b"HTTP/1.1 200")
        metrics = httpx.get(daemon.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert 'kokorod_connections_refused_total{reason="capacity"}' in metrics
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert speak_http(daemon) == 200, "a normal request after the attack"
    assert daemon.rss_mb() - start < RSS_GROWTH_MAX_MB


def test_one_address_is_held_to_its_own_limit(daemon: DaemonProcess) -> None:
    held = [connect_from("127.0.0.8", daemon.port) for _ in range(PER_IP)]
    try:
        time.sleep(0.5)
        with connect_from("127.0.0.8", daemon.port) as sock:
            sock.sendall(f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
            refused = answer(sock)
        assert refused.startswith(b"HTTP/1.1 429") and b"--max-connections-per-ip 12" in refused, refused[:300]
        assert speak_http(daemon) == 200  # another address is served meanwhile
    finally:
        for sock in held:
            sock.close()


def test_the_token_is_checked_before_any_body_is_read(daemon: DaemonProcess) -> None:
    with connect_from("127.0.0.1", daemon.port) as sock:
        sock.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n")
        assert answer(sock, 5).startswith(b"HTTP/1.1 401")


def test_a_head_too_large_in_one_write_is_431(daemon: DaemonProcess) -> None:
    with connect_from("127.0.0.1", daemon.port) as sock:
        sock.sendall(f"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "X-Big: ".encode() + b"a" * 120_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
        assert answer(sock).startswith(b"HTTP/1.1 431")


def test_sixty_thousand_emoji_are_spoken_or_reported_not_refused(daemon: DaemonProcess) -> None:
    text = "Hello there. " + "\U0001F600" * 60_000  # JSON-escaped: 12 bytes each, 720 KB
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"})
    r = httpx.post(daemon.http + "/v1/audio/speech", content=body.encode(), timeout=120,
                   headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 200 and len(r.content) > 2400, (r.status_code, r.content[:300])


async def test_readyz_answers_503_while_draining() -> None:
    d = DaemonProcess("--drain-timeout-s", "20", "--stream-utilisation", "inf")
    try:
        peer = await Peer.connect(d.url)
        await peer.send(Speak("long", "This answer goes on for a good while before it ends. " * 12, final=True))
        await peer.until(lambda e: isinstance(e, Audio))
        d.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(d.http + "/readyz", timeout=2)
            except httpx.TransportError:
                pytest.fail("/readyz refused while draining")
            if r.status_code == 503:
                status = (r.status_code, r.text)
                break
            time.sleep(0.05)
        assert status == (503, "draining\n"), status
    finally:
        d.stop()
