"""The bounded Wyoming reader: what an announced length may make us hold."""

from __future__ import annotations

import asyncio
import json

import pytest

from kokorod.frontends.wyoming_reader import WyomingReadError, max_event_bytes, read_event


def _reader(*chunks: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=64 * 1024)
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    return reader


async def test_reads_header_data_and_payload() -> None:
    data = json.dumps({"text": "héllo"}).encode()
    header = json.dumps({"type": "synthesize", "data_length": len(data), "payload_length": 3}).encode() + b"\n"
    event = await read_event(_reader(header, data, b"abc"), 10_000)
    assert event is not None and event.type == "synthesize" and event.data == {"text": "héllo"} and event.payload == b"abc"
    assert await read_event(_reader(), 10_000) is None


@pytest.mark.parametrize("key", ["payload_length", "data_length"])
async def test_a_huge_announced_length_is_refused_before_reading_it(key: str) -> None:
    header = json.dumps({"type": "synthesize", key: 10**12}).encode() + b"\n"
    reader = _reader(header, b"x" * 100_000, eof=False)  # more follows, never read
    with pytest.raises(WyomingReadError) as caught:
        await asyncio.wait_for(read_event(reader, max_event_bytes(100_000)), 5)
    assert caught.value.oversized
    assert len(reader._buffer) == 100_000  # type: ignore[attr-defined]  # nothing of the body consumed or grown


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'{"data": {}}\n', b'{"type": "x", "data_length": "9"}\n',
                                  b'{"type": "x", "payload_length": -1}\n', b'{"type": "x", "data": 5}\n',
                                  b"\xff\xfe\n"])
async def test_malformed_headers_are_one_error_without_client_data(line: bytes) -> None:
    with pytest.raises(WyomingReadError) as caught:
        await read_event(_reader(line), 10_000)
    assert not caught.value.oversized and "9" not in caught.value.reason and "x" not in caught.value.reason.split(":")[-1]


async def test_a_header_line_past_the_reader_limit_is_oversized() -> None:
    with pytest.raises(WyomingReadError) as caught:
        await read_event(_reader(b"{" + b" " * 200_000 + b"}\n"), 10_000_000)
    assert caught.value.oversized


def test_the_bound_fits_the_longest_synthesize() -> None:
    text = "\U0001F600" * 1000
    data = json.dumps({"text": text}).encode()  # ensure_ascii: 12 bytes per emoji
    assert len(data) < max_event_bytes(1000)
