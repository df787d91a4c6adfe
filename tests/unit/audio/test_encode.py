"""Streaming encoders: every format round-trips through PyAV's decoders with the
documented priming, bytes come out progressively, and misuse fails loudly."""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import numpy as np
import pytest
import soxr

from kokorod.audio.encode import (
    ENCODE_FORMATS,
    StreamEncoder,
    content_type,
    open_encoder,
)

SR = 24000
CHUNKS = (1, 333, 4800, 12000)  # uneven on purpose: never a codec frame multiple
LOSSY = ("mp3", "opus", "aac")
EXACT = ("flac", "wav", "pcm")
# Container (demuxer) name and the codec FFmpeg reports when decoding.
EXPECTED = {
    "mp3": ("mp3", "mp3"),
    "opus": ("ogg", "opus"),
    "aac": ("aac", "aac"),
    "flac": ("flac", "flac"),
    "wav": ("wav", "pcm_s16le"),
    "pcm": ("s16le", "pcm_s16le"),
}
FRAME = {"mp3": 576, "opus": 480, "aac": 1024, "flac": 1, "wav": 1, "pcm": 1}
PRIMING = {"mp3": 1105, "opus": 156, "aac": 1024, "flac": 0, "wav": 0, "pcm": 0}


def _signal(seconds: float = 2.0) -> np.ndarray:
    """A 200 -> 1400 Hz chirp with a 250 ms gap: aligns unambiguously by correlation."""
    t = np.arange(int(SR * seconds)) / SR
    x = 0.4 * np.sin(2 * np.pi * (200 * t + 300 * t * t))
    x[12000:18000] = 0.0
    return np.round(x * 32767).astype(np.int16)


def _chunks(x: np.ndarray) -> Iterator[np.ndarray]:
    pos, i = 0, 0
    while pos < len(x):
        n = CHUNKS[i % len(CHUNKS)]
        yield x[pos:pos + n]
        pos, i = pos + n, i + 1


def _encode_all(fmt: str, x: np.ndarray) -> tuple[StreamEncoder, list[bytes]]:
    enc = open_encoder(fmt, SR)
    parts = [enc.encode(chunk) for chunk in _chunks(x)]
    parts.append(enc.flush())
    return enc, parts


def _decode(data: bytes, fmt: str) -> tuple[str, str, int, np.ndarray]:
    """(demuxer, codec, rate, samples as float64 in [-1, 1)) via PyAV."""
    kwargs: dict[str, object] = {}
    if fmt == "pcm":
        kwargs = {"format": "s16le", "options": {"sample_rate": str(SR), "ch_layout": "mono"}}
    with av.open(io.BytesIO(data), **kwargs) as container:  # type: ignore[arg-type]
        stream = container.streams.audio[0]
        codec = stream.codec_context.codec.name
        demuxer = container.format.name
        pieces, rate = [], SR
        for frame in container.decode(stream):
            rate = frame.sample_rate
            a = frame.to_ndarray().reshape(-1)
            scale = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2.0**31}.get(a.dtype, 1.0)
            pieces.append(a.astype(np.float64) / scale)
    return demuxer, codec, rate, np.concatenate(pieces) if pieces else np.zeros(0)


def _best_lag(ref: np.ndarray, y: np.ndarray, max_lag: int = 1600) -> int:
    scores = [float(np.dot(ref[: len(y) - lag], y[lag: lag + len(ref)])) for lag in range(max_lag)]
    return int(np.argmax(scores))


@pytest.mark.parametrize("fmt", ENCODE_FORMATS)
def test_round_trip_decodes_with_documented_priming(fmt: str) -> None:
    x = _signal()
    enc, parts = _encode_all(fmt, x)
    assert isinstance(enc, StreamEncoder)
    assert enc.samples_in == enc.samples_out == len(x)
    assert enc.priming_samples == PRIMING[fmt]

    demuxer, codec, rate, y = _decode(b"".join(parts), fmt)
    assert EXPECTED[fmt][0] in demuxer.split(",")
    assert codec.startswith(EXPECTED[fmt][1])  # mp3 decodes as "mp3float"
    if fmt == "opus":
        assert rate == 48000  # Opus always decodes at 48 kHz here
        assert len(y) == 2 * len(x)  # pre-skip and end padding both trimmed
        y = soxr.resample(y, 48000, SR)
    assert rate in (SR, 48000)

    lead = enc.lead_samples
    # Decoders pad to a whole codec frame at most (and trim exactly for Ogg).
    assert len(x) <= len(y) - lead < len(x) + FRAME[fmt]
    ref = x.astype(np.float64) / 32768.0
    aligned = y[lead: lead + len(x)]
    if fmt in EXACT:
        assert np.array_equal(np.round(aligned * 32768).astype(np.int16), x)
    else:
        assert abs(_best_lag(ref, y) - lead) <= 2
        assert np.corrcoef(ref, aligned)[0, 1] > 0.9


