"""ResumeTracker: which text is unheard after a lost connection, and the
remapping of a resumed segment onto one continuous timeline (pure)."""

from __future__ import annotations

import pytest

from kokorod.client.resume import ResumeTracker, map_words
from kokorod.protocol.messages import Audio, Chunk, Done, WordEvent

RATE = 24000


def _heard(text: str | list[str], words: list[str], heard_s: float, final: bool = True,
           word_s: float = 0.5) -> ResumeTracker:
    """A tracker given ``text`` (one string or fragments), word events of
    ``word_s`` each, and audio up to ``heard_s``."""
    t = ResumeTracker("u1", RATE)
    fragments = [text] if isinstance(text, str) else text
    for i, piece in enumerate(fragments):
        t.add_text(piece, final and i == len(fragments) - 1)
    t.observe(Chunk("w", 0, "".join(fragments), 0.0, len(words) * word_s))
    for i, w in enumerate(words):
        t.observe(WordEvent("w", i, w, i * word_s, (i + 1) * word_s))
    if heard_s:
        t.observe(Audio("w", 0, 0, round(heard_s * RATE), RATE, "pcm_s16le", b""))
    return t


def test_resumes_at_the_first_word_not_fully_heard() -> None:
    p = _heard("Hello there, my friend.", ["Hello", "there", "my", "friend"], 1.2).resume_point()
    assert p.text == "my friend." and p.word_index == 2
    assert p.at_samples == round(1.2 * RATE) and p.at_s == pytest.approx(1.2)
    assert p.chunk_index == 1 and p.seq == 1 and p.final


def test_a_word_heard_to_its_end_is_not_repeated() -> None:
    p = _heard("Hello there, my friend.", ["Hello", "there", "my", "friend"], 1.0).resume_point()
    assert p.text == "my friend." and p.word_index == 2


def test_nothing_heard_yet_resends_everything() -> None:
    t = _heard("Hello there.", ["Hello", "there"], 0.0)
    p = t.resume_point()
    assert (p.text, p.source_offset, p.at_samples, p.word_index, p.seq) == ("Hello there.", 0, 0, 0, 0)
    assert not t.has_audio


def test_nothing_received_at_all() -> None:
    t = ResumeTracker("u1")
    t.add_text("Just text")
    p = t.resume_point()
    assert (p.text, p.word_index, p.chunk_index, p.final) == ("Just text", 0, 0, False)


def test_everything_heard_leaves_only_punctuation() -> None:
    p = _heard("Hello there.", ["Hello", "there"], 1.0).resume_point()
    assert p.text == "." and p.word_index == 2


def test_text_not_synthesized_yet_follows_the_last_heard_word() -> None:
    # Words of the next sentence have no events yet: resume right after "there".
    p = _heard("Hello there. More to come", ["Hello", "there"], 1.0, final=False).resume_point()
    assert p.text == ". More to come" and p.word_index == 2 and not p.final


def test_inline_phonemes_are_never_cut() -> None:
    text = "Say [Zorblax](/zˈɔɹblæks/) now."
    assert _heard(text, ["Say", "Zorblax", "now"], 0.6).resume_point().text == "[Zorblax](/zˈɔɹblæks/) now."
    assert _heard(text, ["Say", "Zorblax", "now"], 1.0).resume_point().text == "now."


def test_phoneme_text_is_not_mistaken_for_a_word() -> None:
    # "a" appears inside the phoneme tag; the word "a" is the one after it.
    text = "The [data](/dˈAtə/) a b."
    p = _heard(text, ["The", "data", "a", "b"], 1.0).resume_point()
    assert p.text == "a b." and p.word_index == 2


def test_a_link_with_spaces_is_resent_whole_and_its_words_indexed_again() -> None:
    text = "See [the big docs](https://example.com/x) today."
    p = _heard(text, ["See", "the", "big", "docs", "today"], 1.0).resume_point()
    # "big" is unheard, but the link cannot be cut: "the" is said again, with its index.
    assert p.text == "[the big docs](https://example.com/x) today." and p.word_index == 1


def test_markdown_emphasis() -> None:
    p = _heard("A **very bold** claim.", ["A", "very", "bold", "claim"], 0.7).resume_point()
    assert p.text == "**very bold** claim." and p.word_index == 1
    # Inside the emphasis the token is "bold**": the stray closing marker is not spoken.
    p = _heard("A **very bold** claim.", ["A", "very", "bold", "claim"], 1.0).resume_point()
    assert p.text == "bold** claim." and p.word_index == 2


def test_inline_code_is_resent_whole() -> None:
    p = _heard("Run `make test now` please.", ["Run", "make", "test", "now", "please"], 1.0).resume_point()
    assert p.text == "`make test now` please." and p.word_index == 1


def test_fragments_split_mid_word() -> None:
    p = _heard(["Hel", "lo th", "ere, my fri", "end."], ["Hello", "there", "my", "friend"], 1.0).resume_point()
    assert p.text == "my friend." and p.source_offset == len("Hello there, ")


def test_punctuation_and_numbers_as_written() -> None:
    text = "It costs $3.50, really! (Yes.)"
    p = _heard(text, ["It", "costs", "$3.50", "really", "Yes"], 1.5).resume_point()
    assert p.text == "really! (Yes.)" and p.word_index == 3
    p = _heard(text, ["It", "costs", "$3.50", "really", "Yes"], 2.0).resume_point()
    assert p.text == "(Yes.)"


