"""The narration reader: Markdown headings as chapters, read line by line."""

from __future__ import annotations

import itertools
from typing import Iterator

from kokorod.narrate.reader import MAX_LINE_CHARS, read_blocks

BOOK = """Opening words.

# Chapter *One*

Text of one.
# not a heading inside text? yes it is

```
# a comment in code, not a heading
```

The Second
==========

More text.

Setext two
----------
End.
"""


def lines(text: str) -> list[bytes]:
    return text.encode().splitlines(keepends=True)


def test_headings_and_offsets() -> None:
    blocks = list(read_blocks(lines(BOOK)))
    headings = [(b.title, b.level) for b in blocks if b.kind == "heading"]
    assert headings == [("Chapter One", 1), ("not a heading inside text? yes it is", 1), ("The Second", 1),
                        ("Setext two", 2)]
    for b in blocks:
        if b.kind == "text":
            assert BOOK[b.offset:b.offset + len(b.text)] == b.text
    assert blocks[-1].bytes_done == len(BOOK.encode())
    # Every character is in exactly one block, in order.
    assert [b.offset for b in blocks] == sorted(b.offset for b in blocks)


def test_reads_lazily() -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield (f"# Part {i}\n" if i % 100 == 0 else "A line of the book.\n").encode()

    first = list(itertools.islice(read_blocks(endless()), 250))
    assert pulled < 260 and sum(b.kind == "heading" for b in first) == 3


def test_a_line_without_end_is_cut_and_utf8_survives_the_cut() -> None:
    text = "é" * MAX_LINE_CHARS  # 2 bytes each: cut mid-character
    blocks = list(read_blocks([text.encode()]))
    assert "".join(b.text for b in blocks) == text
    assert max(len(b.text) for b in blocks) <= MAX_LINE_CHARS