@pytest.mark.parametrize("fmt", ENCODE_FORMATS)
def test_samples_out_tracks_emitted_bytes(fmt: str) -> None:
    """What samples_out promises is decodable from the bytes returned so far."""
    x = _signal()
    enc = open_encoder(fmt, SR)
    emitted = b""
    for chunk in list(_chunks(x))[:7]:
        emitted += enc.encode(chunk)
        assert 0 <= enc.samples_out <= enc.samples_in
    assert enc.samples_out > 0
    _, _, rate, y = _decode(emitted, fmt)
    decoded = len(y) * SR // rate
    assert decoded - enc.lead_samples >= enc.samples_out
    assert decoded - enc.lead_samples < enc.samples_out + 2 * FRAME[fmt]
    enc.flush()


@pytest.mark.parametrize("fmt", LOSSY + ("flac",))
def test_no_backlog_builds_up(fmt: str) -> None:
    """Memory stays bounded: the encoder never holds more than a few frames."""
    enc = open_encoder(fmt, SR)
    x = _signal(0.5)
    sizes = []
    for _ in range(20):
        sizes.append(len(enc.encode(x)))
        backlog = enc.samples_in - enc.samples_out
        assert backlog < enc.priming_samples + 3 * max(FRAME[fmt], 2304) + 960
    enc.flush()
    if fmt == "mp3":  # CBR: 64 kbit/s for 0.5 s, to a frame or two
        assert all(abs(s - 4000) <= 2 * 192 for s in sizes[1:])


@pytest.mark.parametrize("fmt", ("mp3", "opus", "aac", "flac"))
def test_first_encode_streams_header_and_audio(fmt: str) -> None:
    enc = open_encoder(fmt, SR)
    first = enc.encode(_signal(0.2))  # 4800 samples
    magic = {"mp3": b"\xff", "opus": b"OggS", "aac": b"\xff", "flac": b"fLaC"}[fmt]
    assert first.startswith(magic)
    if fmt in ("mp3", "aac"):
        assert first[1] & 0xE0 == 0xE0  # frame sync; in particular no ID3 tag
    assert enc.samples_out > 0  # i.e. audio, not just a header
    assert len(first) > 200
    enc.flush()


@pytest.mark.parametrize(("fmt", "header_start"), [("opus", b"OggS"), ("flac", b"fLaC"), ("wav", b"RIFF")])
def test_header_comes_with_first_even_empty_encode(fmt: str, header_start: bytes) -> None:
    enc = open_encoder(fmt, SR)
    header = enc.encode(np.zeros(0, np.int16))
    assert header.startswith(header_start)
    assert enc.encode(np.zeros(0, np.int16)) == b""
    if fmt == "flac":
        assert len(header) < 200  # no 8 KiB padding block


@pytest.mark.parametrize("fmt", ("mp3", "aac", "pcm"))
def test_headerless_formats_start_empty(fmt: str) -> None:
    enc = open_encoder(fmt, SR)
    assert enc.encode(np.zeros(0, np.int16)) == b""
    assert enc.encode(np.zeros(1, np.int16)) == (b"\x00\x00" if fmt == "pcm" else b"")


def _ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """(header_type, granule) of each page; asserts data is whole pages."""
    pages, i = [], 0
    while i < len(data):
        assert data[i:i + 4] == b"OggS"
        nseg = data[i + 26]
        body = sum(data[i + 27:i + 27 + nseg])
        pages.append((data[i + 5], int.from_bytes(data[i + 6:i + 14], "little", signed=True)))
        i += 27 + nseg + body
    assert i == len(data)
    return pages