def test_case_and_apostrophes() -> None:
    p = _heard("don't STOP me now", ["don't", "stop", "me", "now"], 0.5).resume_point()
    assert p.text == "STOP me now"


def test_cjk_words_without_spaces_cut_between_words() -> None:
    p = _heard("你好世界。今天很好。", ["你好", "世界", "今天", "很好"], 1.0).resume_point()
    assert p.text == "今天很好。" and p.word_index == 2


def test_a_word_not_found_resumes_after_the_last_found() -> None:
    p = _heard("One two three four.", ["One", "two", "zzz", "four"], 1.2).resume_point()
    assert p.text == " three four." or p.text.endswith("three four.")
    assert "two" not in p.text


def test_segments_continue_the_timeline_and_indices() -> None:
    t = _heard("Alpha bravo charlie delta.", ["Alpha", "bravo", "charlie", "delta"], 1.2)
    p = t.resume_point()
    assert p.text == "charlie delta." and p.word_index == 2
    t.start_segment(p)
    assert t.segments == 1
    # The new daemon-side utterance starts at 0; the client sees it continue.
    chunk = t.observe(Chunk("w2", 0, "charlie delta.", 0.0, 1.0))
    assert (chunk.utterance, chunk.index, chunk.start) == ("u1", 1, pytest.approx(1.2))
    w = t.observe(WordEvent("w2", 0, "charlie", 0.0, 0.5))
    assert (w.utterance, w.index, w.start, w.end) == ("u1", 2, pytest.approx(1.2), pytest.approx(1.7))
    a = t.observe(Audio("w2", 0, 0, round(0.6 * RATE), RATE, "pcm_s16le", b""))
    assert (a.utterance, a.seq, a.offset) == ("u1", 1, round(1.2 * RATE))
    t.observe(WordEvent("w2", 1, "delta", 0.5, 1.0))
    # A second loss: positions are found from the new segment's start on.
    q = t.resume_point()
    assert q.text == "delta." and q.word_index == 3 and q.at_samples == round(1.8 * RATE) and q.seq == 2
    t.start_segment(q)
    t.observe(Audio("w3", 0, 0, RATE // 2, RATE, "pcm_s16le", b""))
    done = t.observe(Done("w3", 0.5, RATE // 2))
    assert done.utterance == "u1" and done.samples == round(2.3 * RATE)
    assert done.duration == pytest.approx(2.3)


def test_text_after_final_is_refused() -> None:
    t = ResumeTracker("u1")
    t.add_text("Done.", final=True)
    t.add_text("")  # an empty fragment is harmless
    with pytest.raises(ValueError):
        t.add_text("more")


def test_map_words_never_lands_past_the_true_place() -> None:
    source = "the theory of the thing"
    spans = map_words(source, ["the", "theory", "of", "the", "thing"])
    assert [source[s:e] for s, e in spans] == ["the", "theory", "of", "the", "thing"]  # type: ignore[misc]
    assert spans[3] == (14, 17)


# -- the failover policy ----------------------------------------------------------

def test_backoff_is_exponential_bounded_and_jittered() -> None:
    import random

    from kokorod.client.failover import FailoverPolicy

    policy = FailoverPolicy(backoff_base_s=0.2, backoff_max_s=1.0)
    rng = random.Random(7)
    for attempt, cap in [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.0), (9, 1.0)]:
        delays = [policy.delay_s(attempt, False, True, rng) for _ in range(200)]
        assert all(cap * 0.5 <= d <= cap for d in delays)
        assert max(delays) - min(delays) > cap * 0.3  # spread out, not all at once
    # A lost connection moves to another URL at once; the same URL, or overloaded, waits.
    assert policy.delay_s(0, True, False, rng) == 0.0
    assert policy.delay_s(0, False, False, rng) > 0 and policy.delay_s(0, True, True, rng) > 0
    assert 0.5 * 0.5 <= policy.delay_s(0, False, True, rng, base_s=0.5) <= 0.5  # a server hint raises the base


def test_retries_are_bounded_by_count_and_by_time() -> None:
    from kokorod.client.failover import FailoverPolicy, RetryState

    policy = FailoverPolicy(max_retries=3, retry_budget_s=10.0)
    state = RetryState(["a", "b"])
    assert (state.url, state.next_url(), state.next_url()) == ("a", "b", "a")
    for _ in range(3):
        assert not state.exhausted(policy, now=100.0)
        state.fail(now=100.0)
    assert state.exhausted(policy, now=100.0)
    state.progress()
    assert not state.exhausted(policy, now=100.0)
    state.fail(now=100.0)
    assert not state.exhausted(policy, now=109.0) and state.exhausted(policy, now=111.0)


def test_words_inside_a_skipped_code_block_are_not_matched() -> None:
    # The block is skipped by the daemon; "the" inside it must not be taken for the spoken "the".
    text = "Look at this.\n```\nprint(the)\n```\nAnd the end."
    p = _heard(text, ["Look", "at", "this", "And", "the", "end"], 2.0).resume_point()
    assert p.text == "the end." and p.word_index == 4
    p = _heard(text, ["Look", "at", "this", "And", "the", "end"], 1.5).resume_point()
    assert p.text == "And the end."
