"""Grouping misaki tokens into written words and timing them in samples."""

from __future__ import annotations

import pytest

from kokorod.synthesizer import _TokenSpan, _written_form, words_from_tokens
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
