"""What a client sees of one utterance, checked as one continuous stream (the
failover tests against fake daemons and the resume test against a real one)."""

from __future__ import annotations

import re
from typing import Any

from kokorod.client import Audio, Done, WordEvent


def words_of_text(text: str) -> list[str]:
    # What the daemon's word events carry for these texts: the word without markup or punctuation.
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return [w for w in (t.strip(".,!?[]*") for t in text.split()) if w]


def check_timeline(events: list[Any], text: str, rate: int = 24000) -> tuple[list[WordEvent], int]:
    """One continuous stream: contiguous frames, word indices and times in
    order, every word of ``text`` once (a re-spoken word replaces its index).
    Returns the words by index and the stream's length in samples (the
    real-daemon test checks its seam with them)."""
    frames = [e for e in events if isinstance(e, Audio)]
    assert [f.seq for f in frames] == list(range(len(frames)))
    at = 0
    for f in frames:
        assert f.offset == at
        at += f.samples
    assert isinstance(events[-1], Done) and events[-1].samples == at
    by_index: dict[int, WordEvent] = {}
    for w in (e for e in events if isinstance(e, WordEvent)):
        by_index[w.index] = w
    words = [by_index[i] for i in sorted(by_index)]
    assert sorted(by_index) == list(range(len(words)))
    assert [w.text for w in words] == words_of_text(text)
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end * rate <= at + 1 for w in words)
    return words, at
