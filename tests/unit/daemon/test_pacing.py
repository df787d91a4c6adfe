"""SpeechRates: the speaking rate and per-run overhead learnt from rendered runs."""

from __future__ import annotations

import pytest

from kokorod.daemon.pacing import MAX_LANGUAGES, PRIOR_CHARS_PER_S, PRIOR_OVERHEAD_S, SpeechRates

SR = 24000


def test_priors_until_a_language_is_heard() -> None:
    r = SpeechRates()
    assert r.chars_per_s("en-us", "words") == pytest.approx(PRIOR_CHARS_PER_S["words"])
    assert r.chars_per_s("zh", "chars") == pytest.approx(PRIOR_CHARS_PER_S["chars"])
    assert r.overhead_s("en-us", "words") == pytest.approx(PRIOR_OVERHEAD_S)


def test_learns_the_rate_and_overhead_the_engine_shows() -> None:
    r = SpeechRates()
    for _ in range(200):  # 20 chars in 1 s of speech, 0.2 s decoded around it
        r.observe("en-us", "words", spoken_chars=20, speech_samples=SR, decoded_samples=int(1.2 * SR),
                  sample_rate=SR, speed=1.0)
    assert r.chars_per_s("en-us", "words") == pytest.approx(20.0, rel=0.05)
    assert r.overhead_s("en-us", "words") == pytest.approx(0.2, rel=0.05)
    assert r.chars_per_s("fr", "words") == pytest.approx(PRIOR_CHARS_PER_S["words"])  # per language


def test_speed_is_normalised_to_1x_and_applied_to_the_budget() -> None:
    r = SpeechRates()
    for _ in range(200):  # at 2x: 20 chars in 0.5 s, 0.1 s of overhead = 1x's 20 chars/s and 0.2 s
        r.observe("en-us", "words", spoken_chars=20, speech_samples=SR // 2, decoded_samples=int(0.6 * SR),
                  sample_rate=SR, speed=2.0)
    assert r.chars_per_s("en-us", "words") == pytest.approx(20.0, rel=0.05)
    assert r.overhead_s("en-us", "words") == pytest.approx(0.2, rel=0.05)
    b = r.budget("en-us", "words", speed=2.0, pace=0.5, first_audio_s=0.25)
    assert b is not None
    assert b.chars_per_s == pytest.approx(40.0, rel=0.05) and b.overhead_s == pytest.approx(0.1, rel=0.05)


def test_short_or_odd_runs_are_not_learnt_from() -> None:
    r = SpeechRates()
    r.observe("en-us", "words", spoken_chars=3, speech_samples=SR // 10, decoded_samples=SR, sample_rate=SR, speed=1)
    r.observe("en-us", "words", spoken_chars=0, speech_samples=SR, decoded_samples=SR, sample_rate=SR, speed=1)
    r.observe("en-us", "words", spoken_chars=9, speech_samples=SR, decoded_samples=SR // 2, sample_rate=SR, speed=1)
    assert r.chars_per_s("en-us", "words") == pytest.approx(PRIOR_CHARS_PER_S["words"])


def test_no_measured_speed_no_budget_and_an_engine_that_cannot_keep_up_gets_the_old_policy() -> None:
    r = SpeechRates()
    assert r.budget("en-us", "words", speed=1.0, pace=None, first_audio_s=0.25) is None
    slow = r.budget("en-us", "words", speed=1.0, pace=1.3, first_audio_s=0.25)
    assert slow is not None and slow.first_audio_s is None and slow.overhead_s == 0.0
    fast = r.budget("en-us", "words", speed=1.0, pace=0.3, first_audio_s=0.25)
    assert fast is not None and fast.first_audio_s == 0.25 and fast.overhead_s > 0


def test_the_first_chunks_pace_reaches_the_budget_never_above_the_planning_pace() -> None:
    r = SpeechRates()
    b = r.budget("en-us", "words", speed=1.0, pace=0.45, first_audio_s=0.25, first_pace=0.3)
    assert b is not None and b.first_pace == 0.3 and b.pace == 0.45
    b = r.budget("en-us", "words", speed=1.0, pace=0.45, first_audio_s=0.25, first_pace=0.6)
    assert b is not None and b.first_pace == 0.45
    assert r.budget("en-us", "words", speed=1.0, pace=0.45, first_audio_s=0.25).first_pace is None  # type: ignore[union-attr]


def test_languages_held_are_bounded() -> None:
    r = SpeechRates()
    for i in range(MAX_LANGUAGES * 3):
        r.chars_per_s(f"x{i}", "words")
    assert len(r._rates) <= MAX_LANGUAGES
