"""LocalPeer: messages validated as frames are, without JSON; its incoming
queue bounded in messages and bytes, an over-full send refused out loud."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kokorod.daemon import local_peer
from kokorod.daemon.local_peer import LocalPeer
from kokorod.protocol import JsonCodec, ProtocolError
from kokorod.protocol.messages import Config, Done, Error, ErrorCode, Speak


from support.session_fakes import FakeSynth, collect_until as collect, local_services as services



BAD = [Speak("u1", "hello", speed=99.0), Speak("u2", "hello", mode="shout"),  # type: ignore[arg-type]
       Speak("u3", "lone \ud800"), Speak("u4", 5), Config(frame_ms=1), Config(lexicon={"word": 5})]  # type: ignore[arg-type]


async def test_a_bad_field_is_the_error_a_websocket_client_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = []
    codec = JsonCodec()
    for message in BAD:
        with pytest.raises(ProtocolError) as err:
            codec.decode(codec.encode_message(message))
        expected.append(err.value.to_event())

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("an in-process message went through JSON")

    svc, sched = await services(FakeSynth())
    monkeypatch.setattr(json, "loads", boom)
    monkeypatch.setattr(json, "dumps", boom)
    async with LocalPeer(svc) as peer:
        for message in BAD:
            assert peer.send(message)
        peer.send(Speak("ok", "still alive here.", final=True))
        events = await collect(peer, Done, "ok")
    monkeypatch.undo()
    assert [e for e in events if isinstance(e, Error)] == expected
    await sched.aclose()


async def test_a_message_over_max_message_bytes_is_refused_in_utf8_bytes() -> None:
    svc, sched = await services(FakeSynth())
    async with LocalPeer(svc, max_message_bytes=3000) as peer:
        peer.send(Speak("u1", "€" * 1100, final=True))  # 3300 bytes in UTF-8, 1100 characters
        peer.send(Speak("u2", "short enough.", final=True))
        events = await collect(peer, Done, "u2")
    errors = [e for e in events if isinstance(e, Error)]
    # As on the wire: the message was not read, so the error names no utterance.
    assert [(e.code, e.utterance) for e in errors] == [(ErrorCode.MESSAGE_TOO_LARGE, None)]
    # 3300 bytes of text, 32 of keys and the other values (map_size_bytes).
    assert "3332 bytes exceeds the limit of 3000" in errors[0].message
    await sched.aclose()


@pytest.mark.parametrize("bound", ["messages", "bytes"])
async def test_an_over_full_send_is_refused_with_an_error(monkeypatch: pytest.MonkeyPatch, bound: str) -> None:
    if bound == "messages":
        monkeypatch.setattr(local_peer, "MAX_INCOMING_MESSAGES", 3)
    else:
        monkeypatch.setattr(local_peer, "MAX_INCOMING_BYTES", 150)  # two of these messages
    svc, sched = await services(FakeSynth())
    async with LocalPeer(svc) as peer:
        # Sent in one go: the session reads nothing until this test awaits.
        sent = [peer.send(Speak("u1", "word " * 8)) for _ in range(5)]
        assert sent[:2] == [True, True] and sent[-1] is False
        refused = sent.count(False)
        events = []
        async for event in peer.events():
            events.append(event)
            if isinstance(event, Error) and len([e for e in events if isinstance(e, Error)]) >= refused:
                break
        errors = [e for e in events if isinstance(e, Error)]
        assert all(e.code == ErrorCode.RATE_LIMITED and e.utterance == "u1" for e in errors)
        assert "message dropped" in errors[0].message
        # Once the session has read the queue, sends are taken again.
        assert peer.send(Speak("u2", "taken again.", final=True))
        events = await collect(peer, Done, "u2")
    await sched.aclose()


async def test_one_large_message_is_judged_by_the_codec_not_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_peer, "MAX_INCOMING_BYTES", 100)
    svc, sched = await services(FakeSynth())
    async with LocalPeer(svc, max_message_bytes=150) as peer:
        assert peer.send(Speak("u1", "word " * 40, final=True))  # 200 bytes, into an empty queue
        events = []
        async for event in peer.events():
            events.append(event)
            if isinstance(event, Error):
                break
    assert events[-1].code == ErrorCode.MESSAGE_TOO_LARGE
    await sched.aclose()
