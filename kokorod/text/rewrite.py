"""Rewriting written text into spoken text, piece by piece, keeping track of
what was written: the rule types every language's normaliser uses, the loop
that applies a rule to the pieces not yet rewritten, and ``assemble``, which
joins the pieces and records a ``Replacement`` span wherever the spoken words
differ from the written ones (so word events can give back the written text).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kokorod.text.markdown import Piece

# A rewrite rule: a pattern and what replaces each match (None: leave it).
Repl = Callable[[re.Match[str]], "str | None"]
Rule = tuple[re.Pattern[str], Repl]
ContextRepl = Callable[[re.Match[str], str], "str | None"]
ContextRule = tuple[re.Pattern[str], ContextRepl]

# How much spoken text before a match the rules look at.
CONTEXT_CHARS = 80


@dataclass(frozen=True)
class Replacement:
    spoken_start: int
    spoken_end: int
    written: str


@dataclass(frozen=True)
class Normalized:
    spoken: str
    spans: tuple[Replacement, ...] = ()
    # Written text removed because it cannot be spoken in this language (emoji,
    # another script): reported to the client as ``unspeakable``, never lost silently.
    dropped: tuple[str, ...] = ()


def apply_rule(pieces: list[Piece], pattern: re.Pattern[str], repl: Repl) -> list[Piece]:
    """Rewrite every match of ``pattern`` in the pieces not yet rewritten."""
    return apply_context_rule(pieces, pattern, lambda m, _before: repl(m))


def apply_context_rule(pieces: list[Piece], pattern: re.Pattern[str], repl: ContextRepl) -> list[Piece]:
    """``apply_rule`` for a rule that decides from the words before a match:
    ``repl(match, before)`` gets the spoken text before it, across pieces
    ("**Call** 555-2187" still sees "Call"; deleted syntax adds nothing)."""
    out: list[Piece] = []
    said = ""  # the tail of the spoken text of the pieces before
    keep = CONTEXT_CHARS
    for spoken, written in pieces:
        if written is None:
            pos = 0
            for m in pattern.finditer(spoken):
                new = repl(m, (said + spoken[max(0, m.start() - keep):m.start()])[-keep:])
                if new is None or new == m.group():
                    continue
                if m.start() > pos:
                    out.append((spoken[pos:m.start()], None))
                out.append((new, m.group()))
                pos = m.end()
            if pos < len(spoken):
                out.append((spoken[pos:] if pos else spoken, None))
        else:
            out.append((spoken, written))
        said = (said + spoken)[-keep:]
    return out


def assemble(pieces: list[Piece], dropped: list[str] | tuple[str, ...] = ()) -> Normalized:
    """Join pieces, collapsing whitespace, and record word-changing spans."""
    parts: list[str] = []
    spans: list[Replacement] = []
    length = 0
    ends_in_space = True  # no leading space
    for spoken, written in pieces:
        s = re.sub(r"\s+", " ", spoken)
        if ends_in_space:
            s = s.lstrip(" ")
        if not s:
            continue
        if s[0] in ",.;:!?" and parts and parts[-1].endswith(" "):
            parts[-1] = parts[-1][:-1]  # "a | b" -> "a, b"; "Hi 😀." -> "Hi."
            length -= 1
        if written is not None and re.search(r"\w", s):
            core = s.strip(" ")
            lead = len(s) - len(s.lstrip(" "))
            spans.append(Replacement(length + lead, length + lead + len(core), written))
        parts.append(s)
        length += len(s)
        ends_in_space = s.endswith(" ")
    spoken = "".join(parts).rstrip(" ")
    return Normalized(spoken, tuple(sp for sp in spans if sp.spoken_end <= len(spoken)), tuple(dropped))
