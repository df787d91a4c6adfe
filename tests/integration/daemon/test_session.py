"""Session against an in-process peer, with a fake synthesizer that makes tones.

The fake exists only to test scheduling and lifecycle fast and
deterministically; everything audible is tested against the real model in e2e/.
"""

from __future__ import annotations

import asyncio

from kokorod.daemon.admission import RtfEstimator
from kokorod.config import Limits, ServerConfig
from kokorod.metrics import Metrics
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Config, Done, Error, Ready, Speak, Warning, WordEvent
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.admission import Capacity
from kokorod.daemon.session import Services, Session
from kokorod.daemon.workers import WorkerSynthesizers

from support.session_fakes import (  # noqa: F401  (re-exported for tests written before the move)
    WORD_S, FakeG2P, FakeSynth, FakeVoices, PacedSynth, Peer, seeded, start, stop, utt_events,
)


async def test_speak_produces_ordered_events() -> None:
    session, peer, task, sched = await start(FakeSynth())
    await peer.say(Speak("u", "One two three. Four five six seven.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done))
    events = utt_events(peer, "u")
    assert [w.text for w in events if isinstance(w, WordEvent)] == ["One", "two", "three", "Four", "five", "six", "seven"]
    assert isinstance(events[-1], Done)
    await stop(peer, task, sched)


async def test_barge_in_drops_everything_old() -> None:
    session, peer, task, sched = await start(FakeSynth(delay_s=0.05))
    await peer.say(Speak("old", "word " * 40 + ". More words here. " * 10, final=True))
    await peer.wait_for(lambda e: isinstance(e, Audio))
    await peer.say(Speak("new", "Fresh start now.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "new")
    idx = next(i for i, e in enumerate(peer.events) if isinstance(e, Cancelled))
    assert peer.events[idx].utterance == "old" and peer.events[idx].reason == "barge_in"
    assert all(getattr(e, "utterance", None) != "old" for e in peer.events[idx + 1 :])
    await stop(peer, task, sched)


async def test_lookahead_is_bounded_in_seconds() -> None:
    synth = FakeSynth(delay_s=0.001)
    config = ServerConfig(max_ahead_s=2.0)
    session, peer, task, sched = await start(synth, config=config)
    text = " ".join(f"Sentence number {i} is here." for i in range(60))  # ~18 s of "audio"
    await peer.say(Speak("u", text, final=True))
    await asyncio.sleep(1.0)
    # After ~1 s of wall time the listener has heard ~1 s: at most 2 s more may exist,
    # plus one chunk of slack.
    assert synth.audio_s <= 1.0 + 2.0 + 2.5, synth.audio_s
    await peer.say(Cancel())
    await stop(peer, task, sched)


async def test_slow_consumer_is_cancelled_not_buffered_forever() -> None:
    synth = FakeSynth(delay_s=0.001)
    config = ServerConfig(max_ahead_s=1000.0, limits=Limits(max_send_buffer_s=3.0))
    peer = Peer(block_sends=True)  # never reads, so start() can't wait for Ready
    sched = EngineScheduler()
    sched.start()
    services = Services(config, sched, synth, Metrics(), Capacity(4), ("af_heart",))  # type: ignore[arg-type]
    session = Session(services, MsgpackCodec(), peer, "slow")
    task = asyncio.create_task(session.run(peer.frames()))
    await peer.say(Speak("u", " ".join(f"Sentence number {i} is here." for i in range(100)), final=True))
    await asyncio.sleep(1.0)
    assert session.outbox.audio_s <= 3.0 + 2.0  # bounded: cancelled once past 3 s
    assert "u" not in session.utterances
    peer.block.set()  # the client reads again and learns why
    await peer.wait_for(lambda e: isinstance(e, Cancelled) and e.reason == "slow_consumer")
    await stop(peer, task, sched)


async def test_ready_carries_the_daemons_capacity() -> None:
    """The session itself puts the measured capacity into ``ready`` (no codec
    wrapper): every front-end's peer sees the same."""
    session, peer, task, sched = await start(FakeSynth(), capacity=Capacity(3))
    ready = next(e for e in peer.events if isinstance(e, Ready))
    assert ready.capacity is not None and ready.capacity.max_streams == 3 and ready.capacity.active == 0
    await stop(peer, task, sched)
    await sched.aclose()


async def test_engine_failure_is_an_error_for_that_utterance_only() -> None:
    session, peer, task, sched = await start(FakeSynth(fail_on="explode"))
    await peer.say(Speak("bad", "Please explode now.", final=True))
    error = await peer.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "engine_error" and error.utterance == "bad"
    await peer.say(Speak("good", "This one works.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "good")
    await stop(peer, task, sched)


async def test_disconnect_mid_synthesis_leaves_no_tasks() -> None:
    synth = FakeSynth(delay_s=0.2)
    session, peer, task, sched = await start(synth)
    await peer.say(Speak("u", "Long text here. " * 20, final=True))
    await peer.wait_for(lambda e: isinstance(e, Audio))
    await stop(peer, task, sched)
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith(("kokorod-utt", "kokorod-writer", "kokorod-dispatcher"))]
    assert leftover == []
    assert session.utterances == {}


async def test_capacity_refuses_new_work_early() -> None:
    capacity = Capacity(1)
    sched = EngineScheduler()
    _s1, p1, t1, _ = await start(FakeSynth(delay_s=0.05), capacity=capacity, scheduler=sched)
    _s2, p2, t2, _ = await start(FakeSynth(), capacity=capacity, scheduler=sched)
    await p1.say(Speak("a", "Sentence one. " * 20, final=True))
    await p1.wait_for(lambda e: isinstance(e, Audio))
    await p2.say(Speak("b", "Me too.", final=True))
    error = await p2.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "overloaded" and error.utterance == "b"
    # A refused id stays refused: its later fragments must not start it mid-text.
    await p2.say(Speak("b", " more of the same answer.", final=True))
    again = await p2.wait_for(lambda e: isinstance(e, Error) and e.code == "unknown_utterance")
    # It says why, and that the fragment's text was not spoken.
    assert again.utterance == "b" and "refused: overloaded" in again.message and "25 characters not spoken" in again.message
    await p1.say(Cancel())
    await p1.wait_for(lambda e: isinstance(e, Cancelled))
    await p2.say(Speak("c", "Now there is room.", final=True))
    await p2.wait_for(lambda e: isinstance(e, Done) and e.utterance == "c")
    await p1.close()
    await p2.close()
    await asyncio.gather(t1, t2)
    await sched.aclose()


async def test_unknown_voice_and_queue_limit() -> None:
    config = ServerConfig(limits=Limits(max_utterances=2))
    session, peer, task, sched = await start(FakeSynth(delay_s=0.05), config=config)
    await peer.say(Speak("v", "hi", voice="xx_nope", final=True))
    assert (await peer.wait_for(lambda e: isinstance(e, Error))).code == "unknown_voice"
    for uid in ("q1", "q2", "q3"):
        await peer.say(Speak(uid, "Queued words here.", final=True, mode="queue"))
    error = await peer.wait_for(lambda e: isinstance(e, Error) and e.utterance == "q3")
    assert error.code == "too_many_utterances"
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "q2")
    await stop(peer, task, sched)


async def test_stalled_stream_speaks_its_finished_sentence() -> None:
    """An LLM that pauses after a sentence (a tool call, say) is not left silent."""
    session, peer, task, sched = await start(FakeSynth())
    await peer.say(Speak("u", "Let me check that for you."))  # complete, but not final
    words = await peer.wait_for(lambda e: isinstance(e, WordEvent) and e.text == "you", timeout=3)
    assert words.utterance == "u"
    await peer.say(Speak("u", " It costs $3."))  # ambiguous tail: keeps waiting
    await asyncio.sleep(1.0)
    assert not any(isinstance(e, WordEvent) and e.text == "costs" for e in peer.events)
    await peer.say(Speak("u", "50 today.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done))
    await stop(peer, task, sched)


async def test_each_utterance_speaks_its_voices_language_unless_told() -> None:
    synth = FakeSynth()
    session, peer, task, sched = await start(synth)
    await peer.say(Speak("a", "One two.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "a")
    await peer.say(Speak("b", "Uno dos.", lang="es", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "b")
    assert synth.langs == ["en-us", "es"]
    await stop(peer, task, sched)


async def test_unspeakable_words_are_warned_before_the_audio_that_follows() -> None:
    session, peer, task, sched = await start(FakeSynth())
    await peer.say(Speak("u", "Say #glyph here.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done))
    events = utt_events(peer, "u")
    warning = next(e for e in events if isinstance(e, Warning))
    assert warning.code == "unspeakable" and warning.text == "#glyph"
    assert [w.text for w in events if isinstance(w, WordEvent)] == ["Say", "here"]
    await stop(peer, task, sched)


async def test_text_with_no_sound_ends_in_nothing_to_speak_not_done() -> None:
    session, peer, task, sched = await start(FakeSynth())
    await peer.say(Speak("u", "#only #glyphs.", final=True))
    error = await peer.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "nothing_to_speak" and error.utterance == "u"
    events = utt_events(peer, "u")
    assert not any(isinstance(e, (Done, Audio)) for e in events)
    assert isinstance(events[0], Warning)
    await peer.say(Speak("e", "", final=True))  # empty: the same, never a bare done
    assert (await peer.wait_for(lambda e: isinstance(e, Error) and e.utterance == "e")).code == "nothing_to_speak"
    assert "u" not in session.utterances and session.s.capacity.active == 0
    await stop(peer, task, sched)


async def test_missing_language_is_refused_with_its_fix() -> None:
    session, peer, task, sched = await start(FakeSynth(missing=("ja",)))
    await peer.say(Speak("j", "こんにちは。", lang="ja", final=True))
    error = await peer.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "language_unavailable" and error.utterance == "j" and "pip install it" in error.message
    await peer.say(Speak("j", "more", final=True))  # refused ids stay refused
    assert (await peer.wait_for(lambda e: isinstance(e, Error) and e.code == "unknown_utterance")).utterance == "j"
    await stop(peer, task, sched)


# -- measured admission ---------------------------------------------------------------


async def test_a_slow_engine_refuses_the_second_stream() -> None:
    """The estimate comes from the jobs the session runs; past it, a second
    stream is refused while the first plays, and admitted once it is done."""
    est = RtfEstimator()
    capacity = Capacity(None, estimator=est, utilisation=0.8)
    sched = EngineScheduler()
    synth = WorkerSynthesizers([PacedSynth(rtf=0.6)], est)
    _s1, p1, t1, _ = await start(synth, capacity=capacity, scheduler=sched)  # type: ignore[arg-type]
    _s2, p2, t2, _ = await start(synth, capacity=capacity, scheduler=sched)  # type: ignore[arg-type]
    await p1.say(Speak("first", "One two three four.", final=True))  # nothing measured yet: admitted
    await p1.wait_for(lambda e: isinstance(e, Done) and e.utterance == "first")
    assert est.observations >= 1 and est.rtf() >= 0.55  # measured, never below what the fake takes
    await p1.say(Speak("a", "Sentence number one is here. " * 20, final=True))
    await p1.wait_for(lambda e: isinstance(e, Audio) and e.utterance == "a")
    await p2.say(Speak("b", "Me too.", final=True))
    error = await p2.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "overloaded" and error.utterance == "b"
    assert capacity.plan().max_streams == 1 and capacity.active == 1
    await p1.say(Cancel())
    await p1.wait_for(lambda e: isinstance(e, Cancelled))
    await p2.say(Speak("c", "Now there is room.", final=True))
    await p2.wait_for(lambda e: isinstance(e, Done) and e.utterance == "c")
    await p1.close()
    await p2.close()
    await asyncio.gather(t1, t2)
    await sched.aclose()


async def test_a_fast_engine_admits_several_streams_at_once() -> None:
    est = RtfEstimator()
    capacity = Capacity(None, estimator=est, utilisation=0.8)
    sched = EngineScheduler()
    synth = WorkerSynthesizers([PacedSynth(rtf=0.01)], est)
    started = [await start(synth, capacity=capacity, scheduler=sched) for _ in range(3)]  # type: ignore[arg-type]
    await started[0][1].say(Speak("warm", "One two three four.", final=True))
    await started[0][1].wait_for(lambda e: isinstance(e, Done))
    for i, (_s, peer, _t, _) in enumerate(started):
        await peer.say(Speak(f"u{i}", "Sentence number one is here. " * 6, final=True))
    for i, (_s, peer, _t, _) in enumerate(started):
        await peer.wait_for(lambda e, i=i: isinstance(e, Done) and e.utterance == f"u{i}", timeout=30)
        assert not any(isinstance(e, Error) for e in peer.events)
    for _s, peer, task, _ in started:
        await peer.close()
        await task
    await sched.aclose()


async def test_speed_counts_in_admission() -> None:
    """With a measured slope of 1 (all cost per phoneme), a stream at 2x needs
    twice the engine time of one at 1x; slow speech counts as 1x."""
    capacity = Capacity(None, estimator=seeded(0.3, slope=1.0), utilisation=0.8)
    sched = EngineScheduler()
    synth = FakeSynth(delay_s=0.05)
    peers = [await start(synth, capacity=capacity, scheduler=sched) for _ in range(3)]
    (_a, pa, ta, _), (_b, pb, tb, _), (_c, pc, tc, _) = peers
    await pa.say(Speak("fast", "Sentence number one is here. " * 20, speed=2.0, final=True))  # 0.6
    await pa.wait_for(lambda e: isinstance(e, Audio))
    await pb.say(Speak("b1", "At normal speed.", final=True))  # 0.6 + 0.3 > 0.8
    assert (await pb.wait_for(lambda e: isinstance(e, Error))).code == "overloaded"
    await pc.say(Speak("c1", "Slowly now.", speed=0.5, final=True))  # counted as 1x: refused too
    assert (await pc.wait_for(lambda e: isinstance(e, Error))).code == "overloaded"
    await pa.say(Cancel())
    await pa.wait_for(lambda e: isinstance(e, Cancelled))
    await pb.say(Speak("b2", "Sentence number one is here. " * 20, final=True))  # 0.3
    await pb.wait_for(lambda e: isinstance(e, Audio) and e.utterance == "b2")
    await pc.say(Speak("c2", "Slowly now.", speed=0.5, final=True))  # 0.3 + 0.3 fits
    await pc.wait_for(lambda e: isinstance(e, Done) and e.utterance == "c2")
    assert capacity.active == 1  # b2 still speaking
    await pb.say(Cancel())
    for peer, task in ((pa, ta), (pb, tb), (pc, tc)):
        await peer.close()
        await task
    await sched.aclose()


async def test_barge_in_keeps_the_connections_slot() -> None:
    est = seeded(0.4)
    capacity = Capacity(None, estimator=est, utilisation=0.8)  # two streams
    sched = EngineScheduler()
    synth = FakeSynth(delay_s=0.05)
    (_a, pa, ta, _), (_b, pb, tb, _), (_c, pc, tc, _) = [await start(synth, capacity=capacity, scheduler=sched) for _ in range(3)]
    for peer, uid in ((pa, "a1"), (pb, "b1")):
        await peer.say(Speak(uid, "Sentence number one is here. " * 20, final=True))
        await peer.wait_for(lambda e, uid=uid: isinstance(e, Audio) and e.utterance == uid)
    est.seed(5.0, 10.0)  # the machine got busier: 0.5, only one stream would fit now
    await pa.say(Speak("a2", "Actually, stop.", final=True))  # interrupt mode: replaces a1
    await pa.wait_for(lambda e: isinstance(e, Done) and e.utterance == "a2")
    assert not any(isinstance(e, Error) for e in pa.events)
    await pc.say(Speak("c1", "Can I come in?", final=True))  # a newcomer is checked
    assert (await pc.wait_for(lambda e: isinstance(e, Error))).code == "overloaded"
    await pb.say(Cancel())
    for peer, task in ((pa, ta), (pb, tb), (pc, tc)):
        await peer.close()
        await task
    await sched.aclose()


async def test_two_engine_workers_share_the_streams() -> None:
    """Each worker synthesizes with its own synthesizer; capacity counts workers."""
    capacity = Capacity(None, estimator=seeded(0.6), workers=2, utilisation=0.8)  # 1.6 / 0.6: two streams
    sched = EngineScheduler(workers=2)
    fakes = [FakeSynth(delay_s=0.05), FakeSynth(delay_s=0.05)]
    synth = WorkerSynthesizers(fakes)
    peers = [await start(synth, capacity=capacity, scheduler=sched) for _ in range(3)]  # type: ignore[arg-type]
    for i, (_s, peer, _t, _) in enumerate(peers[:2]):
        await peer.say(Speak(f"u{i}", "Sentence number one is here. " * 8, final=True))
    await peers[2][1].say(Speak("x", "Room for me?", final=True))
    assert (await peers[2][1].wait_for(lambda e: isinstance(e, Error))).code == "overloaded"
    for i, (_s, peer, _t, _) in enumerate(peers[:2]):
        await peer.wait_for(lambda e, i=i: isinstance(e, Done) and e.utterance == f"u{i}", timeout=30)
    assert fakes[0].calls > 0 and fakes[1].calls > 0  # both engines worked
    for _s, peer, task, _ in peers:
        await peer.close()
        await task
    await sched.aclose()


async def test_a_non_reader_flooding_non_audio_events_is_closed_at_the_byte_budget() -> None:
    # Errors, like warnings or phonemes answers, are no audio: max_send_buffer_s never
    # sees them. The byte budget does, and the connection is closed, its memory freed.
    config = ServerConfig(limits=Limits(max_connection_buffer_bytes=20_000))
    peer = Peer(block_sends=True)  # never reads
    sched = EngineScheduler()
    sched.start()
    metrics = Metrics()
    services = Services(config, sched, FakeSynth(), metrics, Capacity(4), ("af_heart",))  # type: ignore[arg-type]
    session = Session(services, MsgpackCodec(), peer, "flood")
    task = asyncio.create_task(session.run(peer.frames()))
    for i in range(300):  # each answered with an error event of ~300 bytes
        await peer.say(Config(voice=f"no_such_voice_{i}"))
    await asyncio.wait_for(task, 10)  # closed by the session itself (Peer.close ends the frames)
    assert session.outbox.nbytes == 0 and len(session.outbox) == 0
    assert metrics.connections_cut.labels(reason="buffer_bytes")._value.get() == 1
    await sched.aclose()
