"""Bad input against the real daemon: an error event, the connection goes on,
and no other client notices."""

from __future__ import annotations

import asyncio
import json

import msgpack
import pytest
import websockets

from support.daemon import DaemonProcess, Peer
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Config, Done, Error, Speak

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    d = DaemonProcess("--max-text-chars", "2000", "--messages-per-s", "50", "--message-burst", "60")
    yield d
    assert d.stop() == 0, d.log()[-3000:]


async def still_works(peer: Peer, uid: str) -> None:
    await peer.send(Speak(uid, "Still working.", final=True))
    events = await peer.until(lambda e: isinstance(e, (Done, Error)) and getattr(e, "utterance", None) == uid)
    assert isinstance(events[-1], Done), events[-1]
    assert any(isinstance(e, Audio) for e in events)


MSGPACK_CASES = [
    (b"\xc1\xff\x00", "bad_message"),
    (msgpack.packb([1, 2, 3]), "bad_message"),
    (msgpack.packb({"type": "dance"}), "unknown_type"),
    (msgpack.packb({"text": "no type"}), "unknown_type"),
    (msgpack.packb({"type": "speak", "text": "missing id"}), "invalid_field"),
    (msgpack.packb({"type": "speak", "utterance": 5, "text": "x"}), "invalid_field"),
    (msgpack.packb({"type": "speak", "utterance": "u", "text": 12}), "invalid_field"),
    (msgpack.packb({"type": "speak", "utterance": "u", "text": "x", "speed": 9.0}), "invalid_field"),
    (msgpack.packb({"type": "speak", "utterance": "u", "text": "x", "final": "yes"}), "invalid_field"),
    (msgpack.packb({"type": "config", "format": "aac"}), "invalid_field"),  # HTTP only, not on the WebSocket
    (msgpack.packb({"type": "config", "sample_rate": 11025}), "invalid_field"),
    (msgpack.packb({"type": "config", "frame_ms": 0}), "invalid_field"),
    (msgpack.packb({"type": "speak", "utterance": "v", "text": "hi", "voice": "xx_nobody"}), "unknown_voice"),
    (msgpack.packb({"type": "config", "voice": "af_heart:0.5,zz_nobody:0.5"}), "unknown_voice"),
    ("a text frame in msgpack mode", "bad_message"),
]


@pytest.mark.parametrize("frame,code", MSGPACK_CASES, ids=[c for _f, c in MSGPACK_CASES])
async def test_bad_msgpack_messages(daemon: DaemonProcess, frame: bytes | str, code: str) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send_raw(frame)
    await peer.expect_error(code)
    await still_works(peer, "ok")
    await peer.close()


@pytest.mark.parametrize("frame,code", [
    ("{not json", "bad_message"),
    ('"a string"', "bad_message"),
    ('{"type": "speak", "utterance": "u"}', "invalid_field"),
    ('{"type": "cancel", "utterance": []}', "invalid_field"),
    (b"\x00binary in json mode", "bad_message"),
])
async def test_bad_json_messages(daemon: DaemonProcess, frame: bytes | str, code: str) -> None:
    peer = await Peer.connect(daemon.url, encoding="json")
    await peer.send_raw(frame)
    await peer.expect_error(code)
    await still_works(peer, "ok")
    await peer.close()


async def test_text_beyond_the_utterance_buffer(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Speak("big", "word " * 300))  # 1500 chars, no terminator: buffered
    await peer.send(Speak("big", "word " * 300))  # would exceed 2000
    error = await peer.expect_error("text_too_long")
    assert error.utterance == "big"
    await peer.send(Speak("big", "The end.", final=True))
    # What was accepted is still spoken. (Hearing all 300 words would take
    # minutes at real-time pace; first audio and a clean cancel prove the point.)
    await peer.until(lambda e: isinstance(e, Audio) and e.utterance == "big")
    await peer.send(Cancel(utterance="big"))
    events = await peer.until(lambda e: isinstance(e, Cancelled) and e.utterance == "big")
    assert not any(isinstance(e, Error) for e in events)
    await peer.close()


async def test_oversized_frame_is_an_error_event_not_a_disconnect(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send_raw(msgpack.packb({"type": "speak", "utterance": "u", "text": "x" * 300_000}))
    await peer.expect_error("message_too_large")
    await still_works(peer, "ok")
    await peer.close()


async def test_huge_frame_closes_only_that_connection(daemon: DaemonProcess) -> None:
    bystander = await Peer.connect(daemon.url)
    peer = await Peer.connect(daemon.url)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await peer.send_raw(b"\x00" * (5 * 1024 * 1024))
        await peer.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    await still_works(bystander, "bystander")
    await bystander.close()


async def test_message_flood_is_rate_limited(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    frame = msgpack.packb({"type": "cancel"})
    for _ in range(400):
        await peer.send_raw(frame)
    errors = await peer.until(lambda e: isinstance(e, Error) and e.code == "rate_limited", timeout=10)
    assert errors[-1].code == "rate_limited"
    # At most one rate_limited error per second, not one per dropped message.
    with pytest.raises(asyncio.TimeoutError):
        while True:
            event = await peer.recv(timeout=0.5)
            assert not (isinstance(event, Error) and event.code == "rate_limited")
    await asyncio.sleep(1.5)  # the bucket refills
    await still_works(peer, "after-flood")
    await peer.close()


async def test_json_bad_config_keeps_previous_config(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url, encoding="json")
    await peer.send_raw(json.dumps({"type": "config", "sample_rate": 16000, "format": "flac"}))
    await peer.expect_error("invalid_field")
    await peer.send(Speak("cfg", "Default format.", final=True))
    events = await peer.until(lambda e: isinstance(e, Done))
    audio = [e for e in events if isinstance(e, Audio)]
    assert audio and audio[0].sample_rate == 24000 and audio[0].format == "pcm_s16le"
    await peer.send(Config(sample_rate=16000))
    await peer.recv()
    await peer.close()
