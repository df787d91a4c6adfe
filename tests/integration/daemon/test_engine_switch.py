"""A daemon started with ``--engine auto`` and no record (in-process, tone
engines, real voices and G2P): ready on int8 at once, it measures when idle,
switches to the faster candidate, reports it (ready, /metrics), and speaks
with it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kokorod.config import ServerConfig
from kokorod.daemon.core import Daemon
from kokorod.engine.base import CancelToken, EngineOutput
from kokorod.engine.choice import REFERENCE, Choice
from kokorod.engine.selection import PENDING_REASON, PendingMeasure
from kokorod.protocol.messages import Done, Error, Speak
from kokorod.speech.synthesizer import Synthesizer
from support.tone_engine import ToneEngine

# CPU seconds each run burns (measured by CPU time, so the machine's load does not matter).
COST_S = {REFERENCE: 0.02, "onnx-fp32": 0.005}


class BurningTone(ToneEngine):
    def __init__(self, vocab: dict[str, int], label: str) -> None:
        super().__init__(vocab)
        self.label = label

    def run(self, token_ids: list[int], style: Any, speed: float, cancel: CancelToken | None = None) -> EngineOutput:
        started = time.process_time()
        while time.process_time() - started < COST_S[self.label]:
            pass
        return super().run(token_ids, style, speed, cancel)


@pytest.fixture
def synth(tmp_path: Path) -> Synthesizer:
    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.assets.voices import VoiceStore
    from kokorod.engine.onnx_engine import load_vocab
    from kokorod.text.g2p import G2PBank

    if not (resolve_cache_dir(None) / "voices" / "af_heart.bin").exists():
        pytest.skip("voices not fetched (kokorod fetch)")
    vocab = dict(load_vocab())
    pending = PendingMeasure(tmp_path, {"test": "switch"}, (REFERENCE, "onnx-fp32"),
                             lambda name: BurningTone(vocab, name), lambda n: np.zeros((1, 256), np.float32))
    engine = BurningTone(vocab, REFERENCE)
    engine.choice = Choice(REFERENCE, "pending", PENDING_REASON, pending=pending)  # type: ignore[attr-defined]
    return Synthesizer(engine, VoiceStore(resolve_cache_dir(None) / "voices", fetch_missing=False), G2PBank())


async def test_ready_on_int8_then_measured_switched_and_reported(synth: Synthesizer) -> None:
    d = Daemon(ServerConfig(port=0, first_audio_ms=0, chunk_cache_mb=0))
    d.scheduler.start()
    try:
        await d.load(lambda: synth)
        assert d.ready and d.services is not None and d.services.engine == REFERENCE
        assert b'source="pending"' in d.metrics.render()
        deadline = time.monotonic() + 60
        while d.metrics.engine_choice.choice.source != "measured":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "not measured within 60 s of ready"
            await asyncio.sleep(0.1)
        assert d.metrics.engine_choice.choice.name == "onnx-fp32"  # type: ignore[union-attr]
        assert d.workers is not None and d.workers.synths[0].engine.label == "onnx-fp32"
        assert b'engine="onnx-fp32"' in d.metrics.render() and b'source="measured"' in d.metrics.render()
        async with d.local_peer() as peer:
            ready = await anext(peer.events())
            assert ready.capacity is not None and ready.capacity.engine == "onnx-fp32"
            runs_before = len(d.workers.synths[0].engine.phonemes)
            peer.send(Speak(utterance="u1", text="Hello there.", final=True))
            async for event in peer.events():
                assert not isinstance(event, Error), event
                if isinstance(event, Done):
                    break
            assert len(d.workers.synths[0].engine.phonemes) > runs_before  # spoken by the new engine
    finally:
        await d.shutdown()
