"""Markdown for streaming speech: block structure for the segmenter, and
markdown -> plain speakable text for one segment at a time.

Why a small hand-written scanner instead of markdown-it-py / mistune: the input
here is one *segment* cut out of an LLM token stream, so it is routinely
unbalanced ("**bold text," with the closing ``**`` in the next segment, a list
item without its list, a table row without its header).  A CommonMark parser
would render such fragments literally (speaking "asterisk asterisk"), and its
AST would not tell us which characters of the output came from which
characters of the input.  We only need to *delete* syntax and keep the words,
which a line-prefix pass plus one inline regex does robustly.

The result is a list of ``Piece`` tuples ``(spoken, written)``:
``written is None`` means the text is verbatim input (later normalisation rules
may still rewrite it); otherwise ``spoken`` replaced ``written`` and is final.
Deleted syntax is a piece with ``spoken == ''``.

HTML is deleted only where it is HTML: a tag whose name is an HTML element
and whose attributes look like attributes (``<br>``, ``</b>``, ``<img
src="x">``), and ``<!-- comments -->``. Each is reported through
``dropped`` (the session's ``unspeakable`` warning), never lost silently.
Anything else in angle brackets is text: "Press <Enter>", "a<b and c>d".
"""

from __future__ import annotations

import re

Piece = tuple[str, "str | None"]

# ----------------------------------------------- block structure (streaming)
_LIST_MARKER = re.compile(r"(?:[-*+]|\d{1,9}[.)])[ \t]")
_MARKER_PREFIX = re.compile(r"[-*+]|\d{1,9}[.)]?")


def classify_line(buf: str, j: int, final: bool) -> tuple[str, int] | None:
    """Classify a line by its first non-blank character ``buf[j]``.

    Returns ('fence', run length) for a ``` / ~~~ opener, ('marker', length)
    for a list marker ("- ", "1. "), ('text', 0) otherwise, or None when the
    text so far cannot tell yet ("1" may become "1. " or "1.5"); ``final``
    means no more text will come.
    """
    c = buf[j]
    if c in "`~":
        k = j
        while k < len(buf) and buf[k] == c:
            k += 1
        if k == len(buf) and not final:
            return None
        return ("fence", k - j) if k - j >= 3 else ("text", 0)
    s = buf[j:j + 12]
    m = _LIST_MARKER.match(s)
    if m:
        return "marker", m.end() - 1
    if not final and _MARKER_PREFIX.fullmatch(s):
        return None
    return "text", 0


def fence_closes(buf: str, j: int, fence: tuple[str, int], final: bool) -> bool | None:
    """Inside a fenced block, is the line whose first non-blank is ``buf[j]``
    the closing fence (same character, at least as long, nothing after)?"""
    ch, n = fence
    k = j
    while k < len(buf) and buf[k] == ch:
        k += 1
    if k - j < n and k < len(buf):
        return False
    while k < len(buf) and buf[k] in " \t\r":
        k += 1
    if k == len(buf):
        return None if not final else len(buf[j:k].rstrip(" \t\r")) >= n
    return buf[k] == "\n" and len(buf[j:k].rstrip(" \t\r")) >= n


# ------------------------------------------------------ inline (per segment)

# Whole lines that carry no words.
_FENCE_LINE = re.compile(r"^[ \t]*(?:`{3,}|~{3,}).*$")
_HRULE = re.compile(r"^[ \t]{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE_SEP = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?\|?[ \t]*$")

# Line prefixes: blockquote '>'s, heading '#'s, bullets, task-list boxes.
# Ordered-list numbers are kept (a listener benefits from hearing "1.").
_PREFIX = re.compile(
    r"^(?P<lead>[ \t]*(?:>[ \t]?)*[ \t]*)"
    r"(?:(?P<heading>\#{1,6})(?:[ \t]+|$)"
    r"|(?P<bullet>[-*+])[ \t]+(?:\[[ xX]\][ \t]+)?"
    r"|(?P<num>\d{1,9})(?P<numdelim>[.)])[ \t]+)?"
)
_HEADING_TAIL = re.compile(r"[ \t]+#+[ \t]*$")

