"""Numbers that are not quantities, through the real daemon and the real model,
judged by the recogniser: a phone number is heard as digits in groups (not
"555 to 2187"), a range as a range, a ZIP code and an IP address as digits,
a version as "3 point 12"; word events keep the number as written."""

from __future__ import annotations

import re

import pytest

from support.asr import transcribe
from support.daemon import DaemonProcess, Peer, Utterance, check_stream_invariants, words_of
from kokorod.protocol.messages import Speak

pytestmark = pytest.mark.slow

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_UNITS["oh"] = 0
_TEENS = {w: 10 + i for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}


def numerals(text: str) -> str:
    """The recogniser's words -> numerals, keeping every other word: "five five
    five" -> "5 5 5", "one hundred ninety two" -> "192", "ten to twelve" ->
    "10 to 12".  Hyphens and commas between digits go ("555-2187" -> "555 2187")."""
    tokens = re.findall(r"[a-z]+|\d+(?:\.\d+)*", text.lower().replace("-", " "))
    out: list[str] = []
    total, cur, last = 0, None, ""  # last: kind of the previous number word

    def emit() -> None:
        nonlocal total, cur, last
        if cur is not None or total:
            out.append(str(total + (cur or 0)))
        total, cur, last = 0, None, ""

    for tok in tokens:
        if tok in _UNITS:
            if cur is not None and last in ("tens", "hundred") or (cur is None and last == "thousand"):
                cur = (cur or 0) + _UNITS[tok]
            else:
                emit()
                cur = _UNITS[tok]
            last = "unit"
        elif tok in _TEENS or tok in _TENS:
            value = _TEENS.get(tok, _TENS.get(tok, 0))
            if cur is not None and last == "hundred" or (cur is None and last == "thousand"):
                cur = (cur or 0) + value
            else:
                emit()
                cur = value
            last = "tens" if tok in _TENS else "teen"
        elif tok == "hundred" and cur is not None:
            cur, last = cur * 100, "hundred"
        elif tok == "thousand" and (cur is not None or total):
            total, cur, last = total + (cur or 0) * 1000, None, "thousand"
        else:
            emit()
            out.append(tok)
    emit()
    return " ".join(out)


def digit_run(text: str) -> str:
    return "".join(re.findall(r"\d", text))


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    d = DaemonProcess()
    yield d
    assert d.stop() == 0, d.log()[-3000:]


async def _say(daemon: DaemonProcess, uid: str, text: str) -> tuple[Utterance, str]:
    peer = await Peer.connect(daemon.url)
    await peer.send(Speak(uid, text, final=True))
    utt = await peer.utterance(uid)
    await peer.close()
    check_stream_invariants(utt)
    heard, _ = transcribe(utt.audio(), utt.sample_rate)
    print(f"{text!r}: heard {heard!r} -> {numerals(heard)!r}; words {[w.text for w in words_of(utt)]}")
    return utt, heard


async def test_phone_number_is_heard_as_digit_groups(daemon: DaemonProcess) -> None:
    utt, heard = await _say(daemon, "phone", "Please call me at 555-2187 tonight.")
    said = numerals(heard)
    assert "5552187" in digit_run(said), heard
    assert not re.search(r"\b(to|through|hundred|thousand)\b", heard.lower()), heard
    assert "555-2187" in [w.text for w in words_of(utt)]  # one word event, as written


async def test_long_phone_number_is_heard_as_digit_groups(daemon: DaemonProcess) -> None:
    utt, heard = await _say(daemon, "phone10", "Our office number is (415) 555-2187.")
    assert "4155552187" in digit_run(numerals(heard)), heard
    assert not re.search(r"\b(to|hundred|thousand)\b", heard.lower()), heard
    assert "(415) 555-2187" in [w.text for w in words_of(utt)]


async def test_range_is_heard_as_a_range(daemon: DaemonProcess) -> None:
    _, heard = await _say(daemon, "range", "Please read pages 10-12 before class.")
    assert re.search(r"\b10 ?(to|through|-|–) ?12\b", numerals(heard)) or re.search(r"\b10-12\b", heard), heard


async def test_zip_code_is_heard_as_digits(daemon: DaemonProcess) -> None:
    utt, heard = await _say(daemon, "zip", "The ZIP code is 94103.")
    assert "94103" in digit_run(numerals(heard)), heard
    assert not re.search(r"\b(hundred|thousand)\b", heard.lower()), heard
    assert "94103" in [w.text for w in words_of(utt)]


async def test_ip_address_is_heard_with_dots(daemon: DaemonProcess) -> None:
    _, heard = await _say(daemon, "ip", "Connect to 192.168.1.1 from your laptop.")
    said = numerals(heard)
    assert "19216811" in digit_run(said), heard
    assert "192.168.1.1" in heard or said.count("dot") >= 2, heard


async def test_version_is_heard_as_point_twelve(daemon: DaemonProcess) -> None:
    _, heard = await _say(daemon, "version", "We upgraded to Python 3.12 last week.")
    said = numerals(heard)
    # "three point twelve"; misaki alone said "three point one two" ("3 point 1 2").
    assert re.search(r"\b3 point 12\b", said) or "3.12" in heard, heard
