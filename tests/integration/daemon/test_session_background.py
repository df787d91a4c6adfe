"""Sessions with background requests (`"priority": "background"`): never
admitted or refused for capacity, never in the way of a live stream, counted
apart, and run in small chunks (fake engine, in-process peers)."""

from __future__ import annotations

import asyncio

from kokorod.protocol.messages import Audio, Chunk, Done, Error, Speak
from support.session_fakes import FakeSynth, RequestDaemon as Daemon, ended

BOOK = "This chapter is long, and nobody listens to it live. " * 12


async def test_a_background_request_runs_beside_a_full_house_and_a_live_stream_still_gets_the_slot() -> None:
    d = Daemon()  # one stream slot
    reader, live, late = [await d.connect(FakeSynth(delay_s=0.02)) for _ in range(3)]
    await reader.say(Speak("book", BOOK, final=True, priority="background"))
    await reader.wait_for(lambda e: isinstance(e, Audio) and e.utterance == "book")
    assert d.capacity.active == 0 and d.capacity.background == 1  # takes no slot, but is counted
    # The one slot is still free for a live stream...
    await live.say(Speak("talk", "Hello there, this is live. " * 4, final=True))
    await live.wait_for(lambda e: isinstance(e, Audio) and e.utterance == "talk")
    assert d.capacity.active == 1
    # ...and a second live stream is refused, while the background one is not.
    await late.say(Speak("x", "Me too.", final=True))
    refused = await late.wait_for(ended("x"))
    assert isinstance(refused, Error) and refused.code == "overloaded"
    assert isinstance(await live.wait_for(ended("talk"), 30), Done)
    assert isinstance(await reader.wait_for(ended("book"), 60), Done)
    assert d.capacity.background == 0 and d.capacity.active == 0
    assert d.metrics.underruns._value.get() == 0  # a background request never counts as an underrun
    assert d.metrics.background_audio._value.get() > 1.0
    assert not [e for e in reader.events if isinstance(e, Error)]
    await d.close()


async def test_background_chunks_are_small() -> None:
    d = Daemon()
    reader, listener = [await d.connect(FakeSynth(delay_s=0.0)) for _ in range(2)]
    text = ", ".join(["and the library opens at nine on weekdays"] * 20) + "."  # one long sentence
    await reader.say(Speak("book", text, final=True, priority="background"))
    await listener.say(Speak("live", text, final=True))
    await reader.wait_for(ended("book"), 60)
    # A live stream's chunks grow past it (no need to hear it all: it plays at 1x).
    await listener.wait_for(lambda e: isinstance(e, Chunk) and len(e.text) > 110, 30)
    book = [len(e.text) for e in reader.events if isinstance(e, Chunk)]
    assert len(book) >= 6 and max(book) <= 110  # a third of the language's longest chunk
    await d.close()


async def test_a_connection_with_a_background_request_still_needs_a_slot_for_live_speech() -> None:
    d = Daemon()
    peer, other = [await d.connect(FakeSynth(delay_s=0.02)) for _ in range(2)]
    await other.say(Speak("hold", "Holding the only slot for a while. " * 8, final=True))
    await other.wait_for(lambda e: isinstance(e, Audio))
    await peer.say(Speak("book", BOOK, final=True, priority="background", mode="queue"))
    await peer.say(Speak("talk", "And now live.", final=True, mode="queue"))
    refused = await peer.wait_for(ended("talk"))
    assert isinstance(refused, Error) and refused.code == "overloaded"
    assert isinstance(await peer.wait_for(ended("book"), 60), Done)
    await other.wait_for(ended("hold"), 60)
    assert d.capacity.active == 0
    await asyncio.sleep(0)
    await d.close()


async def test_live_speech_queued_after_a_book_does_not_wait_for_the_books_playback() -> None:
    """Nobody plays a background request at 1x, so a live utterance queued after
    it on the same connection starts once it is made, not ~40 s later."""
    d = Daemon()
    peer = await d.connect(FakeSynth(delay_s=0.0))
    await peer.say(Speak("book", BOOK, final=True, priority="background"))
    await peer.say(Speak("talk", "And now live.", final=True, mode="queue"))
    assert isinstance(await peer.wait_for(ended("book"), 30), Done)
    book_audio_s = sum(e.samples for e in peer.events if isinstance(e, Audio) and e.utterance == "book") / 24000
    assert book_audio_s > 20
    await peer.wait_for(lambda e: isinstance(e, Audio) and e.utterance == "talk", 10)  # far less than the book
    assert isinstance(await peer.wait_for(ended("talk"), 30), Done)
    await d.close()


# -- what admission learns from (kokorod.daemon.headroom) -----------------------------

async def test_lateness_the_engine_did_not_cause_teaches_admission_nothing() -> None:
    """Text that arrives after the listener's audio ran out (an LLM slower than
    speech) leaves a gap, counted as an underrun, but the margin stays put; a
    chunk the engine makes too slowly raises it."""
    from kokorod.daemon.admission import Capacity, RtfEstimator
    from kokorod.daemon.headroom import INITIAL_MARGIN, Headroom
    from support.session_fakes import start, stop

    est = RtfEstimator()
    est.seed(0.01, 1.0)
    capacity = Capacity(None, estimator=est, headroom=Headroom())
    synth = FakeSynth(delay_s=0.0)
    session, peer, task, sched = await start(synth, capacity=capacity)
    await peer.say(Speak("u", "One two.", final=False))
    await peer.wait_for(lambda e: isinstance(e, Audio))
    await asyncio.sleep(1.5)  # its audio has played out; the next text comes late
    await peer.say(Speak("u", " Three four.", final=True))
    await peer.wait_for(ended("u"), 10)
    assert session.s.metrics.underruns._value.get() >= 1
    assert capacity.headroom.late_events == 0 and capacity.headroom.margin == INITIAL_MARGIN
    # Now the engine is the slow one: the second chunk is ready only after the first played out.
    synth.delay_s = 1.5
    await peer.say(Speak("v", "One two. Three four five six seven eight nine ten eleven twelve.", final=True))
    await peer.wait_for(ended("v"), 30)
    assert capacity.headroom.late_events >= 1 and capacity.headroom.margin > INITIAL_MARGIN
    await stop(peer, task, sched)
