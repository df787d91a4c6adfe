#!/usr/bin/env python3
"""Soak test: many clients speaking, cancelling, barging in and vanishing at
random against a real daemon on loopback, then a check that nothing leaked.

Prints one JSON report: utterances served/cancelled/refused, error codes, client
latency, daemon RSS sampled every second, and tasks/threads before and after
(from the daemon's /metrics gauges). Exit status 0 when nothing leaked and no
unexpected error occurred.

    .venv/bin/python bench/soak.py --clients 8 --duration-s 180 [--out report.json]
    .venv/bin/python bench/soak.py --url ws://127.0.0.1:8765/v1/stream --pid 1234   # an existing daemon
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kokorod.auth import is_loopback  # noqa: E402
from machine import daemon_env  # noqa: E402
from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Config, Done, Error, Speak  # noqa: E402

MAX_CLIENTS, MAX_DURATION_S = 64, 3600
# Refusals the daemon is designed to answer under load; anything else is a finding.
EXPECTED_ERRORS = {"overloaded"}
SENTENCES = [
    "Good morning, the weather today is mild with a light breeze.",
    "Your order has shipped and should arrive on Thursday.",
    "Turn left at the second light, then continue for two miles.",
    "The meeting moved to three thirty in the small conference room.",
    "Please remember to water the plants while I am away.",
    "It costs $12.50, or about eleven euros at today's rate.",
]
PARAGRAPH = " ".join(SENTENCES * 3)
WAIT_S = 120.0  # any single wait; past it the client records a timeout


def scrape(http: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(http + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


@dataclass
class Stats:
    done: int = 0
    cancelled: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    ttfa_s: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def problem(self, what: str) -> None:
        if len(self.unexpected) < 50:
            self.unexpected.append(what)


class Conn:
    """One connection with a reader task that routes events to utterances."""

    def __init__(self, ws: Any, stats: Stats) -> None:
        self.ws, self.stats, self.codec = ws, stats, MsgpackCodec()
        self.first_audio: dict[str, asyncio.Event] = {}
        self.ended: dict[str, asyncio.Future[Any]] = {}
        self.sent_at: dict[str, float] = {}
        # Ids that ended (done, refused, cancelled); kept across forget() because a
        # fragment sent just before its refusal arrived is answered afterwards.
        self.finished: set[str] = set()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, stats: Stats) -> "Conn":
        ws = await websockets.connect(url, max_size=None, compression=None, open_timeout=30, proxy=None)
        return cls(ws, stats)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for raw in self.ws:
                event = self.codec.decode_event(raw)
                uid = getattr(event, "utterance", None)
                if isinstance(event, Audio) and uid in self.first_audio and not self.first_audio[uid].is_set():
                    self.first_audio[uid].set()
                    if uid in self.sent_at:
                        self.stats.ttfa_s.append(loop.time() - self.sent_at[uid])
                elif isinstance(event, Error):
                    self.stats.errors[event.code] += 1
                    # A fragment that crossed its utterance's refusal in flight is
                    # answered with unknown_utterance: documented, and expected.
                    crossed = event.code == "unknown_utterance" and uid in self.finished
                    if event.code not in EXPECTED_ERRORS and not crossed:
                        self.stats.problem(f"error {event.code}: {event.message}")
                if isinstance(event, (Done, Cancelled, Error)) and uid in self.ended and not self.ended[uid].done():
                    self.ended[uid].set_result(event)
                    self.finished.add(uid)
        except websockets.ConnectionClosed:
            pass
        finally:
            for fut in self.ended.values():
                if not fut.done():
                    fut.set_result(None)

    async def speak(self, uid: str, text: str, **kw: Any) -> None:
        self.first_audio[uid] = asyncio.Event()
        self.ended[uid] = asyncio.get_running_loop().create_future()
        final = kw.pop("final", True)
        if final and kw.pop("timed", True):  # whole texts that are not queued behind another
            self.sent_at[uid] = asyncio.get_running_loop().time()
        await self.ws.send(self.codec.encode_message(Speak(uid, text, final=final, **kw)))

    async def wait_audio(self, uid: str) -> bool:
        done = asyncio.ensure_future(asyncio.shield(self.ended[uid]))
        audio = asyncio.ensure_future(self.first_audio[uid].wait())
        finished, pending = await asyncio.wait({done, audio}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        if not finished:
            self.stats.problem(f"no audio for {uid} in {WAIT_S:g} s")
        return audio in finished

    async def wait_end(self, uid: str) -> Any:
        try:
            event = await asyncio.wait_for(asyncio.shield(self.ended[uid]), WAIT_S)
        except asyncio.TimeoutError:
            self.stats.problem(f"{uid} did not end in {WAIT_S:g} s")
            return None
        if isinstance(event, Done):
            self.stats.done += 1
        elif isinstance(event, Cancelled):
            self.stats.cancelled[event.reason] += 1
        return event

    def forget(self) -> bool:
        """Drop the finished action's bookkeeping; True if it was refused as overloaded."""
        refused = any(f.done() and isinstance(f.result(), Error) and f.result().code == "overloaded"
                      for f in self.ended.values())
        self.ended.clear()
        self.first_audio.clear()
        self.sent_at.clear()
        return refused

    def abort(self) -> None:
        """Vanish: no close frame, no FIN handshake, just gone."""
        self.ws.transport.abort()
        self.reader.cancel()

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self.reader, return_exceptions=True)


