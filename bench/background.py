#!/usr/bin/env python3
"""Does a book in the background leave a live stream alone? One daemon, two
rounds in one run: a long text (the "book", read as fast as it comes, as
``kokorod say -f`` would) started first, then a live stream beside it, played at
1x from its first frame (stream_bench's Player: a frame more than 5 ms late is
an underrun).

- before: the book is an ordinary live utterance (``priority`` unset), as a
  client without the new field sends it; admission is off for this round
  (``--stream-utilisation inf --max-active-streams 8``) so the live stream is
  admitted beside it at all, and the chunk cache is off (``--cache-mb 0``);
- after: the book is ``"priority": "background"``.

A first round plays the live stream alone (the control: what this machine
gives a lone stream at all). Prints the CPU first, then per round the live stream's underruns and stalls,
its time to first audio, and the book's audio and wall time (its real-time
speed), then one JSON document.

    .venv/bin/python bench/background.py [--book-repeat 2] [-- serve args]
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
from machine import cpu_info, describe  # noqa: E402
from soak import scrape, start_daemon  # noqa: E402
from stream_bench import PARAGRAPHS, VOICE, Player  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Audio, Cancelled, Done, Error, Speak  # noqa: E402

# Not in the book, and the chunk cache off: the live stream must not be served
# from chunks the book already rendered.
LIVE = ("The museum opens at ten in the morning. Tickets cost twelve dollars for adults, and children "
        "under five get in for free. Please leave large bags at the front desk, and ask the staff "
        "if you need a wheelchair or a map of the galleries.")


async def speak(url: str, text: str, priority: str | None, first_audio: asyncio.Event | None = None) -> dict[str, Any]:
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None, proxy=None, open_timeout=60) as ws:
        codec.decode_event(await ws.recv())  # ready
        started = time.perf_counter()
        await ws.send(codec.encode_message(Speak("u", text, voice=VOICE, final=True, priority=priority)))  # type: ignore[arg-type]
        player, audio_s, ttfa = Player(), 0.0, None
        while True:
            event = codec.decode_event(await ws.recv())
            now = time.perf_counter()
            if isinstance(event, Audio):
                if ttfa is None:
                    ttfa = now - started
                    if first_audio is not None:
                        first_audio.set()
                player.on_audio(event, now)
                audio_s += event.samples / event.sample_rate
            elif isinstance(event, (Done, Cancelled, Error)):
                return {"end": type(event).__name__, "audio_s": round(audio_s, 1), "wall_s": round(now - started, 1),
                        "ttfa_s": None if ttfa is None else round(ttfa, 3), "underruns": player.underruns,
                        "stall_s": round(player.stall_s, 3)}


async def one_round(url: str, book: str | None, priority: str | None) -> dict[str, Any]:
    if book is None:  # the control: the live stream alone, what this machine gives it without a book
        return {"book_priority": "no book", "live": await speak(url, LIVE, None), "book": None}
    book_started = asyncio.Event()
    book_task = asyncio.create_task(speak(url, book, priority, book_started))
    await asyncio.wait_for(book_started.wait(), 300)
    live = await speak(url, LIVE, None)
    book_result = await book_task
    book_result["x_realtime"] = round(book_result["audio_s"] / book_result["wall_s"], 2) if book_result["wall_s"] else None
    return {"book_priority": priority or "live", "live": live, "book": book_result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="arguments after -- go to `kokorod serve`")
    parser.add_argument("--book-repeat", type=int, default=2, help="the book is the bench paragraphs this many times")
    argv = sys.argv[1:]
    serve_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    cpu = cpu_info()
    print(describe(cpu), flush=True)
    book = " ".join(PARAGRAPHS * max(1, args.book_repeat))
    log = Path("/tmp") / f"kokorod-background-{int(time.time())}.log"
    proc, url = start_daemon(["--stream-utilisation", "inf", "--max-active-streams", "8", "--cache-mb", "0",
                              *serve_args], log)
    http = url.replace("ws://", "http://").rsplit("/v1/", 1)[0]
    try:
        rounds = [asyncio.run(one_round(url, None, None))]
        rounds += [asyncio.run(one_round(url, book, p)) for p in (None, "background")]
        after = scrape(http)
    finally:
        proc.terminate()
        proc.wait(30)
    for r in rounds:
        live, b = r["live"], r["book"]
        print(f"book as {r['book_priority']:10}: live stream underruns {live['underruns']} (stalled {live['stall_s']} s, "
              f"first audio {live['ttfa_s']} s, {live['audio_s']} s of audio)" + ("" if b is None else
              f"; book {b['audio_s']} s of audio in {b['wall_s']} s ({b['x_realtime']}x real time), ended {b['end']}"),
              file=sys.stderr)
    print(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "cpu": cpu | {"load_avg_1m_end": round(os.getloadavg()[0], 2)}, "rounds": rounds,
                      "background_preemptions": after.get("kokorod_background_preemptions")}, indent=1))
    return 0 if rounds[2]["live"]["underruns"] <= rounds[0]["live"]["underruns"] else 1


if __name__ == "__main__":
    sys.exit(main())
