"""Nothing lost when the daemon is busy: requests (Wyoming one-shot
`synthesize`, OpenAI `/v1/audio/speech`, `speak` with `"admission": "queue"`)
wait in the daemon's FIFO for the one stream slot (`--max-active-streams 1`)
instead of being refused, while a real-time stream is still refused with
`overloaded`. Real daemon, real model, the `wyoming` package's and the
`openai` SDK's own clients; speech judged by Whisper."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error as WyomingError
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from support.asr import transcribe, word_error_rate
from support.daemon import DaemonProcess, Peer, free_port
from kokorod.protocol.messages import Done, Error, Speak

pytestmark = pytest.mark.slow

# Plain sentences Whisper hears reliably (one per simultaneous request), each
# long enough that one misheard word stays within MAX_WER.
SENTENCES = (
    "The kitchen lights are now off and the front door is locked.",
    "It is going to rain this afternoon, so take an umbrella with you.",
    "Your package was delivered to the front porch a few minutes ago.",
    "The washing machine has finished and the clothes are ready to dry.",
    "Dinner is almost ready, so please come down to the kitchen table.",
    "The garage door has been open for more than an hour now.",
)
# Held for a minute or more on any CPU: synthesis runs at most --max-ahead-s
# (8 s) ahead of playback, so this stream keeps the only slot while it plays.
LONG = ("The museum opens at ten in the morning. Tickets cost twelve dollars for adults, "
        "and children under five get in for free. Please leave large bags at the front desk. ") * 6
MAX_WER = 0.15


def _wait_for_port(port: int, process: DaemonProcess) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, process.log()[-3000:]
            time.sleep(0.2)


class QueueDaemon:
    def __init__(self, *extra: str) -> None:
        self.wyoming_port = free_port()
        self.process = DaemonProcess("--max-active-streams", "1", "--wyoming-uri",
                                     f"tcp://127.0.0.1:{self.wyoming_port}", *extra)
        _wait_for_port(self.wyoming_port, self.process)

    def wyoming(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.wyoming_port, read_timeout=300)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.process.http}/v1", api_key="-", max_retries=0, timeout=300)

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.process.http + "/metrics", timeout=10).text
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


@pytest.fixture(scope="module")
def patient() -> Iterator[QueueDaemon]:
    """Default queue depth, a deadline no CPU reaches here."""
    d = QueueDaemon("--queue-timeout-s", "600")
    yield d
    assert d.process.stop() == 0, d.process.log()[-3000:]


@pytest.fixture(scope="module")
def strict() -> Iterator[QueueDaemon]:
    """A short queue with a short deadline, to reach both limits."""
    d = QueueDaemon("--max-queued", "2", "--queue-timeout-s", "5")
    yield d
    assert d.process.stop() == 0, d.process.log()[-3000:]


async def _wyoming_request(d: QueueDaemon, text: str, voice: str = "af_heart") -> tuple[bytes | None, str | None, float]:
    """(pcm, None) or (None, error text), and when it ended (monotonic)."""
    pcm = bytearray()
    async with d.wyoming() as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        while True:
            event = await client.read_event()
            assert event is not None, "connection closed without audio-stop or error"
            if AudioChunk.is_type(event.type):
                pcm += AudioChunk.from_event(event).audio
            elif AudioStop.is_type(event.type):
                return bytes(pcm), None, time.monotonic()
            elif WyomingError.is_type(event.type):
                return None, WyomingError.from_event(event).text, time.monotonic()


def _heard(pcm: bytes) -> str:
    import numpy as np

    text, _ = transcribe(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, 24000)
    return text


def _inversions(order: list[int]) -> int:
    return sum(1 for i in range(len(order)) for j in range(i + 1, len(order)) if order[i] > order[j])


async def _hold_slot(d: QueueDaemon) -> Peer:
    """A real-time WebSocket stream speaking LONG: it holds the only slot once
    its audio flows (retried while the previous test's holder is still leaving)."""
    for attempt in range(100):
        peer = await Peer.connect(d.process.url)
        await peer.send(Speak(f"hold{attempt}", LONG, final=True))
        first = (await peer.until(lambda e: type(e).__name__ in ("Audio", "Error"), 120))[-1]
        if isinstance(first, Error):
            assert first.code == "overloaded", first
            await peer.close()
            await asyncio.sleep(0.1)
            continue
        return peer
    raise AssertionError("the stream slot never freed")


async def test_six_wyoming_requests_at_once_are_all_spoken_in_order(patient: QueueDaemon) -> None:
    tasks = []
    for text in SENTENCES:  # sent in this order, a little apart, as Home Assistant's announcements
        tasks.append(asyncio.create_task(_wyoming_request(patient, text)))
        await asyncio.sleep(0.2)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 600)
    errors = [err for _, err, _ in results if err is not None]
    assert not errors, errors
    finished = sorted(range(len(results)), key=lambda i: results[i][2])
    print("completion order:", finished)
    assert _inversions(finished) <= 1, finished  # FIFO: about the order sent
    for text, (pcm, _, _) in zip(SENTENCES, results):
        assert pcm is not None
        heard = _heard(pcm)
        assert word_error_rate(text, heard) <= MAX_WER, (text, heard)
    m = patient.metrics()
    assert m["kokorod_request_queue_wait_seconds_count"] >= 6
    assert m["kokorod_request_queue_timeouts_total"] == 0 and m["kokorod_request_queue_depth"] == 0


