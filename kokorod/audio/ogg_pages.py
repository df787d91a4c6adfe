"""Reading what the Ogg muxer writes for Opus, for the encoder's sample count:
the pre-skip in the OpusHead (RFC 7845 5.1) and the granule position of the
last complete Ogg page, followed through the bytes as they are emitted. Ogg
granule positions for Opus are at 48 kHz whatever the input rate.
"""

from __future__ import annotations

from typing import Final

# Ogg granule positions for Opus are always at 48 kHz, whatever the input rate.
OPUS_GRANULE_RATE: Final = 48000


class OggGranules:
    """Follows Ogg page headers in the emitted bytes to learn the granule
    position of the last complete page; keeps at most one page header."""

    def __init__(self) -> None:
        self.granule = 0
        self._head = bytearray()
        self._page_granule = -1
        self._body_left = 0

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self._body_left:
                take = min(self._body_left, n - i)
                i += take
                self._body_left -= take
                if not self._body_left:
                    self._page_done()
                continue
            need = 27 if len(self._head) < 27 else 27 + self._head[26]
            take = min(need - len(self._head), n - i)
            self._head += data[i:i + take]
            i += take
            if len(self._head) < 27 or len(self._head) < 27 + self._head[26]:
                continue
            if self._head[:4] != b"OggS":
                raise RuntimeError("Ogg muxer output lost page sync")
            self._page_granule = int.from_bytes(self._head[6:14], "little", signed=True)
            self._body_left = sum(self._head[27:])
            self._head.clear()
            if not self._body_left:
                self._page_done()

    def _page_done(self) -> None:
        # -1: no packet ends on this page.
        if self._page_granule >= 0:
            self.granule = self._page_granule


def opus_pre_skip(opus_head: bytes) -> int:
    # RFC 7845 5.1: "OpusHead", version, channels, pre-skip (u16 LE at 48 kHz), ...
    if len(opus_head) < 19 or opus_head[:8] != b"OpusHead":
        raise RuntimeError("libopus gave no OpusHead")
    return int.from_bytes(opus_head[10:12], "little")
