"""LocalPeer: the in-process session front-ends adapt onto (fake engine, fast)."""

from __future__ import annotations

import asyncio

from kokorod.config import Limits, ServerConfig
from kokorod.daemon.local_peer import LocalPeer
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Done, Error, Ready, Speak, WordEvent
from kokorod.daemon.scheduler import engine_threads

from support.session_fakes import FakeSynth, collect_until as collect, local_services as services




async def test_speak_gives_ready_audio_words_and_done() -> None:
    svc, sched = await services(FakeSynth())
    async with LocalPeer(svc) as peer:
        peer.send(Speak("u1", "one two three four, five six.", final=True))
        events = await collect(peer, Done, "u1")
    assert isinstance(events[0], Ready)
    words = [e.text for e in events if isinstance(e, WordEvent)]
    assert words == ["one", "two", "three", "four,", "five", "six."] or len(words) == 6
    audio = [e for e in events if isinstance(e, Audio)]
    assert sum(a.samples for a in audio) == events[-1].samples > 0
    await sched.aclose()


async def test_bad_message_is_an_error_event_not_a_crash() -> None:
    svc, sched = await services(FakeSynth())
    async with LocalPeer(svc) as peer:
        peer.send(Speak("u1", "hello there", speed=99.0, final=True))  # validated as on the wire
        peer.send(Speak("u2", "still alive here.", voice="nobody", final=True))
        peer.send(Speak("u3", "still alive here.", final=True))
        events = await collect(peer, Done, "u3")
    errors = [e for e in events if isinstance(e, Error)]
    assert [e.utterance for e in errors] == ["u1", "u2"]
    await sched.aclose()


async def test_cancel_and_disconnect_stop_synthesis_and_leave_nothing_behind() -> None:
    synth = FakeSynth(delay_s=0.5)
    svc, sched = await services(synth)
    async with LocalPeer(svc) as peer:
        peer.send(Speak("u1", "word " * 200, final=True))
        async for event in peer.events():
            if isinstance(event, Audio):
                break
        peer.send(Cancel("u1"))
        events = await collect(peer, Cancelled, "u1")
        assert events[-1].reason == "cancel"
        calls = synth.calls
        peer.send(Speak("u2", "word " * 200, final=True))
        async for event in peer.events():
            if isinstance(event, Audio):
                break
    # Leaving the block is a disconnect: no more synthesis starts.
    await asyncio.sleep(0.6)
    assert synth.calls <= calls + 3
    assert not svc.capacity.active
    await sched.aclose()
    assert not engine_threads()


async def test_an_adapter_that_stops_reading_is_a_slow_consumer() -> None:
    config = ServerConfig(limits=Limits(max_send_buffer_s=1.0))
    svc, sched = await services(FakeSynth(), config)
    async with LocalPeer(svc) as peer:
        peer.send(Speak("u1", "word " * 400, final=True))
        await asyncio.sleep(3.0)  # not reading: the queue and then the outbox fill
        events = await collect(peer, Cancelled, "u1")
        assert events[-1].reason == "slow_consumer"
    await sched.aclose()
