#!/usr/bin/env python3
"""Time to first byte over the OpenAI HTTP API vs the WebSocket's time to
first audio, same daemon, same texts, interleaved (HTTP then WS, then WS then HTTP, ...)
so that machine noise and ordering hit both alike.

HTTP: from sending ``POST /v1/audio/speech`` (a fresh connection each time,
as the first request of a client would be) to the first body byte, per
response format. WebSocket: from sending ``speak`` (text with ``final``) on
an open connection to the first ``audio`` event. Prints medians and the
ratio HTTP/WS, and one JSON line.

    .venv/bin/python bench/openai_ttfb.py [--runs 5] [--formats pcm,mp3] [--url http://127.0.0.1:8765]

Without ``--url`` it starts its own daemon on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stream_bench import free_port, start_daemon  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Audio, Done, Error, Ready, Speak  # noqa: E402

VOICE = "af_heart"
TEXTS = [
    "The library opens at nine in the morning on weekdays. On weekends it opens an hour later.",
    "Our quarterly results were better than expected, with revenue up twelve percent this year.",
    "To reset your password, open the settings page and choose security, then follow the link.",
]


async def http_ttfb(base: str, text: str, fmt: str, token: str | None) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"model": "kokoro", "voice": VOICE, "input": text, "response_format": fmt}
    async with httpx.AsyncClient(timeout=120) as client:  # a fresh connection per request
        started = time.perf_counter()
        async with client.stream("POST", base + "/v1/audio/speech", json=body, headers=headers) as response:
            if response.status_code != 200:
                raise SystemExit(f"HTTP {response.status_code}: {(await response.aread())[:300]!r}")
            first = None
            async for chunk in response.aiter_raw():
                if chunk and first is None:
                    first = time.perf_counter() - started
    assert first is not None
    return first


async def ws_ttfa(ws: Any, codec: MsgpackCodec, text: str, uid: str) -> float:
    started = time.perf_counter()
    await ws.send(codec.encode_message(Speak(uid, text, voice=VOICE, final=True)))
    first = None
    while True:
        event = codec.decode_event(await ws.recv())
        if isinstance(event, Audio) and first is None:
            first = time.perf_counter() - started
        elif isinstance(event, (Done, Error)) and getattr(event, "utterance", None) == uid:
            if isinstance(event, Error):
                raise SystemExit(f"WebSocket error: {event.code}: {event.message}")
            break
    assert first is not None
    return first


async def bench(base: str, runs: int, formats: list[str], token: str | None) -> dict[str, Any]:
    codec = MsgpackCodec()
    ws_url = base.replace("http", "ws", 1) + "/v1/stream"
    extra = {"additional_headers": {"Authorization": f"Bearer {token}"}} if token else {}
    results: dict[str, list[float]] = {"ws": [], **{f"http_{f}": [] for f in formats}}
    async with websockets.connect(ws_url, subprotocols=[codec.subprotocol], max_size=None, **extra) as ws:  # type: ignore[list-item]
        assert isinstance(codec.decode_event(await ws.recv()), Ready)
        # One untimed round of each, so neither side pays a first-use cost.
        await http_ttfb(base, "Warm up.", formats[0], token)
        await ws_ttfa(ws, codec, "Warm up.", "warm")
        n = 0
        for run in range(runs):
            for text in TEXTS:
                for fmt in formats:
                    n += 1
                    # Alternate which side goes first, so neither always follows the other.
                    if n % 2:
                        results[f"http_{fmt}"].append(await http_ttfb(base, text, fmt, token))
                        results["ws"].append(await ws_ttfa(ws, codec, text, f"u{n}"))
                    else:
                        results["ws"].append(await ws_ttfa(ws, codec, text, f"u{n}"))
                        results[f"http_{fmt}"].append(await http_ttfb(base, text, fmt, token))
            print(f"run {run + 1}/{runs} done", file=sys.stderr, flush=True)
    ws_median = statistics.median(results["ws"])
    out: dict[str, Any] = {"runs": runs, "texts": len(TEXTS), "ws_ttfa_ms": round(ws_median * 1000, 1)}
    for fmt in formats:
        median = statistics.median(results[f"http_{fmt}"])
        out[f"http_{fmt}_ttfb_ms"] = round(median * 1000, 1)
        out[f"ratio_{fmt}"] = round(median / ws_median, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--formats", default="pcm,mp3", help="comma-separated response formats")
    parser.add_argument("--url", default=None, help="an already running daemon, e.g. http://127.0.0.1:8765")
    parser.add_argument("--token", default=os.environ.get("KOKOROD_TOKEN"))
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    proc = None
    base = args.url
    if base is None:
        port = free_port()
        proc = start_daemon(port)
        base = f"http://127.0.0.1:{port}"
    try:
        out = asyncio.run(bench(base.rstrip("/"), args.runs, formats, args.token))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
    print(f"WebSocket time to first audio, median: {out['ws_ttfa_ms']:.0f} ms")
    for fmt in formats:
        print(f"HTTP {fmt:>4} time to first byte, median: {out[f'http_{fmt}_ttfb_ms']:.0f} ms "
              f"(ratio HTTP/WS {out[f'ratio_{fmt}']:.2f})")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
