"""Digit runs too long to be a quantity: read digit by digit, in groups.

Nobody reads a 40-digit number as a quantity, and the G2Ps cannot either:
misaki hands any digit run to num2words, which raises ``OverflowError`` past
about 66 digits (the whole utterance failed, and the rest of the text was
lost); below that it reads "one hundred eleven duodecillion…" as one token
whose phonemes overflow the model window (no word event); espeak-ng reads a
long run as one word. So every language reads a run of ``LONG_RUN_DIGITS`` or
more digits (or a thousands-grouped number as long) here, before its own
number rules: in groups of three or four digits (``numbers_en.split_run``),
each group digit by digit, with a short pause between groups. Each group is
its own ``Replacement`` span, so each gets its own ``word`` event, and the
model window can be cut at any pause.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kokorod.text.markdown import Piece
from kokorod.text.numbers_en import digits, split_run

# 16 digits: ten quadrillion, past what any reader says as a number (and
# where the Romance languages' num2words readings already went digit by digit).
LONG_RUN_DIGITS = 16
_LONG = re.compile(rf"(?<![\d,])(?:\d{{1,3}}(?:,\d{{3}}){{5,}}|\d{{{LONG_RUN_DIGITS},}})(?!\d)")
_ANY_LONG = re.compile(rf"\d{{{LONG_RUN_DIGITS}}}|\d,\d{{3}},\d{{3}},\d{{3}},\d{{3}},\d{{3}}")


def read_long_runs(pieces: list[Piece], say: Callable[[str], str] = digits, pause: str = ", ") -> list[Piece]:
    """Rewrite every long digit run in the pieces not yet rewritten: one piece
    per group (spoken ``say(group)``, written the group), ``pause`` between."""
    out: list[Piece] = []
    for spoken, written in pieces:
        if written is not None or _ANY_LONG.search(spoken) is None:
            out.append((spoken, written))
            continue
        pos = 0
        for m in _LONG.finditer(spoken):
            if m.start() > pos:
                out.append((spoken[pos:m.start()], None))
            groups = [g for part in m.group().split(",") for g in split_run(part)]
            for i, group in enumerate(groups):
                if i:
                    out.append((pause, None))
                out.append((say(group), group))
            pos = m.end()
        if pos < len(spoken):
            out.append((spoken[pos:], None))
    return out


def reader_for(code: str) -> tuple[Callable[[str], str], str]:
    """How a language reads one group digit by digit, and its pause between groups."""
    from kokorod.text import numbers_intl, numbers_romance  # lazy: num2words, cn2an

    if code in numbers_romance._LANGS:
        return numbers_romance._LANGS[code].digits, ", "
    if code == "zh":
        return numbers_intl._zh_digits, "，"
    if code == "ja":
        return lambda g: "".join(numbers_intl._kana(int(d)) for d in g), "、"
    return digits, ", "  # hi: espeak-ng reads lone digits well; en
