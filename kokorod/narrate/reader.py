"""A text file (plain or Markdown) read lazily, line by line, as blocks.

A book can be far larger than anyone wants in memory, and the segmenter is
streaming anyway, so the reader never holds more than one line (and, for a
Setext heading, the line before it). What it adds is structure: Markdown
headings (``# Title``, or ``Title`` underlined with ``===``/``---``) outside
fenced code become chapter marks. Every block carries where it starts in the
text (character offset, to say where an interrupted job stopped) and how many
bytes of the input were consumed through it (for the progress bar's percent).

Sans-I/O at its core: ``read_blocks`` takes any iterable of byte lines.
"""

from __future__ import annotations

import codecs
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
MAX_LINE_CHARS = 65536  # a "line" longer than this (a file without newlines) is cut into pieces


@dataclass(frozen=True)
class Block:
    kind: str  # 'heading' | 'text'
    text: str  # as written (a heading's line keeps its '#': the segmenter strips it when speaking)
    offset: int  # characters of the input before this block
    bytes_done: int  # bytes of the input consumed through this block
    title: str = ""  # a heading's text, markdown marks removed
    level: int = 0


def _title(raw: str) -> str:
    from kokorod.text.markdown import strip_markdown

    return "".join(spoken for spoken, _written in strip_markdown(raw)).strip() or raw.strip()


def read_blocks(lines: Iterable[bytes]) -> Iterator[Block]:
    """Blocks of the text in ``lines`` (UTF-8 bytes, line ends included)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    offset = done = 0
    fence: str | None = None
    held: tuple[str, int, int] | None = None  # a single line that may be a Setext heading's text
    prev_blank = True

    def text(t: str, at: int, through: int) -> Block:
        return Block("text", t, at, through)

    for raw in _bounded(lines):
        line = decoder.decode(raw)
        done += len(raw)
        at, offset = offset, offset + len(line)
        body = line.rstrip("\r\n")
        if fence is not None:
            if body.strip().startswith(fence) and not body.strip().strip(fence[0]):
                fence = None
            yield text(line, at, done)
            continue
        if held is not None:
            htext, hat, hdone = held
            held = None
            m = _SETEXT.match(body)
            if m:
                level = 1 if m.group(1)[0] == "=" else 2
                heading = htext.rstrip("\r\n")
                # Spoken as an ATX heading would be: the underline is not text.
                yield Block("heading", "#" * level + " " + heading + "\n", hat, done, _title(heading), level)
                prev_blank = False
                continue
            yield text(htext, hat, hdone)
        fm = _FENCE.match(body)
        if fm:
            fence = fm.group(1)[0] * 3
            yield text(line, at, done)
            prev_blank = False
            continue
        m = _ATX.match(body)
        if m and m.group(2).strip():
            yield Block("heading", line, at, done, _title(m.group(2)), len(m.group(1)))
            prev_blank = False
            continue
        if prev_blank and body.strip() and not _SETEXT.match(body):
            held = (line, at, done)  # a paragraph's first line: wait for the next one
            prev_blank = False
            continue
        prev_blank = not body.strip()
        yield text(line, at, done)
    if held is not None:
        yield text(*held)
    tail = decoder.decode(b"", final=True)
    if tail:
        yield text(tail, offset, done)


def _bounded(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Lines no longer than MAX_LINE_CHARS bytes (a cut may split a UTF-8
    character: the incremental decoder joins it again)."""
    for raw in lines:
        while len(raw) > MAX_LINE_CHARS:
            yield raw[:MAX_LINE_CHARS]
            raw = raw[MAX_LINE_CHARS:]
        if raw:
            yield raw


@dataclass
class Source:
    """An opened input: its byte lines, and its size when known (a file; not a pipe)."""

    name: str
    stream: BinaryIO
    size: int | None

    def lines(self) -> Iterator[bytes]:
        # readline(n) bounds the read even when the file has no newline at all.
        while chunk := self.stream.readline(MAX_LINE_CHARS):
            yield chunk

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()


def open_source(path: str) -> Source:
    """``path`` or ``-`` for stdin. Raises InputError for a missing file."""
    from kokorod.errors import InputError

    if path == "-":
        return Source("stdin", sys.stdin.buffer, None)
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"there is no file {path}", "check the path given to -f")
    return Source(str(p), p.open("rb"), p.stat().st_size)
