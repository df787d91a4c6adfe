"""Numbers that are not quantities (kokorod.text.numbers_en): both sides of every rule,
the spans back to the written text, and the segmenter never cutting inside them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kokorod.text.normalize import normalize
from kokorod.text.numbers_en import split_run
from kokorod.text.segmenter import Segment, Segmenter
from kokorod.text.words import locate, words_from_tokens


def said(text: str) -> str:
    return normalize(text).spoken


# (written, spoken): each rule with the text that must trigger it and the
# neighbours that must not.
CASES = {
    "phone by format": [
        ("(415) 555-2187", "4 1 5, 5 5 5, 2 1 8 7"),
        ("415-555-2187", "4 1 5, 5 5 5, 2 1 8 7"),
        ("415.555.2187", "4 1 5, 5 5 5, 2 1 8 7"),
        ("415 555 2187", "4 1 5, 5 5 5, 2 1 8 7"),
        ("+1 415 555 2187", "plus 1, 4 1 5, 5 5 5, 2 1 8 7"),
        ("+1 (415) 555-2187", "plus 1, 4 1 5, 5 5 5, 2 1 8 7"),
        ("+1-415-555-2187", "plus 1, 4 1 5, 5 5 5, 2 1 8 7"),
        ("1-800-555-0199", "1, 800, 5 5 5, 0 1 9 9"),
        ("1 (800) 555-0199", "1, 800, 5 5 5, 0 1 9 9"),
        ("(800) 555-0199", "800, 5 5 5, 0 1 9 9"),
        ("1-888-555-0199", "1, 8 8 8, 5 5 5, 0 1 9 9"),  # only 800/900 are "eight hundred"
        ("+44 20 7946 0958", "plus 4 4, 2 0, 7 9 4 6, 0 9 5 8"),
        ("+49 30 12345678", "plus 4 9, 3 0, 1 2 3 4, 5 6 7 8"),
        ("+33 1 23 45 67 89", "plus 3 3, 1, 2 3, 4 5, 6 7, 8 9"),
        ("Call +1 555 123 4567 now", "Call plus 1, 5 5 5, 1 2 3, 4 5 6 7 now"),
        # not phones
        ("+5 points", "+5 points"),
        ("+1 2 3", "+1 2 3"),
    ],
    "phone by cue": [
        ("Call 555-2187", "Call 5 5 5, 2 1 8 7"),
        ("call me at 555-2187.", "call me at 5 5 5, 2 1 8 7."),
        ("Phone: 555-2187", "Phone: 5 5 5, 2 1 8 7"),
        ("Tel. 555 2187", "Tel. 5 5 5, 2 1 8 7"),
        ("Fax 555.2187", "Fax 5 5 5, 2 1 8 7"),
        ("Dial 555-2187", "Dial 5 5 5, 2 1 8 7"),
        ("Text 555-2187 for help", "Text 5 5 5, 2 1 8 7 for help"),
        ("My number is 555-2187", "My number is 5 5 5, 2 1 8 7"),
        ("**Call** 555-2187", "Call 5 5 5, 2 1 8 7"),  # the cue is in another markdown piece
        ("Call 020 7946 0958", "Call 0 2 0, 7 9 4 6, 0 9 5 8"),
        ("Call 030 1234567", "Call 0 3 0, 1 2 3, 4 5 6 7"),
        ("call 4155552187", "call 4 1 5, 5 5 5, 2 1 8 7"),
        ("call 5552187", "call 5 5 5, 2 1 8 7"),
        ("Call 12 34 56 78", "Call 1 2, 3 4, 5 6, 7 8"),
        # the other side: ranges and scores stay as today
        ("pages 10-12", "pages 10 to 12"),
        ("In 1990–1995 we grew", "In 1990 to 1995 we grew"),
        ("ages 5-12", "ages 5 to 12"),
        ("10-20 minutes", "10 to 20 minutes"),
        ("scores 3-2", "scores 3 to 2"),
        ("Sold 555-2187 units", "Sold 555 to 2187 units"),  # 3-4 without a cue: a range
        ("a number of 200-1000 users", "a number of 200 to 1000 users"),  # range cue nearer than the phone cue
        ("Call between 200-1000 users", "Call between 200 to 1000 users"),
        ("Call 100-1000 people", "Call 100 to 1000 people"),  # no US number starts with 1
        ("Call us in 2023-2024", "Call us in 2023 to 2024"),  # 4-4 after a cue: still a range
        ("Call me 10-12 times", "Call me 10 to 12 times"),  # too few digits for a phone
    ],
    "ZIP": [
        ("ZIP 94103", "ZIP 9 4 1 0 3"),
        ("zip code: 02115", "zip code: 0 2 1 1 5"),
        ("postal code 94103", "postal code 9 4 1 0 3"),
        ("San Francisco, CA 94103.", "San Francisco, CA 9 4 1 0 3."),
        ("Boston, MA, 02115", "Boston, MA, 0 2 1 1 5"),
        ("94103-1234", "9 4 1 0 3, 1 2 3 4"),
        ("ZIP 94103-1234", "ZIP 9 4 1 0 3, 1 2 3 4"),
        # quantities stay numbers
        ("12345 people", "12345 people"),
        ("It costs $12345", "It costs $12345"),
        ("We have 94103 files", "We have 94103 files"),
        ("XY 12345", "XY 12345"),  # not a state
        ("10,000-20,000", "10,000 to 20,000"),
    ],
    "UK postcodes": [
        ("London SW1A 1AA.", "London S-W 1 A, 1 A-A."),
        ("M1 1AE", "M 1, 1 A-E"),
        ("EC1A 1BB", "E-C 1 A, 1 B-B"),
        ("AB10 1XG", "A-B 10, 1 X-G"),
        ("PS5 5GB", "PS5 5 gigabytes"),  # a size, not a postcode
        ("A4 paper, B2 level", "A4 paper, B2 level"),
        ("SW1A 1CA", "SW1A 1CA"),  # C is never in the inward code
    ],
    "digit groups": [
        ("4111 1111 1111 1111", "4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1"),
        ("4111-1111-1111-1111", "4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1"),
        ("3782 822463 10005", "3 7 8 2, 8 2 2, 4 6 3, 1 0 0 0 5"),  # Amex 4-6-5
        ("1234-5678-9012", "1 2 3 4, 5 6 7 8, 9 0 1 2"),
        ("order 1234-5678", "order 1 2 3 4, 5 6 7 8"),
        ("Order #12345", "Order number 1 2 3 4 5"),
        ("account number 12345678", "account number 1 2 3 4, 5 6 7 8"),
        ("Your confirmation is 123456789", "Your confirmation is 1 2 3, 4 5 6, 7 8 9"),
        ("PIN 1234", "PIN 1 2 3 4"),
        ("card 4111111111111111", "card 4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1"),
        # plain big numbers and pairs stay
        ("123456789012345", "123456789012345"),
        ("4111111111111111", "4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1"),  # 16 digits: never a quantity (long_numbers)
        ("1,000,000 people", "1,000,000 people"),
        ("1234-5678", "1234 to 5678"),
        ("2020 2021 2022", "2020 2021 2022"),
        ("order 3 of 12345 items", "order 3 of 12345 items"),
        ("order 1234", "order 1234"),  # four digits: a number ("order twelve thirty-four")
        ("1-2-3", "1-2-3"),
        ("in case 12345 people come", "in case 12345 people come"),
    ],
    "IP and versions": [
        ("IP 192.168.1.1", "IP 192 dot 168 dot 1 dot 1"),
        ("Connect to 192.168.1.1:8080", "Connect to 192 dot 168 dot 1 dot 1 colon 8080"),
        ("Subnet 10.0.0.0/24", "Subnet 10 dot 0 dot 0 dot 0 slash 24"),
        ("version 1.2.3.4", "version 1 point 2 point 3 point 4"),  # a cue beats the IP shape
        ("Build 10.0.19041.1", "Build 10 point 0 point 19041 point 1"),
        ("1.2.3.256", "1 point 2 point 3 point 256"),  # > 255: no address
        ("v1.2.3", "version 1 point 2 point 3"),
        ("Version v2.0 and v3 and 2.0.1", "Version 2 point 0 and version 3 and 2 point 0 point 1"),
        ("3.11.7", "3 point 11 point 7"),
        ("Python 3.12", "Python 3 point 12"),
        ("iOS 17.2", "iOS 17 point 2"),
        ("Ubuntu 22.04", "Ubuntu 22 point 0 4"),
        ("version 2.10", "version 2 point 10"),
        ("Ping 2001:db8::1", "Ping 2-0-0-1 colon D-B-8 double colon 1"),
        ("fe80::1 and ::1", "F-E-8-0 double colon 1 and double colon 1"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334",
         "2-0-0-1 colon 0-D-B-8 colon 8-5-A-3 colon 0-0-0-0 colon 0-0-0-0 colon 8-A-2-E colon 0-3-7-0 colon 7-3-3-4"),
        ("at 9:30:15 sharp", "at 9:30:15 sharp"),  # a time, not IPv6
        ("MAC 00:1A:2B:3C:4D:5E", "MAC 0-0 colon 1A colon 2-B colon 3-C colon 4-D colon 5-E"),
        ("00-1A-2B-3C-4D-5E", "0-0, 1A, 2-B, 3-C, 4-D, 5-E"),
        ("Ping fe80::db8a", "Ping F-E-8-0 double colon D-B-8A"),
        ("ratio 16:9", "ratio 16:9"),
        # decimals, money, times stay
        ("Pi is 3.14", "Pi is 3.14"),
        ("It costs $3.50 at 9:30", "It costs $3.50 at 9:30"),
        ("python 3.12", "python 3.12"),  # lowercase: not the product name
        ("go 1.5 miles", "go 1.5 miles"),
        ("It is 1.5km", "It is 1.5 kilometers"),
        ("Python costs $3.50", "Python costs $3.50"),
    ],
    "dates and years": [
        ("On 2024-05-01 we met", "On May 1st, 2024 we met"),
        ("the 1990s", "the 1990s"),
        ("In 2023–2024", "In 2023 to 2024"),
        ("Call 2024-05-01", "Call May 1st, 2024"),
    ],
}


@pytest.mark.parametrize("written, spoken", [c for cases in CASES.values() for c in cases],
                         ids=[f"{k}:{w}" for k, cases in CASES.items() for w, _ in cases])
def test_reads(written: str, spoken: str) -> None:
    assert said(written) == spoken


@pytest.mark.parametrize("run, groups", [
    ("12345", ["12345"]), ("5552187", ["555", "2187"]), ("4155552187", ["415", "555", "2187"]),
    ("14155552187", ["1", "415", "555", "2187"]), ("12345678", ["1234", "5678"]),
    ("123456789", ["123", "456", "789"]), ("123456", ["123", "456"]),
])
def test_split_run(run: str, groups: list[str]) -> None:
    assert split_run(run) == groups


@pytest.mark.parametrize("written, spans", [
    ("Call 555-2187 now.", [("5 5 5, 2 1 8 7", "555-2187")]),
    ("Call (415) 555-2187.", [("4 1 5, 5 5 5, 2 1 8 7", "(415) 555-2187")]),
    ("ZIP 94103, pages 10-12.", [("9 4 1 0 3", "94103"), ("10 to 12", "10-12")]),
    ("**Call** 555-2187", [("5 5 5, 2 1 8 7", "555-2187")]),
    ("Python 3.12 on 192.168.1.1", [("3 point 12", "3.12"), ("192 dot 168 dot 1 dot 1", "192.168.1.1")]),
    ("Pi is 3.14", []),
])
def test_spans_map_back_to_the_written_number(written: str, spans: list[tuple[str, str]]) -> None:
    n = normalize(written)
    assert [(n.spoken[r.spoken_start:r.spoken_end], r.written) for r in n.spans] == spans


@dataclass
class _Tok:
    text: str
    whitespace: bool
    start_ts: float | None = None
    end_ts: float | None = None


def _word_events(text: str) -> list[str]:
    """Written words as the synthesizer reports them: G2P-like tokens of the
    spoken text (words and punctuation apart), timed, grouped with the spans."""
    n = normalize(text)
    pieces = list(re.finditer(r"\w+|[^\w\s]", n.spoken))
    toks = [_Tok(m.group(), i + 1 < len(pieces) and pieces[i + 1].start() > m.end(), 0.1 * i, 0.1 * i + 0.05)
            for i, m in enumerate(pieces)]
    spans, _ = locate(toks, n.spoken, 0)
    return [w.text for w in words_from_tokens(spans, 0, n.spans)]


@pytest.mark.parametrize("text, words", [
    ("Call 555-2187 now.", ["Call", "555-2187", "now"]),
    ("Call +1 (415) 555-2187, please.", ["Call", "+1 (415) 555-2187", "please"]),
    ("Card 4111 1111 1111 1111 works.", ["Card", "4111 1111 1111 1111", "works"]),
    ("Read pages 10-12 and ZIP 94103.", ["Read", "pages", "10-12", "and", "ZIP", "94103"]),
])
def test_word_events_keep_the_number_as_written(text: str, words: list[str]) -> None:
    assert _word_events(text) == words


# ----------------------------------------------- the segmenter never cuts inside
def _run(text: str, splits: list[int]) -> list[Segment]:
    seg = Segmenter()
    out: list[Segment] = []
    prev = 0
    for k in [*splits, len(text)]:
        out += seg.feed(text[prev:k])
        prev = k
    return out + seg.flush()


@pytest.mark.parametrize("text, written, spoken", [
    ("Call 415-555-2187 now.", "415-555-2187", "4 1 5, 5 5 5, 2 1 8 7"),
    ("Call 555-2187 now, please.", "555-2187", "5 5 5, 2 1 8 7"),
    ("Call +1 (415) 555-2187 today.", "+1 (415) 555-2187", "plus 1, 4 1 5, 5 5 5, 2 1 8 7"),
    ("Ship it to ZIP 94103-1234 today.", "94103-1234", "9 4 1 0 3, 1 2 3 4"),
    ("Pay with card 4111 1111 1111 1111 today.", "4111 1111 1111 1111", "4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1"),
    ("Connect to 192.168.1.1:8080 now. Then Python 3.12 runs.", "192.168.1.1:8080",
     "192 dot 168 dot 1 dot 1 colon 8080"),
    ("Read pages 10-12. Then rest.", "10-12", "10 to 12"),
])
def test_split_at_every_position_keeps_the_number_whole(text: str, written: str, spoken: str) -> None:
    whole = _run(text, [])
    holder = [s for s in whole if written in s.text]
    assert len(holder) == 1 and spoken in holder[0].spoken
    for k in range(1, len(text)):
        assert _run(text, [k]) == whole, k
    assert _run(text, list(range(1, len(text)))) == whole


# ------------------------------------------------------- with the real G2P


@pytest.mark.slow
@pytest.mark.parametrize("written, like", [
    ("Call 555-2187", "Call five five five, two one eight seven"),
    ("Call 1-800-555-0199", "Call one, eight hundred, five five five, zero one nine nine"),
    ("ZIP 94103", "ZIP nine four one zero three"),
    ("IP 192.168.1.1", "IP one hundred ninety two dot one hundred sixty eight dot one dot one"),
    ("Python 3.12", "Python three point twelve"),
    ("pages 10-12", "pages ten to twelve"),
])
def test_real_g2p_says_them_as_people_do(g2p: Any, written: str, like: str) -> None:
    assert g2p(said(written))[0] == g2p(like)[0]


def _bare(phonemes: str) -> str:
    return re.sub(r"[ˈˌ\s]", "", phonemes)


@pytest.mark.slow
@pytest.mark.parametrize("written, bare", [
    # Letters are joined ("A-A", "1A") so misaki says the letter A (A), not the article "a" (ɐ).
    ("SW1A 1AA", "ɛsdʌbᵊljuwʌnA,wʌnAA"),
    ("Ping 2001:db8::1", "pɪŋtuzɪɹOzɪɹOwʌnkOləndibiAtdʌbᵊlkOlənwʌn"),
    ("MAC 00:1A:2B:3C:4D:5E now", "mækzɪɹOzɪɹOkOlənwʌnAkOləntubikOlənθɹisikOlənfɔɹdikOlənfIvinW"),
    ("Ping fe80::db8a now", "pɪŋɛfiAtzɪɹOdʌbᵊlkOləndibiAtAnW"),
])
def test_real_g2p_says_letters_as_letters(g2p: Any, written: str, bare: str) -> None:
    got = str(g2p(said(written))[0])
    assert "ɐ" not in got
    assert _bare(got) == bare


# ------------------------------------------------------------------ fuzz
NUMBER_TOKENS = ["555-2187", "(415)", "+1", "+44", "1-800-", "94103", "-1234", "4111", "1111", " ", "-", ".",
                 ",", ":", "::", "/", "#", "$", "192.168.1.1", "3.12", "v1.2", "Call", "call ", "ZIP ", "CA ",
                 "order ", "pages ", "of ", "Python ", "**", "0", "7", "1A", "SW1A ", "db8", "10-12", "2024-05-01",
                 "now", "\n"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(NUMBER_TOKENS), max_size=25).map("".join))
def test_number_soup_keeps_spans_consistent(text: str) -> None:
    n = normalize(text)
    s = n.spoken
    assert s == s.strip() and "  " not in s
    prev_end = 0
    for r in n.spans:
        assert prev_end <= r.spoken_start < r.spoken_end <= len(s)
        assert r.written and r.written in text
        prev_end = r.spoken_end


# ------------------------------------------------------------- long digit runs
# num2words (under misaki) raised OverflowError past ~66 digits, failing the
# whole utterance; 40-120 digits were one token too long for the model window.

@pytest.mark.parametrize("n", [16, 40, 67, 120, 400])
def test_a_long_digit_run_is_read_in_groups_each_its_own_span(n: int) -> None:
    text = "Call " + "1" * n + " now. And then more text after it."
    out = normalize(text)
    assert not re.search(r"\d\d", out.spoken)  # digit by digit
    assert out.spoken.startswith("Call 1 1 1") and out.spoken.endswith("now. And then more text after it.")
    assert "".join(sp.written for sp in out.spans) == "1" * n  # every digit has a span: a word event
    assert all(3 <= len(sp.written) <= 4 for sp in out.spans)
    assert all(out.spoken[sp.spoken_start:sp.spoken_end] == " ".join(sp.written) for sp in out.spans)


def test_a_long_grouped_number_is_read_by_its_groups() -> None:
    out = normalize("Total 1" + ",000" * 30 + " units.")
    assert out.spoken.startswith("Total 1, 0 0 0, 0 0 0") and out.spoken.endswith(" units.")
    assert [sp.written for sp in out.spans] == ["1"] + ["000"] * 30


def test_numbers_up_to_fifteen_digits_stay_quantities() -> None:
    assert normalize("It has 999999999999999 stars.").spoken == "It has 999999999999999 stars."
    assert normalize("1,000,000,000,000 dollars").spoken == "1,000,000,000,000 dollars"


@pytest.mark.parametrize("text", ["Call " + "1" * 400 + " now.", "Pi is 3." + "1" * 400, "$" + "9" * 80 + "M",
                                  "x -" + "7" * 90, "1" + ",000" * 40])
def test_real_g2p_reads_any_long_number(g2p: Any, text: str) -> None:
    _, tokens = g2p(normalize(text).spoken)
    assert tokens and all(len(t.phonemes or "") < 40 for t in tokens)  # no token overflows the window
