"""The real daemon's rendered-chunk cache: a phrase spoken again (on another
connection too) comes from the cache, bit-identical, without an engine run."""

from __future__ import annotations

import urllib.request
from typing import Any, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.daemon import DaemonProcess, Peer, Utterance, check_stream_invariants, words_of
from kokorod.protocol.messages import Audio, Chunk, Done, Speak

pytestmark = pytest.mark.slow

GREETING = "Hi, thanks for calling Acme support. How can I help you today?"


def scrape(d: DaemonProcess) -> dict[str, float]:
    with urllib.request.urlopen(d.http + "/metrics", timeout=10) as r:
        body = r.read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(body) for s in family.samples if not s.labels}


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    d = DaemonProcess("--cache-mb", "8")
    yield d
    d.stop()


async def _say(peer: Peer, uid: str, text: str) -> Utterance:
    await peer.send(Speak(uid, text, final=True))
    utt = await peer.utterance(uid)
    assert isinstance(utt.events[-1], Done), utt.events[-1]
    check_stream_invariants(utt)
    return utt


def _timeline(utt: Utterance) -> list[Any]:
    """The utterance as the client hears and sees it, without its id."""
    out: list[Any] = []
    for e in utt.events:
        if isinstance(e, Audio):
            out.append(("audio", e.seq, e.offset, e.samples, bytes(e.pcm)))
        elif isinstance(e, Chunk):
            out.append(("chunk", e.index, e.text, e.start, e.end))
    out.extend(("word", w.index, w.text, w.start, w.end) for w in words_of(utt))
    return out


async def test_the_same_phrase_twice_is_served_from_the_cache_bit_identical(daemon: DaemonProcess) -> None:
    before = scrape(daemon)
    assert before["kokorod_chunk_cache_max_bytes"] == 8 * 2**20
    peer = await Peer.connect(daemon.url)
    first = await _say(peer, "first", GREETING)
    middle = scrape(daemon)
    misses = middle["kokorod_chunk_cache_misses_total"] - before["kokorod_chunk_cache_misses_total"]
    assert misses >= 1 and middle["kokorod_chunk_cache_hits_total"] == before["kokorod_chunk_cache_hits_total"]
    assert middle["kokorod_chunk_cache_bytes"] > 0
    second = await _say(peer, "second", GREETING)
    await peer.close()
    other = await Peer.connect(daemon.url)  # the cache is the daemon's, not the connection's
    third = await _say(other, "third", GREETING)
    await other.close()
    after = scrape(daemon)

    assert after["kokorod_chunk_cache_hits_total"] - middle["kokorod_chunk_cache_hits_total"] == 2 * misses
    assert after["kokorod_chunk_cache_misses_total"] == middle["kokorod_chunk_cache_misses_total"]
    # No engine run for the repeats: the RTF histogram counts engine-made chunks only.
    assert after["kokorod_synthesis_rtf_count"] == middle["kokorod_synthesis_rtf_count"]
    assert 0 < after["kokorod_chunk_cache_hit_ratio"] <= 1
    assert first.of(Audio) and words_of(first)
    assert _timeline(second) == _timeline(first)
    assert _timeline(third) == _timeline(first)
