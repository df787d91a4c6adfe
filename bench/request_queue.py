"""Requests at once against a busy daemon: are they all served, and when?

N requests are sent at the same time through the OpenAI API (the ``openai``
SDK) and through Wyoming one-shot ``synthesize`` (the ``wyoming`` package's
client), N = 6 and 12 by default, to one daemon with the request queue off
(``--max-queued 0``: refused past admission, as before it existed) and then on
(its defaults), in the same run. For each: how many were served and refused
(with the refusal's text), and when the last one ended, counted from the send.

    .venv/bin/python bench/request_queue.py [--counts 6 12] [-- kokorod serve args, e.g. --max-active-streams 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, describe  # noqa: E402
from soak import scrape, start_daemon  # noqa: E402

SENTENCES = (
    "The kitchen lights are now off.",
    "The front door is locked for the night.",
    "It is going to rain this afternoon.",
    "Your package was delivered to the porch.",
    "The washing machine has finished its cycle.",
    "Dinner will be ready in ten minutes.",
)


async def openai_request(http: str, text: str, t0: float) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{http}/v1", api_key="-", max_retries=0, timeout=600)
    try:
        audio = await client.audio.speech.create(model="tts-1", voice="nova", input=text, response_format="pcm")
        return {"ok": True, "audio_s": round(len(audio.content) / 2 / 24000, 2), "end_s": time.monotonic() - t0}
    except openai.APIStatusError as exc:
        return {"ok": False, "status": exc.status_code, "error": str(exc.body)[:160], "end_s": time.monotonic() - t0}
    finally:
        await client.close()


async def wyoming_request(port: int, text: str, t0: float) -> dict[str, Any]:
    from wyoming.audio import AudioChunk, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.error import Error as WyomingError
    from wyoming.tts import Synthesize, SynthesizeVoice

    samples = 0
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="af_heart")).event())
        while True:
            event = await client.read_event()
            if event is None:
                return {"ok": False, "error": "connection closed", "end_s": time.monotonic() - t0}
            if AudioChunk.is_type(event.type):
                samples += len(AudioChunk.from_event(event).audio) // 2
            elif AudioStop.is_type(event.type):
                return {"ok": True, "audio_s": round(samples / 24000, 2), "end_s": time.monotonic() - t0}
            elif WyomingError.is_type(event.type):
                return {"ok": False, "error": WyomingError.from_event(event).text[:160], "end_s": time.monotonic() - t0}


async def burst(frontend: str, n: int, http: str, wyoming_port: int) -> dict[str, Any]:
    t0 = time.monotonic()
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
    if frontend == "openai":
        results = await asyncio.gather(*(openai_request(http, t, t0) for t in texts))
    else:
        results = await asyncio.gather(*(wyoming_request(wyoming_port, t, t0) for t in texts))
    served = [r for r in results if r["ok"]]
    refused = [r for r in results if not r["ok"]]
    return {"frontend": frontend, "requests": n, "served": len(served), "refused": len(refused),
            "last_served_s": round(max((r["end_s"] for r in served), default=0.0), 2),
            "audio_s": round(sum(r["audio_s"] for r in served), 2),
            "refusals": sorted({r["error"] for r in refused})}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_daemon(label: str, queue_args: list[str], extra: list[str], counts: list[int]) -> dict[str, Any]:
    port = free_port()
    log = Path("/tmp") / f"kokorod-request-queue-{int(time.time())}-{port}.log"
    proc, url = start_daemon(["--wyoming-uri", f"tcp://127.0.0.1:{port}", *queue_args, *extra], log)
    http = url.replace("ws://", "http://").rsplit("/v1/", 1)[0]
    rows = []
    try:
        time.sleep(1.0)  # the Wyoming server starts right after /readyz
        for frontend in ("openai", "wyoming"):
            for n in counts:
                row = asyncio.run(burst(frontend, n, http, port))
                print(f"{label:>24} {frontend:>8} x{n:<3} served {row['served']:>2}, refused {row['refused']:>2}, "
                      f"last served at {row['last_served_s']:6.2f} s ({row['audio_s']:.1f} s of audio)"
                      + (f"; refused: {row['refusals'][0]}" if row["refusals"] else ""), flush=True)
                rows.append(row)
        m = scrape(http)
        metrics = {k: v for k, v in m.items() if k.startswith("kokorod_request_queue") and "bucket" not in k}
        ready = next((line for line in log.read_text(errors="replace").splitlines() if "ready (warm-up" in line), None)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"label": label, "daemon_args": queue_args + extra, "daemon_ready_log": ready, "bursts": rows,
            "queue_metrics": metrics}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="arguments after -- go to `kokorod serve`")
    parser.add_argument("--counts", type=int, nargs="+", default=[6, 12], help="requests at once (default 6 12)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    cpu = cpu_info()
    print(describe(cpu), flush=True)
    runs = [run_daemon("queue off (--max-queued 0)", ["--max-queued", "0"], extra, args.counts),
            run_daemon("queue on (defaults)", [], extra, args.counts)]
    print(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "cpu": cpu | {"load_avg_1m_end": round(os.getloadavg()[0], 2)}, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
