"""kokorod.client against a real daemon (slow), plus the failure paths and the
streaming player against fakes (fast)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import types
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import serve

from support.daemon import DaemonProcess, free_port
from kokorod.client import (
    Audio, AuthenticationFailed, Cancelled, Chunk, ConnectionLost, DaemonUnavailable, Done, KokorodClient,
    KokorodServerError, WordEvent, connect,
)
from kokorod.errors import InputError, KokorodError
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Chunk as ChunkMsg
from kokorod.protocol.messages import Limits, Ready

TOKEN = "s3cret-token"
LONG = ("The lighthouse keeper climbed the stairs every evening at dusk. He polished the great lens, "
        "trimmed the wick, and watched the ships pass far out at sea. ") * 4


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    d = DaemonProcess("--token", TOKEN)
    yield d
    assert d.stop() == 0, d.log()[-3000:]


async def _client(daemon: DaemonProcess) -> KokorodClient:
    return await KokorodClient.connect(daemon.url, token=TOKEN)


# -- against the real daemon ---------------------------------------------------

@pytest.mark.slow
async def test_speak_a_sentence_gives_chunk_words_audio_done(daemon: DaemonProcess) -> None:
    from support.asr import transcribe, word_error_rate

    text = "The quick brown fox jumps over the lazy dog."
    async with connect(daemon.url, token=TOKEN) as client:
        assert client.ready.protocol == "kokorod.v1" and "af_heart" in client.ready.voices
        uid = await client.speak(text)
        events = [e async for e in client.stream(uid)]
    assert isinstance(events[0], Chunk) and isinstance(events[-1], Done)
    frames = [e for e in events if isinstance(e, Audio)]
    words = [e.text for e in events if isinstance(e, WordEvent)]
    assert words == ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    assert sum(f.samples for f in frames) == events[-1].samples
    audio = np.concatenate([np.frombuffer(f.pcm, "<i2") for f in frames]).astype(np.float32) / 32768
    heard, _ = transcribe(audio, frames[0].sample_rate)
    assert word_error_rate(text, heard) <= 0.15, heard


@pytest.mark.slow
async def test_async_iterator_fragments_are_one_utterance(daemon: DaemonProcess) -> None:
    from support.asr import transcribe, word_error_rate

    async def tokens():  # type: ignore[no-untyped-def]
        for piece in ["Hel", "lo th", "ere, my fri", "end. How ", "are", " you", "?"]:
            await asyncio.sleep(0.05)
            yield piece

    client = await _client(daemon)
    try:
        result = await client.synthesize(tokens())
    finally:
        await client.close()
    assert [w.text for w in result.words] == ["Hello", "there", "my", "friend", "How", "are", "you"]
    assert result.audio.dtype == np.float32 and result.sample_rate == 24000
    assert 1.0 < result.audio.shape[0] / result.sample_rate < 6.0
    heard, _ = transcribe(result.audio, result.sample_rate)
    assert word_error_rate("Hello there, my friend. How are you?", heard) <= 0.15, heard


@pytest.mark.slow
async def test_configure_changes_rate_and_format(daemon: DaemonProcess) -> None:
    async with connect(daemon.url, token=TOKEN, encoding="json") as client:
        configured = await client.configure(sample_rate=16000, format="pcm_f32le", frame_ms=40)
        assert (configured.sample_rate, configured.format, configured.frame_ms) == (16000, "pcm_f32le", 40)
        result = await client.synthesize("One two three.")
        assert result.sample_rate == 16000 and 0.5 < result.audio.shape[0] / 16000 < 4
        with pytest.raises(KokorodServerError) as err:
            await client.configure(voice="zz_nobody")
        assert err.value.code == "unknown_voice"


@pytest.mark.slow
async def test_cancel_stops_the_utterance(daemon: DaemonProcess) -> None:
    async with connect(daemon.url, token=TOKEN) as client:
        uid = await client.speak(LONG)
        got: list[Any] = []
        async for event in client.stream(uid):
            got.append(event)
            if isinstance(event, Audio) and event.seq == 0:
                await client.cancel(uid)
        assert isinstance(got[-1], Cancelled) and got[-1].reason == "cancel"
        heard_s = sum(e.samples for e in got if isinstance(e, Audio)) / 24000
        assert heard_s < 15  # far less than the whole text
        # The session is still usable afterwards.
        assert (await client.synthesize("Still here.")).words


@pytest.mark.slow
async def test_barge_in_with_a_new_utterance(daemon: DaemonProcess) -> None:
    async with connect(daemon.url, token=TOKEN) as client:
        everything = client.events()
        old = await client.speak(LONG, utterance="old")
        old_events: list[Any] = []
        new = None
        async for event in client.stream(old):
            old_events.append(event)
            if isinstance(event, Audio) and new is None:
                new = await client.speak("Sorry, a new question.", utterance="new", mode="interrupt")
        assert isinstance(old_events[-1], Cancelled) and old_events[-1].reason == "barge_in"
        assert new is not None
        new_events = [e async for e in client.stream(new)]
        assert isinstance(new_events[-1], Done) and [w.text for w in new_events if isinstance(w, WordEvent)]
        # events() saw both, and nothing of "old" after its cancelled.
        seen = []
        async for event in everything:
            seen.append(event)
            if isinstance(event, Done) and event.utterance == "new":
                break
        cut = next(i for i, e in enumerate(seen) if isinstance(e, Cancelled))
        assert not any(getattr(e, "utterance", None) == "old" for e in seen[cut + 1:])
        # An ended id cannot be reused.
        with pytest.raises(InputError):
            await client.speak("again", utterance="old")


@pytest.mark.slow
async def test_server_errors_surface_as_exceptions(daemon: DaemonProcess) -> None:
    async with connect(daemon.url, token=TOKEN) as client:
        with pytest.raises(KokorodServerError) as err:
            await client.synthesize("Hello.", voice="zz_nobody")
        assert err.value.code == "unknown_voice" and "voices" in (err.value.fix or "")
        with pytest.raises(InputError):  # checked locally with the codec's rules, never sent
            await client.speak("Hello.", speed=5.0)


@pytest.mark.slow
async def test_wrong_or_missing_token_is_authentication_failed(daemon: DaemonProcess) -> None:
    for token in (None, "wrong"):
        with pytest.raises(AuthenticationFailed) as err:
            await KokorodClient.connect(daemon.url, token=token)
        assert "--token" in (err.value.fix or "") and isinstance(err.value, KokorodError)


# -- failure paths against fakes ----------------------------------------------

async def test_closed_port_is_daemon_unavailable() -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1/stream"
    with pytest.raises(DaemonUnavailable) as err:
        await KokorodClient.connect(url)
    assert url in err.value.message and "kokorod serve" in (err.value.fix or "")


def _ready() -> Ready:
    return Ready(version="0", session="fake", encoding="msgpack", sample_rate=24000, format="pcm_s16le",
                 frame_ms=100, voice="af_heart", speed=1.0, voices=("af_heart",),
                 limits=Limits(100000, 262144, 16, 200))


async def test_connection_lost_mid_stream() -> None:
    codec = MsgpackCodec()

    async def handler(ws: Any) -> None:
        await ws.send(codec.encode(_ready()))
        await ws.recv()  # the speak
        await ws.send(codec.encode(ChunkMsg("u1", 0, "Hello.", 0.0, 0.5)))
        ws.transport.abort()  # the daemon dies: no close frame

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = await KokorodClient.connect(f"ws://127.0.0.1:{port}/v1/stream")
        await client.speak("Hello.", utterance="u1")
        got = []
        with pytest.raises(ConnectionLost):
            async for event in client.stream("u1"):
                got.append(event)
        assert [type(e) for e in got] == [Chunk]
        with pytest.raises(ConnectionLost):
            await client.speak("more")
        await client.close()


async def test_something_else_listening_is_a_clear_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(KokorodError) as err:
            await KokorodClient.connect(f"ws://127.0.0.1:{port}/v1/stream")
        assert not isinstance(err.value, DaemonUnavailable)
    finally:
        server.close()


# -- the streaming player, on a fake sound device -------------------------------

class _FakeOutputStream:
    """Calls the callback in real time from a thread, like PortAudio does."""

    def __init__(self, samplerate: int, channels: int, dtype: str, callback: Any) -> None:
        self.samplerate, self.callback, self.latency = samplerate, callback, 0.02
        self.played: list[np.ndarray] = []
        self._stop = threading.Event()
        self._t = 0.0
        _FakeOutputStream.last = self

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        block = self.samplerate // 100
        while not self._stop.is_set():
            out = np.full((block, 1), np.nan, dtype=np.float32)
            info = types.SimpleNamespace(currentTime=self._t, outputBufferDacTime=self._t + self.latency)
            self.callback(out, block, info, None)
            self.played.append(out[:, 0].copy())
            self._t += block / self.samplerate
            self._stop.wait(block / self.samplerate)

    def stop(self) -> None:
        self._stop.set()

    abort = stop

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def fake_sounddevice(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = types.ModuleType("sounddevice")
    module.PortAudioError = type("PortAudioError", (Exception,), {})  # type: ignore[attr-defined]
    module.query_devices = lambda kind=None: {"name": "fake"}  # type: ignore[attr-defined]
    module.OutputStream = _FakeOutputStream  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return module


def test_player_is_gapless_and_prints_words_in_time(fake_sounddevice: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from kokorod.audio.playback import StreamingPlayer, WordPrinter

    rate = 8000
    player = StreamingPlayer.open(rate)
    assert player is not None
    tone = np.cos(np.arange(rate) * 0.05).astype(np.float32) * 0.5  # 1 s
    printer = WordPrinter()
    printer.add(WordEvent("u", 0, "early", 0.1, 0.2))
    printer.add(WordEvent("u", 1, "late", 0.8, 0.9))
    for piece in np.array_split(tone, 7):  # fed in uneven pieces, as frames arrive
        player.feed(piece)
    player.feed(np.zeros(0, dtype=np.float32))
    seen_late_at = None
    player.end_input()
    began = time.monotonic()
    while not player.finished:
        printer.print_due(player.position_s())
        if seen_late_at is None and "late" in capsys.readouterr().out:
            seen_late_at = player.position_s()
        time.sleep(0.002)
    elapsed = time.monotonic() - began
    player.close()
    assert 0.9 < elapsed < 1.5  # finished when the last sample sounded, not later
    played = np.concatenate(_FakeOutputStream.last.played)
    start = int(np.flatnonzero(played != 0)[0])
    assert not np.isnan(played).any()  # every sample written, silence after the end
    np.testing.assert_array_equal(played[start:start + rate], tone)  # no gap, no repeat
    assert seen_late_at is not None and 0.75 <= seen_late_at <= 1.0


def test_no_sound_device_means_no_player(monkeypatch: pytest.MonkeyPatch) -> None:
    from kokorod.audio.playback import StreamingPlayer, play_or_none

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as without the extra
    assert StreamingPlayer.open(24000) is None
    assert play_or_none(np.zeros(100, dtype=np.float32), 24000, None) is False


async def test_stdin_text_yields_partial_lines_before_eof() -> None:
    from kokorod.cli.stdin_text import StdinText

    read_fd, write_fd = os.pipe()
    try:
        text = StdinText(read_fd)
        pieces = text.__aiter__()
        os.write(write_fd, "  Hel".encode())
        os.write(write_fd, b"lo w" + "ö".encode()[:1])  # a UTF-8 character split across writes
        first = await asyncio.wait_for(pieces.__anext__(), 5)  # no newline, no EOF yet
        os.write(write_fd, "ö".encode()[1:] + b"rld")
        os.close(write_fd)
        rest = [p async for p in pieces]
    finally:
        os.close(read_fd)
    assert "".join([first, *rest]) == "  Hello wörld"
    assert first.startswith("  Hel")


@pytest.mark.slow
def test_remote_say_plays_and_prints_words_in_time(daemon: DaemonProcess, fake_sounddevice: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from kokorod.cli.via_daemon import try_remote_say

    args = argparse.Namespace(text="One, two, three.", output=None, url=daemon.url, token=TOKEN, words=True, lang=None,
                              voice=None, speed=1.0, local=False)
    began = time.monotonic()
    assert try_remote_say(args) == 0
    assert time.monotonic() - began < 20  # about the utterance's length, plus synthesis
    assert args.output is None  # played, not written
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == ["One", "two", "three"]
    played = np.concatenate(_FakeOutputStream.last.played)
    voiced = np.flatnonzero(np.abs(played) > 1e-3)
    assert 0.6 < (voiced[-1] - voiced[0]) / 24000 < 4.0  # the whole utterance went to the device
