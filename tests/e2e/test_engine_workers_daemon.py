"""Two engine workers on the real model: each run leases a free ONNX session
(kokorod.daemon.workers.WorkerSynthesizers), so two streams at once both
finish with their words, on a daemon that says it has two workers."""

from __future__ import annotations

import asyncio

import pytest

from support.daemon import DaemonProcess, Peer, check_stream_invariants, words_of
from kokorod.protocol.messages import Done, Speak

pytestmark = pytest.mark.slow
TEXTS = ("The first stream speaks about the weather today. It is sunny.",
         "The second stream reads a recipe. Mix the flour and the eggs.")


async def test_two_workers_serve_two_streams_at_once() -> None:
    daemon = DaemonProcess("--engine-workers", "2", "--engine-threads", "1", "--max-active-streams", "2",
                           "--stream-utilisation", "inf")  # admitted by the count alone, however loaded CI is
    try:
        peers = [await Peer.connect(daemon.url) for _ in TEXTS]
        for peer in peers:
            assert peer.ready is not None and peer.ready.capacity is not None
            assert peer.ready.capacity.workers == 2
        for i, (peer, text) in enumerate(zip(peers, TEXTS)):
            await peer.send(Speak(f"u{i}", text, final=True))
        utterances = await asyncio.gather(*(peer.utterance(f"u{i}") for i, peer in enumerate(peers)))
        for utt, text in zip(utterances, TEXTS):
            assert isinstance(utt.events[-1], Done), utt.events[-1]
            check_stream_invariants(utt)
            assert [w.text for w in words_of(utt)] == text.replace(".", "").split()
        for peer in peers:
            await peer.close()
    finally:
        assert daemon.stop() == 0, daemon.log()[-3000:]
