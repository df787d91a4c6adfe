"""<break/> pauses through a session (fake engine): exact silence on the timeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kokorod.audio.formats import decode_pcm
from kokorod.protocol.messages import Audio, Chunk, Done, Speak, Warning, WordEvent
from support.session_fakes import FakeSynth, start, stop


async def run(*fragments: str) -> list[Any]:
    _session, peer, task, sched = await start(FakeSynth())
    for i, text in enumerate(fragments):
        await peer.say(Speak("u", text, final=i == len(fragments) - 1))
    await peer.wait_for(lambda e: isinstance(e, Done))
    events = list(peer.events)
    await stop(peer, task, sched)
    return events


def timeline(events: list[Any]) -> tuple[dict[str, float], np.ndarray]:
    words = {e.text: e.start for e in events if isinstance(e, WordEvent)}
    pcm = np.concatenate([decode_pcm(e.pcm, e.format) for e in events if isinstance(e, Audio)])
    return words, pcm


@pytest.mark.parametrize("split", [False, True])
async def test_a_break_is_exact_silence_and_shifts_what_follows(split: bool) -> None:
    text = 'One two. <break time="{}"/> Three four.'
    base_words, base = timeline(await run(text.format("0ms")))
    tag = text.format("700ms")
    fragments = [tag[i:i + 3] for i in range(0, len(tag), 3)] if split else [tag]
    events = await run(*fragments)
    words, pcm = timeline(events)
    assert words["One"] == base_words["One"] and words["two"] == base_words["two"]
    assert round((words["Three"] - base_words["Three"]) * 24000) == 16800  # exactly 0.7 s
    assert round((words["four"] - base_words["four"]) * 24000) == 16800
    assert pcm.shape[0] - base.shape[0] == 16800
    # The inserted samples are silence, right where "Three" would have started.
    at = round(base_words["Three"] * 24000)
    assert np.array_equal(pcm[:at], base[:at]) and np.array_equal(pcm[at + 16800:], base[at:])
    assert not pcm[at : at + 16800].any()
    # The silence is audio frames with no chunk of their own; the tag's chunk keeps it as written.
    chunks = [e for e in events if isinstance(e, Chunk)]
    assert [c.text for c in chunks] == ['One two. <break time="700ms"/>', " Three four."]
    assert chunks[1].start * 24000 - chunks[0].end * 24000 == pytest.approx(16800)


async def test_a_break_alone_or_first_still_pauses() -> None:
    words, pcm = timeline(await run('<break time="250ms"/>Hi.'))
    assert not pcm[:6000].any() and round(words["Hi"] * 24000) >= 6000


async def test_a_clamped_break_is_warned_not_silent() -> None:
    events = await run('Wait <break time="30s"/> done.')
    warning = next(e for e in events if isinstance(e, Warning))
    assert warning.code == "markup" and "10000 ms" in warning.message
    words, _pcm = timeline(events)
    assert words["done"] - words["Wait"] >= 10.0
