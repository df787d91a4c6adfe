"""Caption cues from word times: subtitle limits, order, breaks (no model)."""

from __future__ import annotations

import random

from kokorod.narrate.captions import (CLAUSE, LINE_CHARS, MAX_CUE_S, PARAGRAPH, SENTENCE, WORD, CaptionFormat,
                                      Cue, CueBuilder, TimedWord, boundary_of, split_lines, with_punctuation)

RATE = 24000


def timed(texts: list[str], word_s: float = 0.3, gap_s: float = 0.0) -> list[TimedWord]:
    out, t = [], 0
    for text in texts:
        start, end = t, t + int(word_s * RATE)
        out.append(TimedWord(text, start, end, boundary_of(text)))
        t = end + int(gap_s * RATE)
    return out


def cues_of(words: list[TimedWord]) -> list[Cue]:
    b = CueBuilder(RATE)
    cues = [c for w in words for c in b.feed(w)]
    return cues + b.flush()


def check_limits(cues: list[Cue], words: list[TimedWord]) -> None:
    assert [w for c in cues for w in c.words] == words  # every word once, in order
    for prev, cue in zip(cues, cues[1:]):
        assert prev.end <= cue.start
    for cue in cues:
        assert cue.start == cue.words[0].start and cue.end == cue.words[-1].end
        assert 1 <= len(cue.lines) <= 2
        if len(cue.words) > 1:
            assert all(len(line) <= LINE_CHARS for line in cue.lines), cue.lines
            assert cue.end - cue.start <= MAX_CUE_S * RATE


def test_random_text_keeps_every_limit() -> None:
    rng = random.Random(7)
    vocab = ["the", "a", "narration", "of", "long", "books,", "quietly.", "extraordinarily", "I", "said:", "yes!"]
    words = timed([rng.choice(vocab) for _ in range(3000)], word_s=0.35)
    cues = cues_of(words)
    check_limits(cues, words)
    assert len(cues) > 100


def test_slow_speech_is_cut_by_duration() -> None:
    words = timed(["word"] * 40, word_s=0.9)
    cues = cues_of(words)
    check_limits(cues, words)
    assert max(c.end - c.start for c in cues) <= MAX_CUE_S * RATE


def test_a_cue_ends_at_a_sentence_rather_than_mid_sentence() -> None:
    text = ("The storm had passed by morning and the roads were clear. Then everyone went back to work "
            "as if nothing had happened at all that night.").split()
    cues = cues_of(timed(text))
    assert cues[0].lines[-1].endswith("clear.")


def test_overflow_cuts_at_a_clause_end() -> None:
    text = ("When the long winter finally ended across the northern valleys, the farmers returned to "
            "their fields and planted barley and oats and rye and wheat").split()
    cues = cues_of(timed(text))
    assert cues[0].lines[-1].endswith("valleys,")


def test_a_short_sentence_joins_the_next_but_a_paragraph_always_ends_a_cue() -> None:
    words = timed(["Yes.", "We", "will", "go", "tomorrow", "morning."])
    assert len(cues_of(words)) == 1
    heading = [TimedWord("Chapter", 0, 100, WORD), TimedWord("One", 100, 200, PARAGRAPH),
               TimedWord("It", 300, 400, WORD), TimedWord("began.", 400, 500, SENTENCE)]
    assert [c.lines for c in cues_of(heading)] == [("Chapter One",), ("It began.",)]


def test_a_long_pause_ends_a_cue() -> None:
    words = timed(["one", "two", "three", "four"], gap_s=1.5)
    assert len(cues_of(words)) == 4


def test_a_word_longer_than_a_line_gets_a_cue_of_its_own() -> None:
    url = "https://example.com/" + "x" * 60
    words = timed(["see", url, "now"])
    cues = cues_of(words)
    assert any(c.lines == (url,) for c in cues)


def test_boundaries() -> None:
    assert boundary_of("end.") == SENTENCE and boundary_of("“Yes!”") == SENTENCE
    assert boundary_of("so,") == CLAUSE and boundary_of("word") == WORD
    assert boundary_of("word", "clause") == CLAUSE and boundary_of("word", "paragraph") == PARAGRAPH


def test_split_lines_balances_and_prefers_a_clause() -> None:
    lines = split_lines("It was late, and the streets were empty tonight".split())
    assert lines == ("It was late,", "and the streets were empty tonight")
    lines = split_lines("one two three four five six seven eight nine ten eleven".split())
    assert lines == ("one two three four five six", "seven eight nine ten eleven")
    assert split_lines(["short", "line"]) == ("short line",)


def test_punctuation_comes_from_the_written_text() -> None:
    written = '\n\n“Wait,” she said — *quietly* — and/or left. It cost 5 dollars.'
    words = ["Wait", "she", "said", "quietly", "and", "or", "left", "It", "cost", "five", "dollars"]
    assert with_punctuation(written, words) == ["“Wait,”", "she", "said", "quietly", "and/", "or", "left.", "It",
                                                "cost", "five", "dollars."]


def test_vtt_and_srt_text() -> None:
    cue = Cue(24000 * 3661 + 12, 24000 * 3662, ("Hello there,", "general."))
    vtt = CaptionFormat("vtt", RATE)
    assert vtt.header() == "WEBVTT\n\n"
    assert vtt.cue(cue) == "01:01:01.001 --> 01:01:02.000\nHello there,\ngeneral.\n\n"
    srt = CaptionFormat("srt", RATE)
    assert srt.cue(cue).startswith("1\n01:01:01,001 --> 01:01:02,000\n")
    assert srt.cue(cue).startswith("2\n")
