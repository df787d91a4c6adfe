"""Pause tags in the text: ``<break time="500ms"/>`` (the SSML / ElevenLabs form).

Sans-I/O helpers for the segmenter, which cuts the text at a tag and gives the
segment before it a pause of the requested length; the session puts exactly that
much silence on the timeline (docs/pronunciation.md, "Pauses").

Accepted: ``time="500ms"``, ``time="1.5s"``, ``time='2 s'``, or SSML's
``strength`` (none, x-weak, weak, medium, strong, x-strong); a bare ``<break/>``
is ``medium``. A pause is absolute time: the speaking speed does not scale it.
"""

from __future__ import annotations

import re

__all__ = ["MAX_BREAK_MS", "DEFAULT_BREAK_MS", "COMMENT_HOLD_CHARS", "break_tag_end", "comment_end", "parse_break"]

MAX_BREAK_MS = 10_000  # per tag; SSML engines commonly cap a break at 10 s
DEFAULT_BREAK_MS = 500  # SSML "medium"
_STRENGTH_MS = {"none": 0, "x-weak": 100, "weak": 250, "medium": DEFAULT_BREAK_MS, "strong": 1000, "x-strong": 2000}
_MAX_TAG_CHARS = 120  # a longer run after "<break" is not a tag: stop waiting for its '>'

_TAG = re.compile(r"<break(?:\s[^<>]*?)?\s*/?>", re.IGNORECASE)
# What a tag may look like before its '>' has arrived (a token stream splits it anywhere).
_PREFIX = re.compile(r"<(?:b(?:r(?:e(?:a(?:k(?:[\s/][^<>]*)?)?)?)?)?)?", re.IGNORECASE)
_TIME = re.compile(r"""\btime\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_STRENGTH = re.compile(r"""\bstrength\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)\s*", re.IGNORECASE)


def break_tag_end(text: str, start: int, final: bool) -> int | None:
    """At ``text[start] == '<'``: the end offset of a break tag starting there,
    0 if none starts there, or None if more text is needed to tell (not ``final``
    and the text so far could still become one)."""
    m = _TAG.match(text, start)
    if m is not None:
        return m.end()
    if final:
        return 0
    rest = text[start:start + _MAX_TAG_CHARS + 1]
    if len(rest) <= _MAX_TAG_CHARS and _PREFIX.fullmatch(rest):
        return None
    return 0


# An HTML comment still open holds the cut (its text must not be spoken, and a
# cut inside it would leave "… -->" to be read in the next segment) for at most
# this many characters; past that it is scanned as text, so a comment that
# never closes cannot hold a stream's speech back without bound.
COMMENT_HOLD_CHARS = 4096


def comment_end(text: str, start: int, final: bool, hold_chars: int = COMMENT_HOLD_CHARS) -> int | None:
    """At ``text[start] == '<'``: the end offset of an HTML comment starting
    there (after its ``-->``; the end of the text when it is ``final`` and the
    comment never closes), 0 if none starts there, or None if more text is
    needed to tell or to find its end."""
    head = text[start:start + 4]
    if head != "<!--":
        return None if not final and len(head) < 4 and "<!--".startswith(head) else 0
    end = text.find("-->", start + 4)
    if end >= 0:
        return end + 3
    if final:
        return len(text)
    return 0 if len(text) - start > hold_chars else None


def parse_break(tag: str) -> tuple[int, str]:
    """The pause a tag asks for, in milliseconds, and a note ('' if the tag was
    understood as written; otherwise what was done instead, for a warning)."""
    if (m := _TIME.search(tag)) is not None:
        value = m.group(1) if m.group(1) is not None else m.group(2)
        d = _DURATION.fullmatch(value)
        if d is None:
            return DEFAULT_BREAK_MS, f"break time {value!r} not understood (use e.g. 500ms or 1.5s); paused {DEFAULT_BREAK_MS} ms"
        ms = round(float(d.group(1)) * (1000 if d.group(2).lower() == "s" else 1))
        if ms > MAX_BREAK_MS:
            return MAX_BREAK_MS, f"break of {value} is longer than the {MAX_BREAK_MS} ms limit; paused {MAX_BREAK_MS} ms"
        return ms, ""
    if (m := _STRENGTH.search(tag)) is not None:
        value = (m.group(1) if m.group(1) is not None else m.group(2)).strip().lower()
        if value in _STRENGTH_MS:
            return _STRENGTH_MS[value], ""
        return DEFAULT_BREAK_MS, f"break strength {value!r} not understood; paused {DEFAULT_BREAK_MS} ms"
    return DEFAULT_BREAK_MS, ""
