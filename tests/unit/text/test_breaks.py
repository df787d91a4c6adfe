"""Pause tags: parsing, and how the segmenter cuts at them (sans-I/O)."""

from __future__ import annotations

import pytest

from kokorod.text.breaks import DEFAULT_BREAK_MS, MAX_BREAK_MS, break_tag_end, parse_break
from kokorod.text.segmenter import Segmenter


@pytest.mark.parametrize("tag, ms", [
    ('<break time="500ms"/>', 500), ('<break time="1.5s" />', 1500), ("<break time='2 s'/>", 2000),
    ('<BREAK TIME="250MS"/>', 250), ('<break time=".5s"/>', 500), ('<break time="0ms"/>', 0),
    ("<break/>", DEFAULT_BREAK_MS), ("<break>", DEFAULT_BREAK_MS), ('<break strength="strong"/>', 1000),
    ('<break strength="none"/>', 0), ('<break strength="x-weak"/>', 100),
])
def test_understood_tags(tag: str, ms: int) -> None:
    assert parse_break(tag) == (ms, "")


@pytest.mark.parametrize("tag, ms, said", [
    ('<break time="abc"/>', DEFAULT_BREAK_MS, "not understood"),
    ('<break time="20s"/>', MAX_BREAK_MS, "limit"),
    ('<break strength="huge"/>', DEFAULT_BREAK_MS, "not understood"),
])
def test_misunderstood_tags_pause_anyway_and_say_so(tag: str, ms: int, said: str) -> None:
    got, note = parse_break(tag)
    assert got == ms and said in note


def test_tag_end_waits_for_a_tag_still_arriving() -> None:
    assert break_tag_end('<break time="5', 0, final=False) is None
    assert break_tag_end("<bre", 0, final=False) is None
    assert break_tag_end("<", 0, final=False) is None
    assert break_tag_end('x <break time="5ms"/> y', 2, final=False) == 21
    # Not a tag, or cannot become one: no waiting.
    for text in ("<breakfast>", "<b>", "< b", "<3", '<break time="5'):
        assert break_tag_end(text, 0, final=True) == 0 or text == "<breakfast>"
    assert break_tag_end("<breakfast>", 0, final=False) == 0
    assert break_tag_end("<br>", 0, final=False) == 0
    assert break_tag_end("<break " + "x" * 200, 0, final=False) == 0  # never closed: stop waiting


def segments(text: str, step: int | None = None) -> list[tuple[str, str, int]]:
    seg = Segmenter()
    out = []
    pieces = [text] if step is None else [text[i:i + step] for i in range(0, len(text), step)]
    for piece in pieces:
        out += seg.feed(piece)
    out += seg.flush()
    return [(s.text, s.boundary, s.pause_after_ms) for s in out]


TEXT = 'Hello there. <break time="700ms"/> How are you today, my friend? <break strength="strong" /> Fine.'


def test_a_break_cuts_and_carries_its_pause() -> None:
    assert segments(TEXT) == [
        ('Hello there. <break time="700ms"/>', "break", 700),
        (' How are you today, my friend? <break strength="strong" />', "break", 1000),
        (" Fine.", "final", 0),
    ]
    seg = Segmenter()
    first = (seg.feed(TEXT) + seg.flush())[0]
    assert first.spoken == "Hello there." and not first.dropped  # the tag is control, not dropped text


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 11])
def test_a_tag_split_across_fragments_is_the_same_tag(step: int) -> None:
    assert segments(TEXT, step) == segments(TEXT)


def test_breaks_mid_sentence_at_the_start_and_in_a_row() -> None:
    assert segments('Wait<break time="1s"/>for it.') == [('Wait<break time="1s"/>', "break", 1000), ("for it.", "final", 0)]
    got = segments('<break time="300ms"/><break time="200ms"/>Go.')
    assert got == [('<break time="300ms"/>', "break", 300), ('<break time="200ms"/>', "break", 200), ("Go.", "final", 0)]


def test_no_break_inside_code_and_tags_that_are_not_breaks() -> None:
    assert all(p == 0 for _t, _b, p in segments("Type `<break/>` to pause. Eat <breakfast> now."))
    assert all(p == 0 for _t, _b, p in segments("```\n<break/>\n```\nDone."))


def test_a_clamped_break_is_noted() -> None:
    seg = Segmenter()
    first = (seg.feed('Long <break time="60s"/> pause.') + seg.flush())[0]
    assert first.pause_after_ms == MAX_BREAK_MS and "limit" in first.notes[0]


def test_no_clause_cut_between_a_cue_and_its_digits() -> None:
    """The normaliser reads '555-2187' as a phone number from the 'Phone:' before
    it; a cut at the colon would leave the number without its cue."""
    seg = Segmenter(max_chunk_chars=40, min_chunk_chars=10)
    text = "First we say hello to everyone here. Then please call our main office phone: 555-2187 and ask for Sam."
    out = seg.feed(text) + seg.flush()
    assert not any(s.text.rstrip().endswith("phone:") for s in out), [s.text for s in out]
    assert any("5 5 5, 2 1 8 7" in s.spoken for s in out), [s.spoken for s in out]
    # The first chunk's forced cut (first_max words) skips a gap before digits too.
    seg = Segmenter(first_min_words=3, first_max_words=6)
    first = seg.feed("so we will now dial number 0800 123 456 and then wait for them")[0]
    assert first.text == "so we will now dial number 0800 123 456", first.text