_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<codebody>.+?)(?P=ticks))"
    r"|(?P<image>!\[(?P<alt>[^\]\n]*)\]\((?P<isrc>[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:[ \t]+\"[^\"\n]*\")?\))"
    r"|(?P<link>\[(?P<ltext>[^\[\]\n]+)\]\((?P<href>[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:[ \t]+\"[^\"\n]*\")?\))"
    r"|(?P<reflink>\[(?P<rtext>[^\[\]\n^]+)\]\[[^\[\]\n]*\])"
    r"|(?P<cite>\[\^?[\w-]{1,20}\])"  # footnote / citation markers: [1], [^note]
    r"|(?P<auto><(?P<autobody>(?:https?://|mailto:)[^<>\s]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)>)"
    r"|(?P<comment><!--.*?-->)"
    r"|(?P<html></?(?P<tag>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>\s[^<>\n]*?)?\s*/?>)"
    r"|(?P<escape>\\(?P<escaped>[\\`*_{}\[\]()#+\-.!|>~]))"
    r"|(?P<stars>\*+)"
    r"|(?P<unders>(?<![A-Za-z0-9])_{1,3}(?=\S)|(?<=\S)_{1,3}(?![A-Za-z0-9]))"
    r"|(?P<strike>~~)"
    r"|(?P<pipe>\|)"
    r"|(?P<stray>`+)"  # unbalanced backticks (the code span was cut by the segmenter)
)


# Elements an LLM's markdown or pasted HTML uses; another name is text ("<Enter>").
HTML_TAGS = frozenset("""a abbr address article aside audio b bdi bdo blockquote body br button caption center cite
    code col colgroup dd del details dfn div dl dt em embed figcaption figure font footer form h1 h2 h3 h4 h5 h6
    head header hr html i iframe img input ins kbd label legend li link main mark meta nav noscript ol optgroup
    option p param picture pre q rp rt ruby s samp script section select small source span strike strong style
    sub summary sup table tbody td template textarea tfoot th thead title tr track tt u ul var video wbr""".split())
# An attribute: name="v", name='v', name=v, or a bare name among HTML's boolean ones
# ("<b and c>" is text: "and" and "c" are no attributes).
_ATTR = re.compile(r"""\s*(?:[\w:-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+)|(?:disabled|checked|hidden|open|selected"""
                   r"""|readonly|required|controls|autoplay|loop|muted|defer|async|multiple|novalidate))(?=\s|$)""",
                   re.IGNORECASE)


# Our own control tags: acted on by the segmenter (breaks.py), not text, not reported.
CONTROL_TAGS = frozenset({"break"})


def is_html_tag(m: re.Match[str]) -> bool:
    """An ``html`` match of ``_INLINE`` that is really HTML (see the docstring)."""
    if m.group("tag").lower() not in HTML_TAGS | CONTROL_TAGS:
        return False
    attrs = (m.group("attrs") or "").strip()
    pos = 0
    while pos < len(attrs):
        a = _ATTR.match(attrs, pos)
        if a is None or a.end() == pos:
            return False
        pos = a.end()
    return True


_COMMENT_OPEN = re.compile(r"<!--(?!.*-->)")


def strip_markdown(text: str, dropped: list[str] | None = None) -> list[Piece]:
    """Delete markdown syntax from ``text``; see the module docstring. HTML
    removed is appended to ``dropped``, when given, to be reported."""
    pieces: list[Piece] = []
    fence: tuple[str, int] | None = None  # code is not spoken (the segmenter never
    comment = False  # inside a <!-- comment --> that spans lines
    for line in text.splitlines(keepends=True):  # sends it here, direct callers might)
        body = line.rstrip("\r\n")
        eol = line[len(body):]
        if comment:  # the comment's lines are not spoken, up to its "-->"
            end = body.find("-->")
            gone = body if end < 0 else body[:end + 3]
            pieces.append(("", gone))
            _report(dropped, gone)
            comment = end < 0
            if end >= 0 and body[end + 3:]:
                inline(body[end + 3:], pieces, dropped=dropped)
            if eol:
                pieces.append((eol, None))
            continue
        opened = _COMMENT_OPEN.search(body) if fence is None else None
        if opened is not None:  # a comment opens and does not close on this line
            _line(body[:opened.start()], pieces, dropped)
            pieces.append(("", body[opened.start():]))
            _report(dropped, body[opened.start():])
            comment = True
            if eol:
                pieces.append((eol, None))
            continue
        stripped = body.lstrip(" \t")
        if fence is not None:
            if fence_closes(stripped + "\n", 0, fence, True):
                fence = None
            pieces.append(("", body))
        else:
            kind = classify_line(stripped, 0, True) if stripped else None
            if kind is not None and kind[0] == "fence":
                fence = (stripped[0], kind[1])
            _line(body, pieces, dropped)
        if eol:
            pieces.append((eol, None))
    return pieces


def _report(dropped: list[str] | None, gone: str) -> None:
    if dropped is not None and gone.strip():
        dropped.append(gone.strip())