async def client(index: int, url: str, deadline: float, stats: Stats, rng: random.Random) -> None:
    loop = asyncio.get_running_loop()
    conn: Conn | None = None
    n = 0
    while loop.time() < deadline:
        try:
            if conn is None:
                conn = await Conn.open(url, stats)
            n += 1
            uid = f"c{index}-{n}"
            action = rng.choice(["speak", "speak", "fragments", "cancel", "barge_in", "queue", "abort", "close"])
            stats.actions[action] += 1
            if action == "speak":
                await conn.speak(uid, rng.choice(SENTENCES))
                await conn.wait_end(uid)
            elif action == "fragments":  # an LLM streaming words
                words = rng.choice(SENTENCES + [PARAGRAPH[:400]]).split(" ")
                await conn.speak(uid, words[0] + " ", final=False)
                for i, word in enumerate(words[1:], 1):
                    await asyncio.sleep(rng.uniform(0.02, 0.1))
                    if conn.ended[uid].done():  # refused: a real client stops feeding it
                        break
                    await conn.ws.send(conn.codec.encode_message(Speak(uid, word + " ", final=i == len(words) - 1)))
                await conn.wait_end(uid)
            elif action in ("cancel", "barge_in"):
                await conn.speak(uid, PARAGRAPH)
                if await conn.wait_audio(uid):
                    await asyncio.sleep(rng.uniform(0, 2.0))
                if action == "cancel":
                    await conn.ws.send(conn.codec.encode_message(Cancel(utterance=uid)))
                else:
                    await conn.speak(uid + "b", rng.choice(SENTENCES))
                    await conn.wait_end(uid + "b")
                await conn.wait_end(uid)
            elif action == "queue":
                await conn.ws.send(conn.codec.encode_message(Config(on_new_utterance="queue")))
                await conn.speak(uid, rng.choice(SENTENCES))
                await conn.speak(uid + "q", rng.choice(SENTENCES), timed=False)
                await conn.wait_end(uid)
                await conn.wait_end(uid + "q")
                await conn.ws.send(conn.codec.encode_message(Config(on_new_utterance="interrupt")))
            else:  # leave mid-speech, abruptly or politely
                await conn.speak(uid, PARAGRAPH)
                if rng.random() < 0.7:
                    await conn.wait_audio(uid)
                    await asyncio.sleep(rng.uniform(0, 1.0))
                if action == "abort":
                    conn.abort()
                else:
                    await conn.close()
                conn = None
            refused = conn.forget() if conn is not None else False
            # Think time; after an `overloaded` refusal, back off as the error asks.
            await asyncio.sleep(rng.uniform(1.0, 3.0) if refused else rng.uniform(0, 0.5))
        except (websockets.ConnectionClosed, websockets.InvalidStatus, OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, websockets.InvalidStatus) and exc.response.status_code == 503:
                stats.errors["http_503"] += 1  # connection limit: designed refusal
            else:
                stats.problem(f"client {index}: {type(exc).__name__}: {exc}")
            if conn is not None:
                conn.abort()
            conn = None
            await asyncio.sleep(0.5)
    if conn is not None:
        await conn.close()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)


LEAK_GAUGES = ("kokorod_tasks", "kokorod_threads", "kokorod_engine_threads", "kokorod_os_threads")


