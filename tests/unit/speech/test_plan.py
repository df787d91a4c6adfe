"""The speech pipeline's pure parts: a segment's plan, the last sound, the
in-process timeline. No engine."""

from __future__ import annotations

import numpy as np

from kokorod.speech.chunk import SpeechChunk, Word
from kokorod.speech.plan import (
    MARKUP, SKIPPED, UNSPEAKABLE, Pause, Synthesize, Warn, is_last, plan_segment, unspeakable_warning,
)
from kokorod.speech.timeline import Timeline
from kokorod.text.languages import for_voice
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment

EN = for_voice("af_heart")


def segments(text: str) -> list[Segment]:
    seg = segmenter_for(EN)
    return seg.feed(text) + seg.flush()


def test_warnings_come_first_then_the_speech_then_the_pause() -> None:
    (first, *_rest) = segments('Hello 🦄 there. <break time="1.5s"/> Bye.')
    steps = plan_segment(first, EN)
    assert [type(s) for s in steps] == [Warn, Synthesize, Pause]
    assert steps[0] == Warn(UNSPEAKABLE, "🦄", f"not speakable as {EN.name}; skipped") and steps[0].unspoken
    assert isinstance(steps[2], Pause) and steps[2].samples == 36_000  # 1.5 s at 24 kHz, in integer samples


def test_a_code_block_is_reported_and_never_synthesized() -> None:
    steps = [s for seg in segments("Run it.\n\n```\nls -la\n```\n") for s in plan_segment(seg, EN)]
    assert [type(s) for s in steps] == [Synthesize, Warn]
    assert steps[1] == Warn(SKIPPED, "```\nls -la\n```", "code block not spoken")


def test_a_clamped_break_is_a_markup_note_not_unspoken_text() -> None:
    steps = [s for seg in segments('Wait. <break time="60s"/> Go.') for s in plan_segment(seg, EN)]
    notes = [s for s in steps if isinstance(s, Warn)]
    assert len(notes) == 1 and notes[0].code == MARKUP and not notes[0].unspoken
    assert [s.samples for s in steps if isinstance(s, Pause)] == [10 * 24_000]  # clamped at 10 s


def test_the_last_sound_is_the_last_segment_that_makes_one() -> None:
    code_only = segments("```\nls\n```\n")
    assert is_last(True, code_only)  # nothing after it makes a sound
    assert not is_last(True, segments("More words."))
    assert not is_last(False, [])  # the text may go on


def test_unspeakable_words_after_synthesis() -> None:
    assert unspeakable_warning([], EN) is None
    warn = unspeakable_warning(["Ж", "ß"], EN)
    assert warn is not None and warn.code == UNSPEAKABLE and warn.text == "Ж ß"


def test_timeline_shifts_words_by_the_samples_before_them() -> None:
    line = Timeline()
    first = line.place(SpeechChunk(np.ones(100, dtype=np.float32), [Word("a", 10, 90)]))
    line.pause(50)
    second = line.place(SpeechChunk(np.ones(40, dtype=np.float32), [Word("b", 0, 40)]))
    assert first == [Word("a", 10, 90)] and second == [Word("b", 150, 190)]
    assert line.position_samples == 190 == line.audio.shape[0]
    assert not line.audio[100:150].any()
    counting = Timeline(keep_audio=False)
    counting.pause(24_000)
    assert counting.duration_s == 1.0 and counting.audio.shape[0] == 0