def _line(body: str, out: list[Piece], dropped: list[str] | None = None) -> None:
    if _FENCE_LINE.match(body) or _HRULE.match(body) or (
        "|" in body and "-" in body and _TABLE_SEP.match(body)
    ):
        out.append(("", body))
        return
    m = _PREFIX.match(body)
    start = 0
    if m and (m.group("heading") or m.group("bullet") or m.group("num") or ">" in m.group("lead")):
        lead = m.group("lead")
        if lead.strip():
            out.append(("", lead))  # blockquote markers
        elif lead:
            out.append((lead, None))
        if m.group("num"):
            num = m.group("num")
            out.append((num + ".", None if m.group("numdelim") == "." else num + ")"))
            out.append((" ", None))
        elif m.end() > m.end("lead"):
            out.append(("", body[m.end("lead"):m.end()]))
        start = m.end()
    end = len(body)
    if m and m.group("heading"):
        tail = _HEADING_TAIL.search(body, start)
        if tail:
            end = tail.start()
    table_row = body.lstrip().startswith("|")
    if table_row:
        # "| a | b |" -> "a, b": the outer pipes go, the inner ones become commas.
        stripped = body[start:end].rstrip()
        if stripped.endswith("|"):
            end = start + len(stripped) - 1
        lead_ws = len(body) - len(body.lstrip())
        if start < lead_ws + 1:
            out.append(("", body[start:lead_ws + 1]))
            start = lead_ws + 1
    inline(body[start:end], out, table_row=table_row, dropped=dropped)
    if end < len(body):
        out.append(("", body[end:]))


# A link target that is misaki's inline phonemes, /.../, not a path: one
# segment between two slashes with at least one non-ASCII character (a stress
# mark or an IPA letter; "[docs](/docs/)" stays a link to a folder).
_PHONEMES = re.compile(r"/[^/\s]*[^\x00-\x7f][^/\s]*/")


def inline(text: str, out: list[Piece], *, table_row: bool = False, dropped: list[str] | None = None) -> None:
    """Inline markdown of one line (also used recursively for link text)."""
    pos = 0
    for m in _INLINE.finditer(text):
        kind = m.lastgroup
        s, e = m.span()
        if kind == "stars" and _literal_star(text, s, e):
            continue
        if kind == "html" and not is_html_tag(m):
            continue  # text in angle brackets: spoken (later rules read '<' and '>')
        if kind == "pipe" and not table_row:
            continue
        if s > pos:
            out.append((text[pos:s], None))
        pos = e
        if kind == "code":
            body = m.group("codebody")
            inner = body[1:-1] if len(body) > 2 and body[0] == body[-1] == " " else body
            lo = m.start("codebody") + body.find(inner)
            out.append(("", text[s:lo]))
            out.append((inner, None))
            out.append(("", text[lo + len(inner):e]))
        elif kind == "image":
            _wrapped(text, m, "alt", out, recurse=False)
        elif kind == "link" and _PHONEMES.fullmatch(m.group("href")):
            # misaki's inline pronunciation, [word](/phonemes/): for the G2P,
            # whole and final (no later rule may read its slashes as a path).
            out.append((m.group(), m.group()))
        elif kind == "link":
            _wrapped(text, m, "ltext", out, recurse=True, dropped=dropped)
        elif kind == "reflink":
            _wrapped(text, m, "rtext", out, recurse=True, dropped=dropped)
        elif kind == "auto":
            out.append(("", "<"))
            out.append((m.group("autobody").removeprefix("mailto:"), None))
            out.append(("", ">"))
        elif kind == "escape":
            out.append(("", "\\"))
            out.append((m.group("escaped"), None))
        elif kind == "pipe":
            out.append((",", "|"))
        elif kind == "html":
            out.append((" ", m.group()))  # "line<br>break": a tag separates words
            if m.group("tag").lower() not in CONTROL_TAGS:
                _report(dropped, m.group())
        elif kind == "comment":
            out.append((" ", m.group()))
            _report(dropped, m.group())
        else:  # cite, stars, unders, strike, stray: syntax without words
            out.append(("", m.group()))
    if pos < len(text):
        out.append((text[pos:], None))


def _wrapped(text: str, m: re.Match[str], group: str, out: list[Piece], *, recurse: bool,
             dropped: list[str] | None = None) -> None:
    s, e = m.span()
    gs, ge = m.span(group)
    out.append(("", text[s:gs]))
    if recurse:
        inline(text[gs:ge], out)
    else:
        out.append((text[gs:ge], None))
    out.append(("", text[ge:e]))


def _literal_star(text: str, s: int, e: int) -> bool:
    """A lone '*' between spaces or digits is arithmetic / literal, not emphasis."""
    if e - s != 1:
        return False
    before = text[s - 1] if s > 0 else " "
    after = text[e] if e < len(text) else " "
    return (before.isspace() and after.isspace()) or (before.isdigit() and after.isdigit())
