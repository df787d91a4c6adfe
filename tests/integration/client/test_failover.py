"""KokorodClient failover and resume against scripted fake daemons (fast).

``FakeDaemon`` speaks the protocol with a toy synthesizer: once an utterance is
final it sends a chunk, then per word a ``word`` event (0.1 s each) followed by
its 0.1 s of audio, then ``done``. It can refuse speaks with ``overloaded`` and
abort its transport (no close frame, as a killed daemon) after N events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import serve

from kokorod.client import (
    Audio, Cancelled, Chunk, ConnectionLost, Done, Error, KokorodClient, Resumed, WordEvent, connect,
)
from kokorod.errors import InputError
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Cancel, Config, Configured, Limits, Ready, Speak

from support.client_timeline import check_timeline, words_of_text as _words

RATE = 24000
WORD_SAMPLES = RATE // 10


def _ready() -> Ready:
    return Ready(version="0", session="fake", encoding="msgpack", sample_rate=RATE, format="pcm_s16le",
                 frame_ms=100, voice="af_heart", speed=1.0, voices=("af_heart",),
                 limits=Limits(100000, 262144, 16, 200))


@dataclass
class FakeDaemon:
    overloaded: int = 0          # refuse this many creating speaks
    die_after_events: int | None = None  # abort the transport after this many utterance events
    frames_per_word: int = 1
    speaks: list[Speak] = field(default_factory=list)
    configs: list[Config] = field(default_factory=list)
    connections: int = 0
    url: str = ""

    async def handler(self, ws: Any) -> None:
        codec = MsgpackCodec()
        self.connections += 1
        await ws.send(codec.encode(_ready()))
        texts: dict[str, str] = {}
        sent = 0
        async for frame in ws:
            msg = codec.decode(frame)
            if isinstance(msg, Config):
                self.configs.append(msg)
                await ws.send(codec.encode(Configured("af_heart", 1.0, "pcm_s16le", RATE, 100, "interrupt")))
                continue
            if isinstance(msg, Cancel):
                for uid in list(texts):
                    await ws.send(codec.encode(Cancelled(uid, "cancel")))
                    texts.pop(uid)
                continue
            assert isinstance(msg, Speak)
            self.speaks.append(msg)
            if msg.utterance not in texts and self.overloaded > 0:
                self.overloaded -= 1
                await ws.send(codec.encode(Error("overloaded", "at capacity", msg.utterance)))
                continue
            texts[msg.utterance] = texts.get(msg.utterance, "") + msg.text
            if not msg.final:
                continue
            uid, text = msg.utterance, texts.pop(msg.utterance)
            words = _words(text)
            events: list[Any] = [Chunk(uid, 0, text, 0.0, len(words) * 0.1)]
            n = WORD_SAMPLES // self.frames_per_word
            for i, w in enumerate(words):
                events.append(WordEvent(uid, i, w, i * 0.1, (i + 1) * 0.1))
                for k in range(self.frames_per_word):
                    seq = i * self.frames_per_word + k
                    events.append(Audio(uid, seq, seq * n, n, RATE, "pcm_s16le", b"\x01\x00" * n))
            events.append(Done(uid, len(words) * 0.1, len(words) * WORD_SAMPLES))
            for event in events:
                if self.die_after_events is not None and sent >= self.die_after_events:
                    self.die_after_events = None  # only once: the next connection serves
                    ws.transport.abort()
                    return
                await ws.send(codec.encode(event))
                sent += 1


async def _serve(*daemons: FakeDaemon) -> list[Any]:
    servers = []
    for d in daemons:
        server = await serve(d.handler, "127.0.0.1", 0)
        d.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/stream"
        servers.append(server)
    return servers


async def _close(servers: list[Any]) -> None:
    for s in servers:
        s.close()
        await s.wait_closed()


async def test_overloaded_is_retried_on_the_next_url() -> None:
    busy, free = FakeDaemon(overloaded=1), FakeDaemon()
    servers = await _serve(busy, free)
    try:
        async with connect([busy.url, free.url], backoff_base_s=0.01) as client:
            assert client.url == busy.url
            uid = await client.speak("One two three.")
            events = [e async for e in client.stream(uid)]
            assert client.url == free.url
    finally:
        await _close(servers)
    assert not any(isinstance(e, (Error, Resumed)) for e in events)  # transparent: nothing had been heard
    assert all(getattr(e, "utterance", uid) == uid for e in events)
    check_timeline(events, "One two three.")
    assert [s.text for s in free.speaks] == ["One two three."] and free.speaks[0].final


async def test_overloaded_everywhere_surfaces_after_bounded_retries() -> None:
    busy = FakeDaemon(overloaded=100)
    servers = await _serve(busy)
    try:
        async with connect(busy.url, max_retries=3, backoff_base_s=0.01) as client:
            uid = await client.speak("Hello.", utterance="u1")
            events = [e async for e in client.stream(uid)]
            # The next utterance gets retries of its own.
            again = [e async for e in client.stream(await client.speak("Again."))]
    finally:
        await _close(servers)
    assert len(events) == 1 and isinstance(events[0], Error) and events[0].code == "overloaded"
    assert events[0].utterance == "u1"
    # Each: the first try, then max_retries more on new connections (the second starts on the last one).
    assert isinstance(again[-1], Error) and len(busy.speaks) == 8 and busy.connections == 7
    assert len({s.utterance for s in busy.speaks[:4]}) == 4  # a fresh id each time (ids are not reused)


async def test_lost_mid_utterance_resumes_on_the_other_daemon() -> None:
    text = "Alpha bravo charlie delta echo foxtrot."
    # Chunk, W0, A0, W1, A1, W2 then the daemon dies: "charlie" was announced, not heard.
    first, second = FakeDaemon(die_after_events=6), FakeDaemon()
    servers = await _serve(first, second)
    try:
        async with connect([first.url, second.url]) as client:
            uid = await client.speak(text, utterance="u1")
            events = [e async for e in client.stream(uid)]
    finally:
        await _close(servers)
    resumed = [e for e in events if isinstance(e, Resumed)]
    assert len(resumed) == 1 and resumed[0].url == second.url and resumed[0].utterance == "u1"
    assert resumed[0].at_s == pytest.approx(0.2) and resumed[0].word_index == 2
    assert [s.text for s in second.speaks] == ["charlie delta echo foxtrot."]
    assert second.speaks[0].utterance != "u1"  # a fresh daemon-side id...
    assert all(getattr(e, "utterance") == "u1" for e in events)  # ...never seen by the app
    check_timeline(events, text)
    words = [e for e in events if isinstance(e, WordEvent)]
    assert [w.text for w in words] == ["Alpha", "bravo", "charlie", "charlie", "delta", "echo", "foxtrot"]
    assert words[3].index == 2 and words[3].start == pytest.approx(0.2)  # replaces the unheard one


async def test_markup_is_resent_whole() -> None:
    text = "Meet [Zorblax](/zˈɔɹblæks/) and **his** friends."
    first, second = FakeDaemon(die_after_events=4), FakeDaemon()  # Chunk W0 A0 W1, dies
    servers = await _serve(first, second)
    try:
        async with connect([first.url, second.url]) as client:
            uid = await client.speak(text)
            events = [e async for e in client.stream(uid)]
    finally:
        await _close(servers)
    assert [s.text for s in second.speaks] == ["[Zorblax](/zˈɔɹblæks/) and **his** friends."]
    check_timeline(events, text)


async def test_streaming_producer_keeps_sending_after_failover() -> None:
    first, second = FakeDaemon(), FakeDaemon()
    servers = await _serve(first, second)
    gate = asyncio.Event()

    async def tokens():  # type: ignore[no-untyped-def]
        for piece in ["Hel", "lo th", "ere my"]:
            yield piece
        await gate.wait()
        for piece in [" fri", "end."]:
            yield piece

    try:
        async with connect([first.url, second.url]) as client:
            sender = asyncio.create_task(client.speak(tokens(), utterance="u1"))
            while len(first.speaks) < 3:
                await asyncio.sleep(0.01)
            servers[0].close()  # the first daemon goes away: its connections are closed
            await servers[0].wait_closed()
            while client.url != second.url:
                await asyncio.sleep(0.01)
            gate.set()
            await sender
            events = [e async for e in client.stream("u1")]
    finally:
        await _close(servers[1:])
    assert "".join(s.text for s in second.speaks) == "Hello there my friend."
    assert second.speaks[-1].final
    check_timeline(events, "Hello there my friend.")


async def test_queued_utterances_are_replayed_in_order_and_config_is_restored() -> None:
    first, second = FakeDaemon(die_after_events=2), FakeDaemon()
    servers = await _serve(first, second)
    try:
        async with connect([first.url, second.url]) as client:
            await client.configure(frame_ms=40)
            a = await client.speak("One two.", utterance="a")
            b = await client.speak("Three four.", utterance="b", mode="queue")
            got_a = [e async for e in client.stream(a)]
            got_b = [e async for e in client.stream(b)]
    finally:
        await _close(servers)
    assert [c.frame_ms for c in second.configs] == [40]
    assert [(s.text, s.mode) for s in second.speaks] == [("One two.", "queue"), ("Three four.", "queue")]
    check_timeline(got_a, "One two.")
    check_timeline(got_b, "Three four.")
    assert not any(isinstance(e, Resumed) for e in got_b)  # nothing of it had been delivered


async def test_without_failover_a_loss_is_connection_lost() -> None:
    first, second = FakeDaemon(die_after_events=3), FakeDaemon()
    servers = await _serve(first, second)
    try:
        client = await KokorodClient.connect([first.url, second.url], failover=False)
        uid = await client.speak("One two three.")
        with pytest.raises(ConnectionLost):
            async for _ in client.stream(uid):
                pass
        await client.close()
    finally:
        await _close(servers)
    assert second.speaks == []


async def test_everything_heard_ends_without_speaking_again() -> None:
    first, second = FakeDaemon(die_after_events=5), FakeDaemon()  # Chunk W0 A0 W1 A1: all heard, no done
    servers = await _serve(first, second)
    try:
        async with connect([first.url, second.url]) as client:
            uid = await client.speak("One two.")
            events = [e async for e in client.stream(uid)]
    finally:
        await _close(servers)
    assert second.speaks == []
    assert isinstance(events[-1], Done) and events[-1].samples == 2 * WORD_SAMPLES


async def test_the_first_url_down_connects_to_the_next() -> None:
    from support.daemon import free_port

    up = FakeDaemon()
    servers = await _serve(up)
    try:
        async with connect([f"ws://127.0.0.1:{free_port()}/v1/stream", up.url]) as client:
            assert client.url == up.url
            result = await client.synthesize("Just one.")
    finally:
        await _close(servers)
    assert [w.text for w in result.words] == ["Just", "one"]


async def test_a_word_cut_in_the_middle_is_spoken_again_with_its_index() -> None:
    # Chunk W0 A0 A0' W1 A1, then dies: half of "bravo" was received.
    first, second = FakeDaemon(die_after_events=6, frames_per_word=2), FakeDaemon()
    servers = await _serve(first, second)
    try:
        async with connect([first.url, second.url]) as client:
            uid = await client.speak("Alpha bravo charlie.")
            events = [e async for e in client.stream(uid)]
    finally:
        await _close(servers)
    seam = next(e for e in events if isinstance(e, Resumed))
    assert seam.at_s == pytest.approx(0.15) and seam.word_index == 1
    assert [s.text for s in second.speaks] == ["bravo charlie."]
    words = [e for e in events if isinstance(e, WordEvent)]
    assert [(w.index, w.text) for w in words] == [(0, "Alpha"), (1, "bravo"), (1, "bravo"), (2, "charlie")]
    assert words[2].start == pytest.approx(0.15)
    check_timeline(events, "Alpha bravo charlie.")


async def test_no_daemon_left_is_connection_lost_after_bounded_retries() -> None:
    first = FakeDaemon(die_after_events=3)
    servers = await _serve(first)
    try:
        async with connect(first.url, max_retries=2, backoff_base_s=0.01) as client:
            uid = await client.speak("One two three.")
            servers[0].close()  # nobody listens any more
            with pytest.raises(ConnectionLost) as err:
                async for _ in client.stream(uid):
                    pass
            assert "gave up" in err.value.message
            with pytest.raises(ConnectionLost):
                await client.speak("Anyone?")
    finally:
        await _close(servers)


async def test_cancel_while_reconnecting_ends_the_utterance_here() -> None:
    first = FakeDaemon(die_after_events=3)
    servers = await _serve(first)
    try:
        async with connect(first.url, max_retries=50, backoff_base_s=0.05) as client:
            servers[0].close(close_connections=False)  # accepts nothing new once the connection dies
            uid = await client.speak("One two three.")
            events = []
            async for event in client.stream(uid):
                events.append(event)
                if isinstance(event, Audio):
                    while client._conn is not None:  # the loss has been noticed
                        await asyncio.sleep(0.01)
                    await client.cancel(uid)
    finally:
        await _close(servers)
    assert isinstance(events[-1], Cancelled) and events[-1].utterance == uid


async def test_a_connection_dropped_while_idle_is_reopened_when_next_used() -> None:
    daemon = FakeDaemon()
    servers = await _serve(daemon)
    try:
        async with connect(daemon.url) as client:
            assert (await client.synthesize("One.")).words
            await client._conn._ws.close()  # type: ignore[union-attr]  # as the daemon's idle timeout does
            while daemon.connections < 1 or client._conn is not None:
                await asyncio.sleep(0.01)
            assert [w.text for w in (await client.synthesize("Two three.")).words] == ["Two", "three"]
            assert daemon.connections == 2
    finally:
        await _close(servers)


async def test_close_while_reconnecting_leaves_no_task_behind() -> None:
    first = FakeDaemon(die_after_events=3)
    servers = await _serve(first)
    try:
        client = await KokorodClient.connect(first.url, max_retries=50, backoff_base_s=0.2)
        servers[0].close(close_connections=False)
        uid = await client.speak("One two three.")
        stream = client.stream(uid)
        while client._failing is None:  # the loss was noticed; reconnecting
            await asyncio.sleep(0.01)
        await client.close()
        with pytest.raises(ConnectionLost):
            async for _ in stream:
                pass
    finally:
        await _close(servers)
    left = [t for t in asyncio.all_tasks() if t.get_name().startswith("kokorod-client") and not t.done()]
    assert left == []


async def test_speak_calls_continuing_one_utterance_survive_a_failover() -> None:
    first, second = FakeDaemon(), FakeDaemon()
    servers = await _serve(first, second)
    try:
        async with connect([first.url, second.url]) as client:
            uid = await client.speak("Hello there", utterance="u1", final=False)
            servers[0].close()  # closes its connections: lost before anything was spoken
            await servers[0].wait_closed()
            await client.speak(" my friend.", utterance="u1")  # waits for the new connection
            events = [e async for e in client.stream(uid)]
    finally:
        await _close(servers[1:])
    assert "".join(s.text for s in second.speaks) == "Hello there my friend." and second.speaks[-1].final
    assert not any(isinstance(e, Resumed) for e in events)
    check_timeline(events, "Hello there my friend.")


async def test_background_priority_goes_out_and_survives_a_failover() -> None:
    """``speak(priority="background")`` (kokorod say -f): on the wire, and again
    on the daemon a failover moves the utterance to; a bad value fails locally."""
    text = "Alpha bravo charlie delta echo foxtrot."
    first, second = FakeDaemon(die_after_events=6), FakeDaemon()
    servers = await _serve(first, second)
    try:
        async with connect([first.url, second.url]) as client:
            uid = await client.speak(text, utterance="u1", priority="background")
            events = [e async for e in client.stream(uid)]
            with pytest.raises(InputError, match="priority"):
                await client.speak("No.", priority="whenever")
    finally:
        await _close(servers)
    check_timeline(events, text)
    assert [s.priority for s in first.speaks] == ["background"]
    assert [s.priority for s in second.speaks] == ["background"]
