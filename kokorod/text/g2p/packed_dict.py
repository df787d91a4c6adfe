"""A read-only str → str mapping packed into byte blobs, for misaki's lexicons.

misaki's English lexicon is two Python dicts (gold and silver) of about 365,000
words. As dicts of ``str`` they hold ~55 MB resident for the daemon's lifetime,
more than half the model's weights. Packed as UTF-8 with 32-bit offsets the same
data is ~14 MB, and saved to a file that is memory-mapped it costs only the
pages lookups touch (file-backed, so the kernel can drop them under pressure).

Lookup: keys are sorted by their UTF-8 bytes (which is code-point order); an
8-byte big-endian prefix of each key, as a ``uint64`` array, narrows the search
with one ``numpy.searchsorted``, and the few keys sharing the prefix are
compared whole. Values that are not strings (misaki's heteronyms map a part of
speech to a reading) are few and live in the file's JSON header.
"""

from __future__ import annotations

import json
import mmap
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = b"kokorod-packed-dict-1\n"
_PREFIX_BYTES = 8


def _prefix(encoded: bytes) -> int:
    return int.from_bytes(encoded[:_PREFIX_BYTES].ljust(_PREFIX_BYTES, b"\0"), "big")


class PackedDict(Mapping[str, Any]):
    """Immutable; answers every read misaki does (``get``, ``in``, ``[]``,
    iteration, ``len``) as the dict it was packed from."""

    __slots__ = ("_buffer", "_keys", "_values", "_key_ends", "_value_ends", "_prefixes", "_others")

    def __init__(self, buffer: bytes | mmap.mmap, header: dict[str, Any], offset: int) -> None:
        n = int(header["count"])
        self._buffer = buffer  # keeps a mapping open for the arrays' views
        self._key_ends = np.frombuffer(buffer, dtype="<u4", count=n, offset=offset)
        offset += 4 * n
        self._value_ends = np.frombuffer(buffer, dtype="<u4", count=n, offset=offset)
        offset += 4 * n
        self._prefixes = np.frombuffer(buffer, dtype="<u8", count=n, offset=offset)
        offset += 8 * n
        key_bytes = int(self._key_ends[-1]) if n else 0
        self._keys = memoryview(buffer)[offset:offset + key_bytes]
        offset += key_bytes
        value_bytes = int(self._value_ends[-1]) if n else 0
        self._values = memoryview(buffer)[offset:offset + value_bytes]
        self._others: dict[str, Any] = header["others"]

    # -- building ---------------------------------------------------------

    @staticmethod
    def encode(source: Mapping[str, Any]) -> bytes:
        """The file image of ``source`` (what :meth:`save` writes)."""
        entries = sorted((k.encode("utf-8"), k) for k in source)
        key_blob, value_blob = bytearray(), bytearray()
        key_ends = np.empty(len(entries), dtype="<u4")
        value_ends = np.empty(len(entries), dtype="<u4")
        prefixes = np.empty(len(entries), dtype="<u8")
        others: dict[str, Any] = {}
        for i, (encoded, key) in enumerate(entries):
            key_blob += encoded
            key_ends[i] = len(key_blob)
            prefixes[i] = _prefix(encoded)
            value = source[key]
            if isinstance(value, str):
                value_blob += value.encode("utf-8")
            else:
                others[key] = value
            value_ends[i] = len(value_blob)
        if len(key_blob) >= 2**32 or len(value_blob) >= 2**32:
            raise ValueError("too large to pack with 32-bit offsets")
        header = json.dumps({"count": len(entries), "others": others}, ensure_ascii=False).encode("utf-8") + b"\n"
        # Pad so the arrays that follow are 8-byte aligned in the file.
        head = FORMAT + header
        head += b" " * (-len(head) % 8)
        return b"".join([head, key_ends.tobytes(), value_ends.tobytes(), prefixes.tobytes(),
                         bytes(key_blob), bytes(value_blob)])

    @classmethod
    def pack(cls, source: Mapping[str, Any]) -> "PackedDict":
        return cls.from_bytes(cls.encode(source))

    @classmethod
    def from_bytes(cls, data: bytes | mmap.mmap) -> "PackedDict":
        if data[:len(FORMAT)] != FORMAT:
            raise ValueError("not a packed dict")
        end = data.find(b"\n", len(FORMAT))
        if end < 0:
            raise ValueError("truncated packed dict")
        header = json.loads(bytes(data[len(FORMAT):end]))
        offset = end + 1
        offset += -offset % 8
        count = int(header["count"])
        if len(data) < offset + 16 * count:
            raise ValueError("truncated packed dict")
        packed = cls(data, header, offset)
        blobs = int(packed._key_ends[-1]) + int(packed._value_ends[-1]) if count else 0
        if len(data) < offset + 16 * count + blobs:
            raise ValueError("truncated packed dict")
        return packed

    def save(self, path: Path) -> None:
        """Atomically: a concurrent start sees the whole file or none."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".packed-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(self._buffer))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def open(cls, path: Path) -> "PackedDict":
        """Memory-mapped, read-only: resident only where lookups touch it."""
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return cls.from_bytes(mapped)

    # -- reading ----------------------------------------------------------

    def _key_at(self, i: int) -> bytes:
        start = int(self._key_ends[i - 1]) if i else 0
        return bytes(self._keys[start:int(self._key_ends[i])])

    def _index(self, key: object) -> int:
        if not isinstance(key, str):
            return -1
        try:
            probe = key.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate is never a lexicon word
            return -1
        p = np.uint64(_prefix(probe))
        lo = int(np.searchsorted(self._prefixes, p, side="left"))
        hi = int(np.searchsorted(self._prefixes, p, side="right"))
        while lo < hi:  # among the keys sharing the first 8 bytes, by bisection
            mid = (lo + hi) // 2
            if self._key_at(mid) < probe:
                lo = mid + 1
            else:
                hi = mid
        n = len(self._key_ends)
        return lo if lo < n and self._key_at(lo) == probe else -1

    def __getitem__(self, key: str) -> Any:
        i = self._index(key)
        if i < 0:
            raise KeyError(key)
        if key in self._others:
            return self._others[key]
        start = int(self._value_ends[i - 1]) if i else 0
        return bytes(self._values[start:int(self._value_ends[i])]).decode("utf-8")

    def __contains__(self, key: object) -> bool:
        return self._index(key) >= 0

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self._key_ends)):
            yield self._key_at(i).decode("utf-8")

    def __len__(self) -> int:
        return len(self._key_ends)

    @property
    def nbytes(self) -> int:
        return len(self._buffer)
