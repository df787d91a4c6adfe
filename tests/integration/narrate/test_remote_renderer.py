"""Narration through a daemon, against a fake peer speaking kokorod's protocol:
each segment is one utterance, words and audio land on the file's timeline,
the daemon's warnings are reported, and cancel reaches the utterance in flight."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import serve

from kokorod.narrate.job import Narration
from kokorod.narrate.outputs import Outputs, Targets
from kokorod.narrate.reader import read_blocks
from kokorod.narrate.remote_renderer import connect_renderer
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Done, Limits, Ready, Speak, Warning, WordEvent

RATE = 24000
WORD = 6000  # 0.25 s a word


class FakeDaemon:
    """Speaks every word as 0.25 s of tone; never finishes a text with "HANG" until cancelled."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.cancelled: list[str] = []
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = self.loop.create_future()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/stream"
            self._ready.set()
            await self._stop

    def close(self) -> None:
        self.loop.call_soon_threadsafe(lambda: self._stop.set_result(None) if self._stop else None)
        self.thread.join(10)

    async def _handler(self, ws: Any) -> None:
        codec = MsgpackCodec()
        await ws.send(codec.encode(Ready(version="0", session="fake", encoding="msgpack", sample_rate=RATE,
                                         format="pcm_s16le", frame_ms=100, voice="af_heart", speed=1.0,
                                         voices=("af_heart",), limits=Limits(100000, 262144, 16, 200))))
        async for frame in ws:
            msg = codec.decode(frame)
            if isinstance(msg, Cancel):
                self.cancelled.append(msg.utterance)
                await ws.send(codec.encode(Cancelled(msg.utterance, "cancel")))
            elif isinstance(msg, Speak):
                self.texts.append(msg.text)
                if "HANG" in msg.text:
                    continue
                words = [w.strip(".,!?#") for w in msg.text.split() if w.strip(".,!?#")]  # markdown gone, as the daemon does
                for i, w in enumerate(words):
                    if w == "🙂":
                        await ws.send(codec.encode(Warning(msg.utterance, "unspeakable", "cannot say", w)))
                        continue
                    await ws.send(codec.encode(WordEvent(msg.utterance, i, w, i * WORD / RATE, (i + 1) * WORD / RATE)))
                pcm = (np.full(len(words) * WORD, 3000, np.int16)).tobytes()
                await ws.send(codec.encode(Audio(msg.utterance, 0, 0, len(words) * WORD, RATE, "pcm_s16le", pcm)))
                await ws.send(codec.encode(Done(msg.utterance, len(words) * WORD / RATE, len(words) * WORD)))


@pytest.fixture
def daemon():  # type: ignore[no-untyped-def]
    d = FakeDaemon()
    yield d
    d.close()


def args(url: str) -> argparse.Namespace:
    return argparse.Namespace(url=url, token=None, voice=None, speed=1.0, lang=None)


def test_each_segment_is_an_utterance_on_one_timeline(daemon: FakeDaemon, tmp_path: Path) -> None:
    renderer = connect_renderer(args(daemon.url))
    assert renderer is not None
    reports: list[str] = []
    text = "# One\n\nThe first sentence is here. A second one 🙂 follows.\n\n# Two\n\nThe end.\n"
    job = Narration(read_blocks(text.encode().splitlines(keepends=True)), renderer, renderer.segmenter,
                    lambda i, t: Outputs(Targets(tmp_path / "b.flac", "flac", tmp_path / "b.vtt",
                                                 tmp_path / "b.json"), RATE),
                    sample_rate=RATE, report=reports.append)
    try:
        summary = job.run()
    finally:
        renderer.close()
    assert daemon.texts[0] == "# One" and "The end." in daemon.texts[-1]
    words = json.loads((tmp_path / "b.json").read_text())["words"]
    assert [w["text"] for w in words][:3] == ["One", "The", "first"]
    assert all(a["end_sample"] <= b["start_sample"] for a, b in zip(words, words[1:]))
    assert words[-1]["end_sample"] <= summary.audio_samples and summary.chapters == 2
    assert any("🙂" in r for r in reports)  # the daemon's warning, reported once
    assert sum("🙂" in r for r in reports) == 1


def test_cancel_reaches_the_utterance_in_flight(daemon: FakeDaemon) -> None:
    renderer = connect_renderer(args(daemon.url))
    assert renderer is not None
    from kokorod.text.segmenter import Segment

    errors: list[BaseException] = []

    def render() -> None:
        try:
            renderer.render(Segment(0, "HANG on.", "HANG on.", "final"), True)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            errors.append(exc)

    worker = threading.Thread(target=render)
    worker.start()
    deadline = time.monotonic() + 10
    while not daemon.texts and time.monotonic() < deadline:
        time.sleep(0.02)
    renderer.cancel()
    worker.join(10)
    renderer.close()
    assert not worker.is_alive() and daemon.cancelled
    assert errors and "stopped" in str(errors[0])


def test_no_daemon_means_none() -> None:
    from support.daemon import free_port

    assert connect_renderer(args(f"ws://127.0.0.1:{free_port()}/v1/stream")) is None