def test_ogg_opus_pages_are_emitted_progressively() -> None:
    x = _signal()
    enc = open_encoder("opus", SR)
    returns = []
    for start in range(0, len(x), 2400):  # 100 ms chunks
        returns.append(enc.encode(x[start:start + 2400]))
    tail = enc.flush()
    # Every call after the first frames returns whole pages, five 20 ms pages per 100 ms.
    assert all(len(_ogg_pages(r)) >= 4 for r in returns[1:])
    pages = [p for r in returns + [tail] for p in _ogg_pages(r)]
    head = b"".join(returns)[:47]
    assert head[28:36] == b"OpusHead"
    assert int.from_bytes(head[38:40], "little") == 312 == 2 * enc.priming_samples
    granules = [g for _, g in pages[2:]]
    assert all(0 < b - a <= 960 for a, b in zip(granules, granules[1:]))  # <= 20 ms a page
    assert granules[-1] == 312 + 2 * len(x)
    assert pages[-1][0] & 0x04 and not any(t & 0x04 for t, _ in pages[:-1])  # EOS last only


def test_wav_header_is_streaming() -> None:
    enc = open_encoder("wav", SR)
    data = enc.encode(np.array([1, -2], np.int16))
    assert len(data) == 44 + 4
    assert data[4:8] == data[40:44] == b"\xff\xff\xff\xff"
    assert data[22:24] == b"\x01\x00" and int.from_bytes(data[24:28], "little") == SR
    assert data[44:] == b"\x01\x00\xfe\xff"


@pytest.mark.parametrize("fmt", ENCODE_FORMATS)
def test_use_after_flush_raises(fmt: str) -> None:
    enc = open_encoder(fmt, SR)
    enc.encode(_signal(0.1))
    enc.flush()
    assert enc.closed
    with pytest.raises(RuntimeError, match="flushed"):
        enc.encode(np.zeros(10, np.int16))
    with pytest.raises(RuntimeError, match="flushed"):
        enc.flush()


def test_flush_without_audio_is_a_valid_empty_stream() -> None:
    enc = open_encoder("opus", SR)
    data = enc.flush()
    assert data.startswith(b"OggS") and enc.samples_out == 0


def test_unknown_format_lists_the_formats() -> None:
    with pytest.raises(ValueError, match="mp3.*opus.*aac.*flac.*wav.*pcm"):
        open_encoder("vorbis")
    with pytest.raises(ValueError, match="expected one of"):
        content_type("ogg")


def test_bad_input_is_rejected() -> None:
    enc = open_encoder("mp3", SR)
    with pytest.raises(TypeError, match="int16"):
        enc.encode(np.zeros(10, np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mono"):
        enc.encode(np.zeros((2, 10), np.int16))
    enc.encode(np.zeros((10, 1), np.int16))  # a column is still mono
    assert enc.samples_in == 10
    with pytest.raises(ValueError, match="22050"):
        open_encoder("opus", 22050)


def test_content_types() -> None:
    assert [content_type(f) for f in ENCODE_FORMATS] == [
        "audio/mpeg",
        "audio/ogg; codecs=opus",
        "audio/aac",
        "audio/flac",
        "audio/wav",
        "application/octet-stream",
    ]
    assert open_encoder("opus").content_type == "audio/ogg; codecs=opus"


@pytest.mark.parametrize(("fmt", "rate"), [("opus", 16000), ("mp3", 16000), ("aac", 16000), ("opus", 48000)])
def test_other_rates(fmt: str, rate: int) -> None:
    t = np.arange(rate) / rate
    x = np.round(0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    enc = open_encoder(fmt, rate)
    data = enc.encode(x) + enc.flush()
    _, _, out_rate, y = _decode(data, fmt)
    if fmt == "opus":
        assert enc.priming_samples == 312 * rate // 48000
        assert len(y) * rate // out_rate == len(x)
    else:
        assert out_rate == rate
        assert len(x) <= len(y) - enc.lead_samples < len(x) + FRAME[fmt] * 2


def test_opus_pre_skip_agrees_with_first_packet_pts() -> None:
    """Both ways of learning the delay agree: OpusHead's pre-skip (48 kHz) and
    the -initial_padding FFmpeg stamps on the first packet (input rate)."""
    from kokorod.audio.encode import _measured_priming

    assert _measured_priming("opus", SR, 32_000) == open_encoder("opus", SR).priming_samples == 156


def test_ogg_granule_tracker_survives_arbitrary_splits() -> None:
    from kokorod.audio.ogg_pages import OggGranules as _OggGranules

    x = _signal(0.5)
    _, parts = _encode_all("opus", x)
    data = b"".join(parts)
    final = _ogg_pages(data)[-1][1]
    tracker = _OggGranules()
    rng = np.random.default_rng(0)
    pos = 0
    while pos < len(data):
        step = int(rng.integers(1, 60))
        tracker.feed(data[pos:pos + step])
        pos += step
    assert tracker.granule == final == 312 + 2 * len(x)
