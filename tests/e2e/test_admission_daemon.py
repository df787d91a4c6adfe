"""Admission that holds, through a real daemon with the real model: several long
streams started at once are admitted only as far as every admitted one plays
without an underrun (the rest refused with a reason), and a background request
(a book) running beside a live stream never makes it underrun.

Underruns are measured the way bench/capacity.py does (stream_bench's Player:
playback at 1x from the first frame, a frame more than 5 ms after its play time
is an underrun) and by the daemon's own ``kokorod_underruns_total``. No wall-
clock budget is asserted beyond a bound on each test; the sizes keep each under
60 s on a CPU 3x slower than the reference box.

"Never underrun" can only hold where the engine can feed one stream at 1x with
admission's starting margin at all: a lone stream is always admitted (refusing
it would help no one), and on a CPU slower than that, or slowed that much by
other work while the test runs, it underruns whatever admission does. There
the underrun assertions are skipped, with the figures, after everything else
was checked.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from support.daemon import ROOT, DaemonProcess
from kokorod.daemon.headroom import INITIAL_MARGIN
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Audio, CapacityInfo, Done, Error, Ready, Speak

sys.path.insert(0, str(ROOT / "bench"))
from stream_bench import Player  # noqa: E402  (the benches' own underrun measurement)

pytestmark = pytest.mark.slow

# ~20 s of audio: long enough that chunks ramp to their full size and streams
# overlap for most of their length; short enough for the 60 s bound.
STREAM = ("The library opens at nine in the morning on weekdays. On weekends it opens an hour later, "
          "and it closes early on public holidays. Members can borrow up to ten books at a time, "
          "and they can keep them for three weeks. Our reading room is quiet, and the coffee shop "
          "next to it serves tea and small cakes until six in the evening.")
# ~25 s of audio, nobody listening live.
BOOK = ("Chapter one. The lighthouse keeper climbed the stairs every evening at dusk, counting the steps "
        "as his father had taught him. There were one hundred and twelve of them, and the wind sang "
        "through the narrow windows on the way up. At the top he cleaned the great lens, trimmed the "
        "wick, and watched the ships pass far out on the grey water until the morning came.")


def metrics(d: DaemonProcess) -> dict[str, float]:
    text = httpx.get(d.http + "/metrics", timeout=10).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def feeds_one_stream(cap: CapacityInfo, after: dict[str, float]) -> bool:
    """Whether the engine was fast enough, at the start and as measured while the
    test ran (a loaded CI box slows down mid-test), to feed a lone stream at 1x
    with admission's starting margin. The learnt margin itself is left out: a
    late stream raises it, and the gate must not excuse the lateness it judges."""
    assert cap.admission_rtf is not None and cap.utilisation is not None
    slowest = max(cap.admission_rtf, after["kokorod_admission_rtf"])
    return slowest * INITIAL_MARGIN <= cap.utilisation


async def listen(url: str, text: str, connected: list[int], start: asyncio.Event, priority: str | None = None,
                 after: asyncio.Event | None = None) -> dict[str, Any]:
    """Connect, wait for ``start``, speak ``text`` and play it at 1x."""
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None, open_timeout=60) as ws:
        ready = codec.decode_event(await ws.recv())
        assert isinstance(ready, Ready)
        connected[0] += 1
        await start.wait()
        await ws.send(codec.encode_message(Speak("u", text, final=True, priority=priority)))  # type: ignore[arg-type]
        player, audio_s = Player(), 0.0
        while True:
            event = codec.decode_event(await asyncio.wait_for(ws.recv(), 60))
            if isinstance(event, Audio):
                if after is not None and not after.is_set():
                    after.set()
                player.on_audio(event, time.perf_counter())
                audio_s += event.samples / event.sample_rate
            elif isinstance(event, (Done, Error)) or type(event).__name__ == "Cancelled":
                return {"end": event, "underruns": player.underruns, "stall_s": round(player.stall_s, 3),
                        "audio_s": round(audio_s, 2)}


async def test_long_streams_started_at_once_are_admitted_only_as_far_as_none_underruns() -> None:
    d = DaemonProcess()
    try:
        codec = MsgpackCodec()
        async with websockets.connect(d.url, max_size=None) as ws:
            cap = codec.decode_event(await ws.recv()).capacity
        assert cap is not None and cap.max_streams is not None and cap.margin is not None
        clients = cap.max_streams + 2
        start, connected = asyncio.Event(), [0]
        tasks = [asyncio.create_task(listen(d.url, STREAM, connected, start)) for _ in range(clients)]
        while connected[0] < clients:
            await asyncio.sleep(0.05)
        start.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        after = metrics(d)
    finally:
        d.stop()
    admitted = [r for r in results if not isinstance(r["end"], Error)]
    refused = [r for r in results if isinstance(r["end"], Error)]
    figures = (f"ready: RTF {cap.rtf}, admission RTF {cap.admission_rtf} x margin {cap.margin}, max_streams "
               f"{cap.max_streams}; after: admission RTF {after['kokorod_admission_rtf']:.3f} x margin "
               f"{after['kokorod_admission_margin']:.3f}; {len(admitted)} admitted, underruns {[r['underruns'] for r in admitted]}, "
               f"stalled {[r['stall_s'] for r in admitted]} s")
    print(figures)
    # The excess is refused, each with a reason; what was admitted is spoken to the end.
    assert 1 <= len(admitted) <= cap.max_streams and len(refused) >= 2, figures
    for r in refused:
        assert r["end"].code == "overloaded" and "capacity" in r["end"].message, r["end"]
    assert all(isinstance(r["end"], Done) and r["audio_s"] > 12 for r in admitted), results
    if not feeds_one_stream(cap, after):
        pytest.skip(f"this CPU cannot feed one stream at 1x with its margin ({figures}); underruns not judged")
    assert all(r["underruns"] == 0 for r in admitted), figures
    assert after["kokorod_underruns_total"] == 0, figures


async def test_a_book_in_the_background_never_makes_a_live_stream_underrun() -> None:
    d = DaemonProcess()
    try:
        codec = MsgpackCodec()
        async with websockets.connect(d.url, max_size=None) as ws:
            cap = codec.decode_event(await ws.recv()).capacity
        assert cap is not None
        go, book_started, connected = asyncio.Event(), asyncio.Event(), [0]
        book = asyncio.create_task(listen(d.url, BOOK, connected, go, priority="background", after=book_started))
        live_start = asyncio.Event()
        live = asyncio.create_task(listen(d.url, STREAM, connected, live_start))
        while connected[0] < 2:
            await asyncio.sleep(0.05)
        go.set()
        await asyncio.wait_for(book_started.wait(), 60)  # the book is being made...
        during = metrics(d)
        live_start.set()  # ...when a live stream starts beside it
        live_result, book_result = await asyncio.wait_for(asyncio.gather(live, book), 60)
        after = metrics(d)
    finally:
        d.stop()
    figures = (f"ready: RTF {cap.rtf}, admission RTF {cap.admission_rtf} x margin {cap.margin}; after: admission "
               f"RTF {after['kokorod_admission_rtf']:.3f}; live underruns "
               f"{live_result['underruns']} (stalled {live_result['stall_s']} s), background preemptions "
               f"{after.get('kokorod_background_preemptions')}")
    print(figures)
    assert during["kokorod_background_requests"] == 1 and during["kokorod_active_streams"] == 0
    assert isinstance(book_result["end"], Done) and book_result["audio_s"] > 15, book_result
    assert isinstance(live_result["end"], Done) and live_result["audio_s"] > 12, live_result
    assert after["kokorod_background_audio_seconds_total"] == pytest.approx(book_result["audio_s"], abs=0.1)
    assert after["kokorod_background_requests"] == 0 and after["kokorod_background_engine_jobs"] == 0
    if not feeds_one_stream(cap, after):
        pytest.skip(f"this CPU cannot feed one stream at 1x with its margin ({figures}); underruns not judged")
    assert live_result["underruns"] == 0, figures
    assert after["kokorod_underruns_total"] == 0, figures
