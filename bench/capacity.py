#!/usr/bin/env python3
"""How many concurrent streams does this machine serve at 1x without underruns?

Starts a daemon with no capacity limit, then for each N runs N clients that each
speak a ~35 s text at the same moment (staggered by a fraction of a second) and
play it at 1x from their first audio frame (stream_bench's Player), counting
underruns. The capacity is the largest N, from 1 up, where every client of
every run played through without one. Prints one JSON document.

    .venv/bin/python bench/capacity.py [--max-streams 6] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak import start_daemon  # noqa: E402
from stream_bench import PARAGRAPHS, VOICE, Player, pct, play_until_end  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Speak  # noqa: E402

TEXT = " ".join(PARAGRAPHS)


async def listener(url: str, delay_s: float) -> dict[str, Any]:
    await asyncio.sleep(delay_s)
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None, proxy=None) as ws:
        codec.decode_event(await ws.recv())  # ready
        player = Player()
        sent = time.perf_counter()
        await ws.send(codec.encode_message(Speak("u", TEXT, voice=VOICE, final=True)))
        ttfa, audio_s, end = await play_until_end(ws, codec, player, sent)
        return {"end": type(end).__name__, "ttfa_s": ttfa, "audio_s": round(audio_s, 1),
                "underruns": player.underruns, "stall_s": round(player.stall_s, 3)}


async def round_of(url: str, n: int) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(listener(url, 0.3 * i) for i in range(n))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-streams", type=int, default=6)
    parser.add_argument("--runs", type=int, default=2, help="runs per N (the machine is noisy: all must pass)")
    args = parser.parse_args()
    log = Path("/tmp") / f"kokorod-capacity-{int(time.time())}.log"
    proc, url = start_daemon(["--max-active-streams", "64"], log)
    rounds: dict[int, list[list[dict[str, Any]]]] = {}
    capacity = 0
    try:
        for n in range(1, args.max_streams + 1):
            rounds[n] = [asyncio.run(round_of(url, n)) for _ in range(args.runs)]
            clean = all(r["end"] == "Done" and r["underruns"] == 0 for run in rounds[n] for r in run)
            print(f"N={n}: underruns {[[r['underruns'] for r in run] for run in rounds[n]]}", file=sys.stderr)
            if not clean:
                break
            capacity = n
    finally:
        proc.terminate()
        proc.wait(30)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "text_audio_s": rounds[1][0][0]["audio_s"],
        "capacity_streams_at_1x_no_underruns": capacity,
        "by_streams": {
            n: {"underruns": sum(r["underruns"] for run in runs for r in run),
                "stall_s": round(sum(r["stall_s"] for run in runs for r in run), 2),
                "ttfa_ms": {"p50": round(pct([r["ttfa_s"] for run in runs for r in run], 0.5) * 1000),
                            "max": round(max(r["ttfa_s"] for run in runs for r in run) * 1000)}}
            for n, runs in rounds.items()
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