def test_six_openai_calls_at_once_all_succeed(patient: QueueDaemon) -> None:
    client = patient.openai()

    def call(text: str) -> bytes:
        return client.audio.speech.create(model="tts-1", voice="nova", input=text, response_format="pcm").content

    with ThreadPoolExecutor(len(SENTENCES)) as pool:
        audio = list(pool.map(call, SENTENCES))
    for text, pcm in zip(SENTENCES, audio):
        heard = _heard(pcm)
        assert word_error_rate(text, heard) <= MAX_WER, (text, heard)


async def test_a_full_queue_refuses_the_extra_wyoming_requests_by_name(strict: QueueDaemon) -> None:
    holder = await _hold_slot(strict)
    try:
        results = []
        for text in SENTENCES[:5]:
            results.append(asyncio.create_task(_wyoming_request(strict, text)))
            await asyncio.sleep(0.1)
        errors = [err for _, err, _ in await asyncio.wait_for(asyncio.gather(*results), 120)]
    finally:
        await holder.close()
    full = [e for e in errors if e and "--max-queued" in e]
    late = [e for e in errors if e and "--queue-timeout-s" in e]
    assert len(full) == 3 and len(late) == 2, errors  # 2 waited (and timed out behind LONG), 3 found it full
    m = strict.metrics()
    assert m["kokorod_request_queue_full_total"] >= 3 and m["kokorod_request_queue_timeouts_total"] >= 2


async def test_a_stream_is_refused_while_requests_wait_and_openai_times_out_with_503(strict: QueueDaemon) -> None:
    holder = await _hold_slot(strict)
    try:
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                strict.openai().audio.speech.create(model="tts-1", voice="nova", input=SENTENCES[0])
            except openai.APIStatusError as exc:
                outcome["error"] = exc

        waiting = threading.Thread(target=call)
        waiting.start()
        for _ in range(100):  # until the request is in the queue
            if strict.metrics()["kokorod_request_queue_depth"] == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the OpenAI call never waited in the queue")
        stream = await Peer.connect(strict.process.url)
        await stream.send(Speak("rt", "A real-time stream.", final=True))
        refused = await stream.expect_error("overloaded")
        assert "--queue-timeout-s" not in refused.message and "admission" in refused.message
        await stream.close()
        await asyncio.to_thread(waiting.join, 60)
    finally:
        await holder.close()
    error = outcome["error"]
    assert error.status_code == 503 and error.response.headers["retry-after"] == "1"
    assert error.body["code"] == "overloaded" and "--queue-timeout-s" in error.body["message"]  # type: ignore[index]


async def test_a_queued_request_whose_client_leaves_frees_its_place(strict: QueueDaemon) -> None:
    holder = await _hold_slot(strict)
    try:
        async with strict.wyoming() as client:
            await client.write_event(Synthesize(text=SENTENCES[1], voice=SynthesizeVoice(name="af_heart")).event())
            for _ in range(100):
                if strict.metrics()["kokorod_request_queue_depth"] == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the Wyoming request never waited in the queue")
            left_at = time.monotonic()
        while strict.metrics()["kokorod_request_queue_depth"] != 0:  # gone: out of the queue at once,
            assert time.monotonic() - left_at < 4, "still queued"  # well before its 5 s deadline
            await asyncio.sleep(0.02)
        # An HTTP client that gives up while waiting (its read time-out) leaves too.
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=1.0)) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(strict.process.http + "/v1/audio/speech",
                                json={"model": "tts-1", "voice": "nova", "input": SENTENCES[3]})
        left_at = time.monotonic()
        while strict.metrics()["kokorod_request_queue_depth"] != 0:
            assert time.monotonic() - left_at < 3, "the HTTP request is still queued"  # its deadline: 4 s away
            await asyncio.sleep(0.02)
    finally:
        await holder.close()
    # The slot is free again: a WebSocket request with "admission": "queue" is served.
    peer = await Peer.connect(strict.process.url)
    await peer.send(Speak("q", SENTENCES[2], final=True, admission="queue"))
    utt = await peer.utterance("q", 300)
    assert utt.of(Done) and not utt.of(Error), utt.events
    await peer.close()


async def test_unknown_wyoming_voice_error_is_read_without_a_reset(patient: QueueDaemon) -> None:
    """The client keeps writing its request after the daemon refused it (as
    Home Assistant streams chunks): it still reads the error, then a clean end."""
    async with patient.wyoming() as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="en_US-lessac-medium")).event())
        await asyncio.sleep(0.5)  # the daemon has answered and ended the connection by now
        for word in ("Hello", " there,", " how", " are", " you?"):
            await client.write_event(SynthesizeChunk(text=word).event())
        await client.write_event(SynthesizeStop().event())
        await asyncio.sleep(0.2)
        event = await client.read_event()
        assert event is not None and WyomingError.is_type(event.type)
        error = WyomingError.from_event(event)
        assert error.code == "unknown_voice" and "en_US-lessac-medium" in error.text
        assert await client.read_event() is None
