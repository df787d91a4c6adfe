"""The first chunk sized by a latency budget, through a session (fake engine):
the budget comes from the daemon's measured speed and the speaking rate the
session learns from what it renders."""

from __future__ import annotations

from typing import Any

from kokorod.config import ServerConfig
from kokorod.daemon.admission import Capacity
from kokorod.protocol.messages import Chunk, Done, Speak
from support.session_fakes import FakeSynth, seeded, start, stop

TEXT = "The library opens at nine in the morning on weekdays. On weekends it opens an hour later."


async def chunks(config: ServerConfig, rtf: float | None) -> list[str]:
    capacity = Capacity(None, estimator=seeded(rtf)) if rtf is not None else None
    _session, peer, task, sched = await start(FakeSynth(), config=config, capacity=capacity)
    await peer.say(Speak("u", TEXT, final=True))
    await peer.wait_for(lambda e: isinstance(e, Done))
    out = [e.text for e in peer.events if isinstance(e, Chunk)]
    await stop(peer, task, sched)
    return out


async def test_a_fast_engine_starts_with_a_few_words_at_a_natural_point() -> None:
    timed = await chunks(ServerConfig(first_audio_ms=250), rtf=0.1)
    words = await chunks(ServerConfig(first_audio_ms=0), rtf=0.1)
    assert words[0] == "The library opens at nine in the morning on weekdays."  # 4-12 words: the sentence
    # The budget at the engine's expected pace (0.1: ~27 characters): cut
    # before "in the morning", never after "The" or "in".
    assert timed[0] == "The library opens at nine"
    assert "".join(timed) == "".join(words) == TEXT


async def test_nothing_measured_or_an_engine_that_cannot_keep_up_keeps_the_word_counts() -> None:
    assert (await chunks(ServerConfig(), rtf=None))[0].startswith("The library opens at nine")
    assert (await chunks(ServerConfig(), rtf=0.9))[0].startswith("The library opens at nine")


async def test_a_bigger_budget_gives_a_longer_first_chunk() -> None:
    sizes: list[int] = []
    for ms in (100, 300, 1000):
        sizes.append(len((await chunks(ServerConfig(first_audio_ms=ms), rtf=0.1))[0]))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
