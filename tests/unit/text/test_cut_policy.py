"""The cut policy's arithmetic (time → characters) and its word-gap ranks."""

from __future__ import annotations

import math

import pytest

from kokorod.text.cut_policy import RANKS, ChunkBudget, gap_kind

FW = frozenset({"the", "to", "and", "at"})


def test_first_chunk_fits_the_latency_budget_after_the_runs_overhead() -> None:
    # 0.5 s of engine time at pace 0.25 decodes 2 s of audio; 0.4 s of it is
    # overhead, so 1.6 s of speech = 24 characters at 15 chars/s.
    b = ChunkBudget(0.25, chars_per_s=15.0, overhead_s=0.4, first_audio_s=0.5)
    assert b.overhead_chars == pytest.approx(6.0)
    assert b.first_chars() == pytest.approx(24.0)


def test_first_chunk_is_never_below_the_size_the_ramp_can_grow_from() -> None:
    # A tiny budget on a slow engine: the budget alone allows nothing, so the
    # first chunk is the shortest after which the second can be as long.
    b = ChunkBudget(0.6, chars_per_s=15.0, overhead_s=0.5, first_audio_s=0.1)
    floor = b.ramp_floor_chars()
    assert b.first_chars() == pytest.approx(floor)
    # At that size the second chunk, made while the first plays, is longer.
    assert b.later_chars(1, int(math.ceil(floor)), 0) >= 1.2 * floor


def test_no_budget_means_no_first_limit_and_slow_engines_have_no_ramp_floor() -> None:
    assert ChunkBudget(0.3).first_chars() is None
    assert ChunkBudget(1.2, chars_per_s=15.0, overhead_s=0.5).ramp_floor_chars() == 0.0


def test_later_chunks_pay_the_overhead_once_per_chunk() -> None:
    b = ChunkBudget(0.5, chars_per_s=10.0, overhead_s=0.2)  # 2 characters a run
    # 60 characters spoken, 40 of them after the first: the 3rd later chunk may
    # have 60/0.5 - 40 - 3*2 = 74.
    assert b.later_chars(3, 60, 40) == pytest.approx(74.0)
    assert ChunkBudget(0.5).later_chars(3, 60, 40) == pytest.approx(80.0)  # no overhead: the old rule


@pytest.mark.parametrize("kwargs", [{"pace": 0.0}, {"pace": math.nan}, {"pace": 0.5, "chars_per_s": 0.0},
                                    {"pace": 0.5, "overhead_s": -1.0}])
def test_nonsense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ChunkBudget(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("before, after, kind", [
    ("walked", "to", "phrase"),      # a phrase starts: "I walked | to the store"
    ("the", "store", "weak"),        # a chunk must not end on "the"
    ("walked", "home", "word"),
    ("walked", None, "word"),        # the next word has not arrived yet
    ("(The", "store", "weak"),       # punctuation and case do not hide a function word
    ("walked", "And,", "phrase"),
    ("minutes", "ago.", "weak"),      # a sentence's last word is not left alone
    ("minutes", "ago!\"", "weak"),
])
def test_word_gaps_are_ranked_by_their_neighbours(before: str, after: str | None, kind: str) -> None:
    assert gap_kind(before, after, FW) == kind


def test_ranks_put_sentences_first_and_digits_last() -> None:
    order = sorted(RANKS, key=RANKS.__getitem__, reverse=True)
    assert order == ["sentence", "clause", "phrase", "word", "weak", "numeral"]
