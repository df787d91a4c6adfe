"""Issue 18's HTTP attacks against a real daemon, run from a given source tree,
so an old checkout and this one can be compared in one session:

- slowloris head: 40 connections (4 loopback addresses) send a request head
  one byte every 5 s for 30 s, no token; /healthz and a normal speech request
  every 5 s meanwhile; RSS before and at the peak;
- 71 connections held open on a daemon with --max-connections 64: what the
  71st gets for GET /v1/models, and for /healthz;
- a 120 KB head in one write; 60,000 emoji (720 KB of JSON);
- /readyz 0.3 s after SIGTERM with a stream in flight;
- 1,100 slow connections against a daemon whose fd limit is 1,024 (soft and
  hard, via prlimit: a unit without LimitNOFILE), 30 s: /healthz and speech
  meanwhile, the daemon's open fds, what it logged.

Only flags both trees know are passed. Loopback only (127.0.0.2-12 as sources).

    .venv/bin/python bench/http_attacks.py [--tree PATH]   # PATH: the checkout whose kokorod to run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import msgpack
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, describe  # noqa: E402

TOKEN = "bench-token"
SPEECH = {"model": "tts-1", "voice": "alloy", "input": "A normal request still works.", "response_format": "pcm"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tree: str, *extra: str, prefix: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = Path(f"/tmp/kokorod-http-attacks-{port}.log")
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "kokorod", "serve", "--port", str(port), "--first-audio-ms",
                             "0", "--stream-utilisation", "inf", *extra], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": tree}, cwd=tree)
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return proc, port, log
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(log.read_text()[-2000:])
            time.sleep(0.3)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def conn(source: str, port: int) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def answer(s: socket.socket, timeout: float = 10) -> bytes:
    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def status_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed)"


def normal(port: int, token: str | None) -> tuple[object, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        health: object = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status
    except Exception as exc:
        health = type(exc).__name__
    try:
        speech: object = httpx.post(f"http://127.0.0.1:{port}/v1/audio/speech", json=SPEECH, headers=headers,
                                    timeout=30).status_code
    except Exception as exc:
        speech = type(exc).__name__
    return health, speech


def slow_heads(port: int, pid: int, sources: list[str], count: int, every_s: float, for_s: float,
               token: str | None) -> dict[str, object]:
    socks = []
    for i in range(count):
        s = conn(sources[i % len(sources)], port)
        s.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(s)
    start_mb = peak = rss_mb(pid)
    began, closed, during = time.monotonic(), {}, []
    while time.monotonic() - began < for_s:
        for i, s in enumerate(socks):
            if i not in closed:
                try:
                    s.send(b"a")
                except OSError:
                    closed[i] = time.monotonic() - began
        during.append(normal(port, token))
        peak = max(peak, rss_mb(pid))
        until = began + every_s * (1 + int((time.monotonic() - began) // every_s))
        by_fd = {s.fileno(): i for i, s in enumerate(socks) if i not in closed}
        poller = select.poll()  # not select(): more than 1,024 descriptors
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        while (left := until - time.monotonic()) > 0 and by_fd:
            for fd, _ in poller.poll(left * 1000):
                i = by_fd.pop(fd, None)
                if i is None:
                    continue
                try:
                    if socks[i].recv(4096) != b"":
                        by_fd[fd] = i  # an answer (408): its close follows
                        continue
                except OSError:
                    pass
                poller.unregister(fd)
                closed[i] = time.monotonic() - began
        time.sleep(max(0.0, until - time.monotonic()))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    for s in socks:
        s.close()
    times = sorted(closed.values())
    return {"connections": count, "still_open": count - len(closed),
            "closed_after_s": [round(times[0], 1), round(times[-1], 1)] if times else None,
            "rss_mb": [round(start_mb), round(peak)], "healthz_speech_during": sorted(set(map(str, during))),
            "normal_requests": len(during), "daemon_fds_at_end": fds}


def run_tree(tree: str) -> dict[str, object]:
    out: dict[str, object] = {"tree": tree}
    proc, port, log = start(tree, "--token", TOKEN)
    try:
        out["slow_head"] = slow_heads(port, proc.pid, [f"127.0.0.{i}" for i in range(2, 6)], 40, 5.0, 30.0, TOKEN)
        held = [conn(f"127.0.0.{2 + i % 7}", port) for i in range(70)]
        time.sleep(0.5)
        s = conn("127.0.0.9", port)
        s.sendall(f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        h = conn("127.0.0.9", port)
        h.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        out["71st_connection"] = {"models": status_line(answer(s)), "healthz": status_line(answer(h))}
        for c in held:
            c.close()
        s = conn("127.0.0.1", port)
        s.sendall(f"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nX-Big: ".encode()
                  + b"a" * 120_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
        out["head_120kb_one_write"] = status_line(answer(s))
        body = json.dumps({**SPEECH, "input": "Hello there. " + "\U0001F600" * 60_000}).encode()
        r = httpx.post(f"http://127.0.0.1:{port}/v1/audio/speech", content=body, timeout=120,
                       headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        out["emoji_60000"] = {"body_bytes": len(body), "status": r.status_code, "audio_bytes": len(r.content)}
        out["readyz_while_draining"] = asyncio.run(_readyz_while_draining(proc, port))
    finally:
        stop(proc)
    proc, port, log = start(tree, prefix=("prlimit", "--nofile=1024:1024"))
    try:
        out["fd_flood_1100"] = slow_heads(port, proc.pid, [f"127.0.0.{i}" for i in range(2, 13)], 1100, 3.0, 30.0, None)
    finally:
        stop(proc)
    lines = [line for line in log.read_text(errors="replace").splitlines() if "limit" in line or "accept" in line]
    out["fd_flood_1100"]["log_lines_about_limits"] = len(lines)  # type: ignore[index]
    return out


async def _readyz_while_draining(proc: subprocess.Popen[bytes], port: int) -> str:
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/v1/stream?token={TOKEN}", max_size=None)
    await ws.recv()
    await ws.send(msgpack.packb({"type": "speak", "utterance": "l", "final": True,
                                 "text": "This answer goes on for a good while before it ends. " * 20}))
    while msgpack.unpackb(await ws.recv())["type"] != "audio":
        pass
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        return f"{r.status_code} {r.text.strip()}"
    except httpx.TransportError as exc:
        return type(exc).__name__


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]),
                        help="the checkout whose kokorod to run (default: this one)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))  # the attacker's own sockets
    cpu = cpu_info()
    print(describe(cpu), flush=True)
    print(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu,
                      **run_tree(args.tree), "load_avg_1m_end": round(os.getloadavg()[0], 2)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
