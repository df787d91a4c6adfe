#!/usr/bin/env python3
"""Time to first audio of a repeated greeting: a chunk-cache miss vs a hit.

Each greeting is spoken twice, on a fresh WebSocket connection each time (a
new caller, nothing of theirs buffered): the first time the engine renders
it (miss), the second time it comes from the daemon's chunk cache (hit).
Time runs from sending ``speak`` (text with ``final``) to the first
``audio`` event. Prints the medians and one JSON line.

    .venv/bin/python bench/chunk_cache_ttfa.py [--url http://127.0.0.1:8765]

Without ``--url`` it starts its own daemon (default --cache-mb) on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from openai_ttfb import ws_ttfa  # noqa: E402
from stream_bench import free_port, start_daemon  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Ready  # noqa: E402

GREETINGS = [
    "Hello! Thanks for calling. How can I help you today?",
    "Sure! Let me look that up for you.",
    "Welcome back. Your order has shipped and should arrive on Friday.",
    "Sorry, I didn't catch that. Could you say it again?",
    "Please hold while I connect you to an agent.",
    "Good morning, and thank you for choosing our service.",
]


async def one(ws_url: str, text: str, uid: str) -> float:
    codec = MsgpackCodec()
    async with websockets.connect(ws_url, subprotocols=[codec.subprotocol], max_size=None) as ws:  # type: ignore[list-item]
        assert isinstance(codec.decode_event(await ws.recv()), Ready)
        return await ws_ttfa(ws, codec, text, uid)


async def bench(base: str) -> dict[str, list[float]]:
    ws_url = base.replace("http", "ws", 1) + "/v1/stream"
    await one(ws_url, "Warm up.", "warm")
    out: dict[str, list[float]] = {"miss": [], "hit": []}
    for i, text in enumerate(GREETINGS):
        out["miss"].append(await one(ws_url, text, f"m{i}"))
        out["hit"].append(await one(ws_url, text, f"h{i}"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=None, help="a running daemon's http://host:port (default: start one)")
    args = ap.parse_args()
    proc = None
    base = args.url
    if base is None:
        port = free_port()
        proc = start_daemon(port)
        base = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        results = asyncio.run(bench(base))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    ms = {k: [round(v * 1000, 1) for v in vals] for k, vals in results.items()}
    for kind, vals in ms.items():
        print(f"{kind:5s} median {statistics.median(vals):7.1f} ms  all {vals}")
    print(json.dumps({"bench": "chunk_cache_ttfa", "ms": ms,
                      "median_ms": {k: statistics.median(v) for k, v in ms.items()},
                      "wall_s": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