async def soak(url: str, pid: int | None, clients: int, duration_s: float, seed: int) -> dict[str, Any]:
    http = "http://" + urlsplit(url).netloc
    loop = asyncio.get_running_loop()
    warm = await Conn.open(url, Stats())  # proves the daemon speaks before blaming it for anything
    await warm.speak("warm", SENTENCES[0])
    if not isinstance(await warm.wait_end("warm"), Done):
        raise SystemExit("the daemon did not speak a warm-up sentence")
    await warm.close()
    await asyncio.sleep(1.0)
    before = scrape(http)
    stats = Stats()
    rss: list[tuple[float, float]] = []
    start = loop.time()

    async def sample() -> None:
        while True:
            value = rss_mb(pid) if pid else None
            if value is not None:
                rss.append((round(loop.time() - start, 1), value))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    rng = random.Random(seed)
    deadline = start + duration_s
    tasks = [asyncio.create_task(client(i, url, deadline, stats, random.Random(rng.random()))) for i in range(clients)]
    _, late = await asyncio.wait(tasks, timeout=duration_s + WAIT_S + 30)
    for t in late:
        t.cancel()
        stats.problem("a client overran its time bound")
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            stats.problem(f"client crashed: {t.exception()!r}")
    ran_s = loop.time() - start
    # Everyone has left: the daemon must get back to where it started.
    settle_by = loop.time() + 30
    while True:
        after = scrape(http)
        quiet = after["kokorod_open_connections"] == 0 and after["kokorod_active_streams"] == 0
        if quiet and all(after[k] <= before[k] for k in LEAK_GAUGES) or loop.time() > settle_by:
            break
        await asyncio.sleep(0.5)
    settled_s = loop.time() - start - ran_s
    await asyncio.sleep(1.0)
    sampler.cancel()
    end_rss = rss_mb(pid) if pid else None
    values = [v for t, v in rss if t >= min(20.0, duration_s * 0.2)]  # after the first minutes' arena growth
    steady = statistics.median(values[: max(1, len(values) // 3)]) if values else None

    def moved(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    leaks = {k: {"before": before[k], "after": after[k]} for k in LEAK_GAUGES + ("kokorod_open_connections", "kokorod_active_streams")}
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clients": clients, "duration_s": round(ran_s, 1), "settle_s": round(settled_s, 1), "seed": seed,
        "actions": dict(stats.actions),
        "client_view": {"done": stats.done, "cancelled": dict(stats.cancelled), "errors": dict(stats.errors),
                        "ttfa_ms": {"p50": pct(stats.ttfa_s, 0.5), "p95": pct(stats.ttfa_s, 0.95), "n": len(stats.ttfa_s)}},
        "daemon_view": {
            "utterances_started": moved("kokorod_utterances_started_total"),
            "utterances_completed": moved("kokorod_utterances_completed_total"),
            "utterances_cancelled": {k.split('"')[1]: moved(k) for k in after if k.startswith("kokorod_utterances_cancelled_total{")},
            "utterances_failed": moved("kokorod_utterances_failed_total"),
            "utterances_refused": {k.split('"')[1]: moved(k) for k in after if k.startswith("kokorod_utterances_refused_total{")},
            "engine_errors": moved("kokorod_engine_errors_total"),
            "underruns": moved("kokorod_underruns_total"),
            "audio_s": round(moved("kokorod_audio_seconds_total"), 1),
            "connections": moved("kokorod_connections_total"),
        },
        "leak_gauges": leaks,
        "rss_mb": {"start": rss[0][1] if rss else None, "steady": steady, "max": max((v for _, v in rss), default=None),
                   "end": end_rss, "growth_steady_to_end": round(end_rss - steady, 1) if end_rss and steady else None,
                   "samples": rss},
        "unexpected": stats.unexpected,
    }
    report["ok"] = not stats.unexpected and report["daemon_view"]["engine_errors"] == 0 and all(
        v["after"] <= v["before"] for k, v in leaks.items() if k in LEAK_GAUGES) and after["kokorod_open_connections"] == 0
    return report


def start_daemon(extra: list[str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kokorod", "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
                            cwd=ROOT, env=daemon_env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited: {log_path.read_text()[-2000:]}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return proc, f"ws://127.0.0.1:{port}/v1/stream"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("daemon did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration-s", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", default=None, help="an already running daemon (loopback only); default: start one")
    parser.add_argument("--pid", type=int, default=None, help="its process id, for RSS")
    parser.add_argument("--daemon-arg", action="append", default=[], help="extra `kokorod serve` argument (repeatable)")
    parser.add_argument("--out", default=None, help="also write the report here")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.duration_s <= MAX_DURATION_S:
        parser.error(f"--clients 1..{MAX_CLIENTS}, --duration-s 1..{MAX_DURATION_S}")
    proc = None
    log_path = Path("/tmp") / f"kokorod-soak-{int(time.time())}.log"
    if args.url:
        if not is_loopback(urlsplit(args.url).hostname or ""):
            parser.error("soak only targets a daemon on loopback")
        url, pid = args.url, args.pid
    else:
        proc, url = start_daemon(args.daemon_arg, log_path)
        pid = proc.pid
    try:
        report = asyncio.run(soak(url, pid, args.clients, args.duration_s, args.seed))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
    if proc is not None:
        log = log_path.read_text(errors="replace")
        report["daemon_log"] = {"path": str(log_path), "exit_code": code,
                                "tracebacks": log.count("Traceback"), "errors": len(re.findall(r" ERROR |\"level\": \"error\"", log))}
        report["ok"] = report["ok"] and code == 0 and report["daemon_log"]["tracebacks"] == 0
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
