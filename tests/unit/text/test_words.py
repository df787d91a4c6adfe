"""Grouping misaki tokens into written words and timing them in samples."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kokorod.text.words import TokenSpan as _TokenSpan, written_form as _written_form, words_from_tokens
from kokorod.text.normalize import Replacement


@pytest.mark.parametrize("token,written", [
    ("$3.50.", "$3.50"), ("a.m.", "a.m."), ("U.S.", "U.S."), ("Dr.", "Dr."), ("yesterday.", "yesterday"),
    ('"Stop!"', "Stop"), ("(hello),", "hello"), ("9:30", "9:30"), ("100%", "100%"),
])
def test_written_form_keeps_the_word_not_the_sentence_punctuation(token: str, written: str) -> None:
    assert _written_form(token) == written


def test_tokens_without_space_between_form_one_word_and_times_are_integer_samples() -> None:
    spans = [
        _TokenSpan("It", 0.1, 0.2, True, 0),
        _TokenSpan("$", None, None, False, 3),
        _TokenSpan("3.50", 0.2, 0.9, False, 4),
        _TokenSpan(".", 0.9, 0.95, False, 8),
    ]
    words = words_from_tokens(spans, offset_samples=48000)
    assert [(w.text, w.start, w.end) for w in words] == [("It", 48000 + 2400, 48000 + 4800), ("$3.50", 48000 + 4800, 48000 + 21600)]


def test_replacement_spans_map_spoken_words_back_to_the_written_text() -> None:
    # spoken: "see example dot com now" where "example dot com" stands for "example.com"
    spans = [
        _TokenSpan("see", 0.0, 0.2, True, 0),
        _TokenSpan("example", 0.2, 0.5, True, 4),
        _TokenSpan("dot", 0.5, 0.6, True, 12),
        _TokenSpan("com", 0.6, 0.8, True, 16),
        _TokenSpan("now", 0.8, 1.0, False, 20),
    ]
    words = words_from_tokens(spans, 0, [Replacement(4, 19, "example.com")])
    assert [(w.text, w.start / 24000, w.end / 24000) for w in words] == [
        ("see", 0.0, 0.2), ("example.com", 0.2, 0.8), ("now", 0.8, 1.0)]


def _toks(spec: list[tuple[str, str, bool]]) -> list[Any]:
    from kokorod.text.tokens import Token

    return [Token(t, p, w) for t, p, w in spec]


def test_join_timestamps_matches_kokoros_on_the_same_tokens_and_durations() -> None:
    import random

    from kokoro.pipeline import KPipeline

    from kokorod.text.words import join_timestamps

    rng = random.Random(7)
    for _ in range(200):
        spec = [("w%d" % k, "x" * rng.randint(1, 6), rng.random() < 0.8) for k in range(rng.randint(1, 12))]
        phonemes = "".join(p + (" " if w else "") for _, p, w in spec)
        durations = [rng.randint(0, 9) for _ in range(len(phonemes) + 2)]
        ours, theirs = _toks(spec), _toks(spec)
        join_timestamps(ours, durations)
        KPipeline.join_timestamps(theirs, np.asarray(durations))
        assert [(t.start_ts, t.end_ts) for t in ours] == [(t.start_ts, t.end_ts) for t in theirs]


def test_a_silent_token_with_a_space_consumes_one_duration_not_two() -> None:
    from kokorod.text.words import join_timestamps

    toks = _toks([("a", "a", True), ("—", "", True), ("b", "b", False)])
    # ids: BOS a ␠ ␠ b EOS
    join_timestamps(toks, [3, 2, 1, 1, 4, 1])
    assert toks[0].start_ts == 0 and toks[0].end_ts == (2 * 2 + 1) / 80
    # In half-frames: "a" ends mid-space (5), the silent token's space ends at 8
    # and "b" starts at that space's middle (7); with two ids consumed there,
    # "b" would have been timed from EOS's duration instead of its own.
    assert toks[2].start_ts == 7 / 80
    assert toks[2].end_ts == (8 + 2 * 4) / 80


@pytest.mark.parametrize("written, shown", [
    ("[Kokoro](/kˈOkəɹO/)", "Kokoro"),
    ("[Kokoro](/kˈOkəɹO/),", "Kokoro"),
    ("([nginx](/ˈɛnʤɪnˈɛks/))", "nginx"),
    ("[link](https://example.com)", "link](https://example.com"),  # not phonemes: left to the normaliser
])
def test_inline_phoneme_markup_shows_as_its_word(written: str, shown: str) -> None:
    assert _written_form(written) == shown
