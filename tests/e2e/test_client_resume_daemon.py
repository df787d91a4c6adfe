"""Client failover against real daemons (real model): a daemon killed mid-utterance
(the stream continues on the other, no word heard twice or lost, one timeline,
and Whisper hears the sentence), and an `overloaded` refusal retried elsewhere."""

from __future__ import annotations

import re
import urllib.request
from typing import Any, Iterator

import numpy as np
import pytest

from support.daemon import DaemonProcess
from support.client_timeline import check_timeline
from kokorod.client import Audio, Chunk, Done, Error, Resumed, WordEvent, audio_of, connect

pytestmark = pytest.mark.slow

TEXT = ("The lighthouse keeper climbed the stairs every evening at dusk. "
        "He polished the great lens and trimmed the wick and swept the floor and wound the old clock "
        "and filled the lamps with oil and checked the windows for cracks before the sun went down. "
        "Then he watched the ships pass far out at sea until the stars came out. "
        "In the morning he wrote every ship he had seen in a small blue book. "
        "His daughter read the book aloud to him when his eyes grew tired.")
LONG = " ".join([TEXT] * 4)


def _expected_words(text: str) -> list[str]:
    return [w.strip(".,") for w in text.split()]


@pytest.fixture(scope="module")
def spare() -> Iterator[DaemonProcess]:
    d = DaemonProcess()
    yield d
    assert d.stop() == 0, d.log()[-3000:]


def _refused_overloaded(daemon: DaemonProcess) -> float:
    body = urllib.request.urlopen(daemon.http + "/metrics", timeout=10).read().decode()
    found = re.search(r'^kokorod_utterances_refused_total\{reason="overloaded"\} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


async def test_killed_daemon_mid_utterance_continues_on_the_other(spare: DaemonProcess) -> None:
    from support.asr import transcribe, word_error_rate

    victim = DaemonProcess()
    events: list[Any] = []
    killed_after_samples = None
    try:
        async with connect([victim.url, spare.url]) as client:
            assert client.url == victim.url
            rate = client.ready.sample_rate
            uid = await client.speak(TEXT)
            kill_at_samples = None
            async for event in client.stream(uid):
                events.append(event)
                if isinstance(event, Chunk) and event.index == 1:  # the long sentence: cut in its middle
                    kill_at_samples = round((event.start + event.end) / 2 * rate)
                if (killed_after_samples is None and kill_at_samples is not None and isinstance(event, Audio)
                        and event.offset + event.samples > kill_at_samples):
                    victim.proc.kill()  # kill -9: no close frame, no goodbye
                    killed_after_samples = event.offset + event.samples
            assert client.url == spare.url
    finally:
        victim.stop()

    assert killed_after_samples is not None
    resumed = [e for e in events if isinstance(e, Resumed)]
    assert len(resumed) == 1, "the daemon finished before it was killed; make TEXT longer"
    seam = resumed[0]
    assert seam.utterance == uid and seam.url == spare.url and seam.reason == "connection_lost"
    assert all(getattr(e, "utterance") == uid for e in events)
    # One timeline: contiguous frames across the seam, done counting all of them;
    # by index, every word of the text exactly once, in order, times increasing
    # (a word whose audio was cut is sent again with its index).
    words, at = check_timeline(events, TEXT, rate)
    frames = [e for e in events if isinstance(e, Audio)]
    assert seam.at_s * rate >= killed_after_samples  # frames already buffered may have come in too
    after = events.index(seam)
    assert all(f.offset >= round(seam.at_s * rate) for f in events[after:] if isinstance(f, Audio))
    assert all(w.start >= seam.at_s - 1e-6 for w in words if w.index >= seam.word_index)
    # And a listener hears the paragraph (the cut word's first part is extra).
    audio = np.concatenate([audio_of(f) for f in frames])
    heard, _ = transcribe(audio, rate)
    print(f"seam at {seam.at_s:.2f} s (killed after {killed_after_samples / rate:.2f} s), resumed from word "
          f"{seam.word_index} {words[seam.word_index].text!r}; heard: {heard}")
    assert word_error_rate(TEXT, heard) <= 0.15, heard


async def test_overloaded_daemon_is_skipped_for_the_other_url(spare: DaemonProcess) -> None:
    busy = DaemonProcess("--max-active-streams", "1")
    try:
        async with connect(busy.url) as hog:
            long_uid = await hog.speak(LONG)
            hog_stream = hog.stream(long_uid)
            async for event in hog_stream:  # admitted and speaking: it holds the only slot
                if isinstance(event, Audio):
                    break
            refused_before = _refused_overloaded(busy)
            async with connect([busy.url, spare.url], backoff_base_s=0.05) as client:
                assert client.url == busy.url  # the connection is accepted; the utterance is not
                text = "Hello from the other daemon."
                uid = await client.speak(text)
                events = [e async for e in client.stream(uid)]
                assert client.url == spare.url
            assert _refused_overloaded(busy) == refused_before + 1
            await hog.cancel(long_uid)
            async for event in hog_stream:
                pass
    finally:
        assert busy.stop() == 0, busy.log()[-3000:]
    assert not any(isinstance(e, (Error, Resumed)) for e in events)
    assert isinstance(events[-1], Done)
    assert [e.text for e in events if isinstance(e, WordEvent)] == _expected_words(text)
