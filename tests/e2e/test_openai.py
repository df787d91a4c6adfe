"""The OpenAI-compatible speech API against a real daemon and the real model,
with the official ``openai`` SDK as the client: every response format decoded
and transcribed, errors in OpenAI's shape, auth, a client that vanishes
mid-stream, SSE word times, overload and size limits."""

from __future__ import annotations

import http.client
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import av
import httpx
import numpy as np
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.asr import transcribe, word_error_rate
from support.daemon import DaemonProcess

pytestmark = pytest.mark.slow

TOKEN = "openai-test-5d1c7e9a2b"
MAX_TEXT_CHARS = 2000
SENTENCE = "The little boat sailed across the quiet lake while the children watched from the shore."
LONG = ("The museum opens at ten in the morning. Tickets cost twelve dollars for adults, "
        "and children under five get in for free. Please leave large bags at the front desk. ") * 4


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    d = DaemonProcess("--token", TOKEN, "--max-active-streams", "1", "--max-text-chars", str(MAX_TEXT_CHARS))
    try:
        yield d
    finally:
        assert d.stop() == 0, d.log()[-3000:]


def client(d: DaemonProcess, api_key: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{d.http}/v1", api_key=api_key, max_retries=0, timeout=120)


def scrape(d: DaemonProcess) -> dict[str, float]:
    r = httpx.get(d.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768, 24000
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        parts = [frame.to_ndarray().astype(np.float32).reshape(frame.to_ndarray().shape[0], -1)[0]
                 for frame in container.decode(stream)]
    audio = np.concatenate(parts)
    if np.abs(audio).max() > 2:  # integer samples
        audio = audio / 32768
    return audio, rate


CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                 "wav": "audio/wav", "pcm": "application/octet-stream"}


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_format_streams_intelligible_speech(daemon: DaemonProcess, fmt: str) -> None:
    with client(daemon).audio.speech.with_streaming_response.create(
            model="tts-1", voice="nova", input=SENTENCE, response_format=fmt) as response:
        assert response.headers["content-type"].startswith(CONTENT_TYPES[fmt])
        assert response.headers["x-kokorod-voice"] == "af_nova"
        data = b"".join(response.iter_bytes())
    audio, rate = decode(data, fmt)
    assert 2.0 < audio.size / rate < 12.0
    heard, _ = transcribe(audio, rate)
    wer = word_error_rate(SENTENCE, heard)
    print(f"{fmt}: WER {wer:.3f}: {heard}")
    assert wer <= 0.10, (fmt, heard)


def test_first_bytes_leave_before_synthesis_ends(daemon: DaemonProcess) -> None:
    started = time.perf_counter()
    first = None
    with client(daemon).audio.speech.with_streaming_response.create(
            model="kokoro", voice="af_heart", input=LONG[:600], response_format="pcm") as response:
        for chunk in response.iter_bytes():
            if first is None and chunk:
                first = time.perf_counter() - started
        total = time.perf_counter() - started
    assert first is not None and first < 0.5 * total, (first, total)


def test_models_and_voices(daemon: DaemonProcess) -> None:
    c = client(daemon)
    assert {m.id for m in c.models.list()} == {"kokoro", "tts-1", "tts-1-hd"}
    assert c.models.retrieve("tts-1-hd").id == "tts-1-hd"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("whisper-1")
    voices = httpx.get(daemon.http + "/v1/audio/voices", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    by_id = {v["id"]: v for v in voices["data"]}
    assert by_id["ef_dora"]["language"] == "es" and by_id["af_heart"]["language"] == "en-us"
    assert voices["openai_voices"]["onyx"] == "am_onyx"


def test_bad_voice_is_a_400_in_openai_shape(daemon: DaemonProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(daemon).audio.speech.create(model="tts-1", voice="nobody", input="Hello there.")
    assert info.value.status_code == 400
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "voice" and body["code"] == "unknown_voice"
    assert set(body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.BadRequestError) as info:
        client(daemon).audio.speech.create(model="gpt-9", voice="alloy", input="Hello there.")
    assert info.value.body["param"] == "model"  # type: ignore[index]


def test_token_is_required(daemon: DaemonProcess) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        client(daemon, api_key="wrong").audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    assert info.value.status_code == 401
    r = httpx.post(daemon.http + "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hi."})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.get(daemon.http + "/v1/models")
    assert r.status_code == 401


def test_a_client_that_vanishes_mid_stream_stops_synthesis(daemon: DaemonProcess) -> None:
    before = scrape(daemon)
    key = 'kokorod_utterances_cancelled_total{reason="disconnect"}'
    with httpx.stream("POST", daemon.http + "/v1/audio/speech", timeout=120,
                      headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"model": "tts-1", "voice": "alloy", "input": LONG, "response_format": "pcm"}) as r:
        assert r.status_code == 200
        chunks = r.iter_raw()
        next(chunks)  # the first audio, then hang up (leaving the block closes the connection)
    deadline = time.time() + 5
    while time.time() < deadline:
        after = scrape(daemon)
        if after.get(key, 0) > before.get(key, 0) and after["kokorod_active_streams"] == 0:
            break
        time.sleep(0.1)
    assert after.get(key, 0) == before.get(key, 0) + 1
    assert after["kokorod_active_streams"] == 0
    assert after["kokorod_engine_queue_depth"] == 0
    done = after.get("kokorod_utterances_completed_total", 0)
    audio_s = after["kokorod_audio_seconds_total"]
    time.sleep(1.5)
    later = scrape(daemon)  # nothing more was synthesized for the vanished client
    assert later["kokorod_audio_seconds_total"] == audio_s
    assert later.get("kokorod_utterances_completed_total", 0) == done
    assert later["kokorod_open_connections"] == 0


def test_sse_with_timestamps_gives_words_in_order_inside_the_audio(daemon: DaemonProcess) -> None:
    with client(daemon).audio.speech.with_streaming_response.create(
            model="tts-1", voice="echo", input=SENTENCE, response_format="pcm",
            extra_body={"stream_format": "sse", "timestamps": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-kokorod-language"] == "en-us"  # detected: the input is English
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    chunks = [e for e in events if e["type"] == "kokorod.chunk"]
    assert chunks and all(c["lang"] == "en-us" for c in chunks)
    assert kinds.index("kokorod.chunk") < kinds.index("kokorod.word")  # a chunk precedes its words
    assert kinds[-1] == "speech.audio.done" and "speech.audio.delta" in kinds
    assert set(events[-1]["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
    import base64

    pcm = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    duration = len(pcm) / 2 / 24000
    words = [e for e in events if e["type"] == "kokorod.word"]
    assert [w["text"] for w in words] == SENTENCE.rstrip(".").split()  # as written, sentence punctuation apart
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["start"] <= w["end"] for w in words)
    assert 0 <= starts[0] and words[-1]["end"] <= duration + 0.01
    assert kinds.index("kokorod.word") < kinds.index("speech.audio.delta")  # words precede their audio


def test_a_busy_daemon_queues_a_speech_call_then_answers_it(daemon: DaemonProcess) -> None:
    """At capacity a speech call waits for the slot (no 503, no status line
    yet) and is answered once it frees; a queue time-out's 503 with Retry-After
    is tested in test_request_queue_daemon.py."""
    with httpx.stream("POST", daemon.http + "/v1/audio/speech", timeout=120,
                      headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"model": "tts-1", "voice": "alloy", "input": LONG, "response_format": "pcm"}) as r:
        assert r.status_code == 200
        chunks = r.iter_raw()  # kept: a dropped iterator would close the response
        next(chunks)  # speaking: it holds the only stream slot
        with ThreadPoolExecutor(1) as pool:
            queued = pool.submit(lambda: client(daemon).audio.speech.create(
                model="tts-1", voice="alloy", input="Me too, please.", response_format="pcm").content)
            deadline = time.monotonic() + 30
            while scrape(daemon).get("kokorod_request_queue_depth", 0) < 1:
                assert time.monotonic() < deadline and not queued.done(), "the call did not wait in the queue"
                time.sleep(0.05)
            r.close()  # the first client goes away: its slot passes to the waiting call
            audio = queued.result(timeout=120)
    assert len(audio) / 2 / 24000 > 0.5


def test_too_large_is_413(daemon: DaemonProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client(daemon).audio.speech.create(model="tts-1", voice="alloy", input="word " * (MAX_TEXT_CHARS // 5 + 1))
    assert info.value.status_code == 413 and info.value.body["param"] == "input"  # type: ignore[index]
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "x" * 200_000}).encode()
    conn.request("POST", "/v1/audio/speech", body=body, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["type"] == "invalid_request_error"
    conn.close()


def test_keep_alive_connection_serves_the_other_endpoints(daemon: DaemonProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    conn.request("GET", "/v1/models", headers=auth)
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["object"] == "list"
    conn.request("POST", "/v1/audio/speech", headers={**auth, "Content-Type": "application/json"},
                 body=json.dumps({"model": "tts-1", "voice": "alloy", "input": "Hi.", "response_format": "wav"}))
    r = conn.getresponse()
    assert r.status == 200 and r.read()[:4] == b"RIFF"
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"ok\n"
    conn.request("GET", "/metrics", headers=auth)
    r = conn.getresponse()
    text = r.read().decode()
    assert r.status == 200 and 'kokorod_http_requests_total{endpoint="speech",status="200"}' in text
    conn.close()


def test_sigterm_lets_a_speech_response_finish_and_closes_idle_connections() -> None:
    d = DaemonProcess("--drain-timeout-s", "20")
    try:
        idle = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        idle.request("GET", "/v1/models")
        assert idle.getresponse().read()  # now an idle keep-alive connection
        busy = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
        busy.request("POST", "/v1/audio/speech", headers={"Content-Type": "application/json"},
                     body=json.dumps({"model": "tts-1", "voice": "alloy", "input": SENTENCE, "response_format": "pcm"}))
        response = busy.getresponse()
        assert response.status == 200
        response.read(100)  # speaking
        started = time.time()
        d.proc.terminate()
        rest = response.read()  # the response completes during the drain
        assert len(rest) > 24000 and response.getheader("transfer-encoding") == "chunked"
        assert d.proc.wait(30) == 0 and time.time() - started < 25
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            idle.request("GET", "/v1/models")
            idle.getresponse()
    finally:
        d.stop()
