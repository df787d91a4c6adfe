"""Streaming compressed encoders: int16 PCM chunks in, container bytes out.

Sans-I/O: one encoder per utterance; :meth:`StreamEncoder.encode` returns the
bytes that are ready *now* (possibly ``b""`` while the codec fills a frame) and
:meth:`StreamEncoder.flush` returns the rest and closes. Codecs come from PyAV's
bundled FFmpeg (no system libraries); the muxer writes into an in-memory sink
that has no ``seek``, so libavformat treats it as a pipe: it never goes back to
patch a header, and it writes each packet out as soon as it is muxed
(``flush_packets=1``). Container headers are written when the encoder is
created and returned by the first ``encode()`` call, even an empty one.

Timeline: input sample ``i`` is decoded at output index ``i + lead_samples``
(at the input rate). ``priming_samples`` is the codec's delay, measured from the
encoder itself (the first packet's pts is ``-initial_padding``) or, for Opus,
read from the OpusHead pre-skip; ``priming_trimmed`` says whether decoders drop
it, and ``lead_samples`` is what remains (0 if trimmed). Figures below are at
24 kHz, checked against PyAV/FFmpeg decoding in tests/unit/audio/test_encode.py:

``mp3``  MPEG-2 Layer III frames from libmp3lame, CBR, 576 samples a frame; no
         ID3 tag and no Xing/LAME info frame (which carries the gapless delay and
         padding but can only be written by seeking back). Decoders thus cannot
         trim: FFmpeg and browsers output 1105 priming samples (LAME's 576 encoder
         delay + 529 filterbank delay) before the audio, and pad the end to a
         whole frame. lead = 1105. (A decoder that compensates its own
         filterbank delay would lead by 576 instead; FFmpeg does not.)
``opus`` Ogg Opus (RFC 7845), libopus fed 24 kHz directly (it accepts 8, 12, 16,
         24 and 48 kHz; no resampling here), 20 ms frames, one packet per Ogg page.
         OpusHead pre-skip is 312 at 48 kHz (libopus' 6.5 ms lookahead) = 156
         input samples. RFC 7845 requires decoders to drop the pre-skip and cut
         the end at the last granule position; FFmpeg/PyAV (tested), libopusfile
         and browsers' Ogg Opus playback do, so decoders produce exactly the input
         (at 48 kHz: Opus decodes at 48 kHz). lead = 0.
         libavformat holds the newest complete page back (to flag the last one
         end-of-stream at close), so emitted bytes trail the input by one 20 ms
         page plus the partial frame. A page per packet costs ~28 bytes per 20 ms
         (~11 kbit/s) over 1 s pages; that is the price of low latency.
``aac``  ADTS AAC-LC from FFmpeg's native encoder, 1024 samples a frame, 1024
         priming samples. ADTS has nowhere to signal them: FFmpeg outputs them
         (as do browsers playing raw ADTS), and pads the end to a whole frame.
         lead = 1024.
``flac`` Native FLAC stream; lossless, no delay. STREAMINFO's total-samples and
         MD5 stay 0 ("unknown", valid for streams) as they need a seek. lead = 0.
``wav``  A 44-byte PCM WAV header whose RIFF and data sizes are 0xFFFFFFFF (what
         FFmpeg writes to a pipe; decoders read to EOF), then s16le. lead = 0.
``pcm``  Raw s16le mono, no header. lead = 0.

``samples_in`` counts input samples accepted; ``samples_out`` counts input
samples (from the start) that a decoder can reconstruct from the bytes returned
so far, taken from the packets' pts + duration (Opus: from the granule position
of the last complete Ogg page returned). After ``flush()`` it equals
``samples_in``.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import numpy as np

from kokorod.audio.formats import Int16Array
from kokorod.audio.ogg_pages import OPUS_GRANULE_RATE, OggGranules, opus_pre_skip
from kokorod.model_facts import SAMPLE_RATE

if TYPE_CHECKING:
    # PyAV is imported by the first compressed encoder, not at start-up: a daemon
    # whose clients take PCM never loads it (17 MB resident).
    import av

MP3: Final = "mp3"
OPUS: Final = "opus"
AAC: Final = "aac"
FLAC: Final = "flac"
WAV: Final = "wav"
PCM: Final = "pcm"

ENCODE_FORMATS: Final[tuple[str, ...]] = (MP3, OPUS, AAC, FLAC, WAV, PCM)

# One 20 ms Opus packet per Ogg page: libavformat's default page is ~1 s.
_OGG_PAGE_US: Final = 20_000


@dataclass(frozen=True)
class _Spec:
    content_type: str
    priming_trimmed: bool
    muxer: str | None = None  # libavformat muxer; None: written here, no PyAV
    codec: str = ""
    sample_fmt: str = "s16"  # what we hand the codec; mono s16 == s16p in memory
    bitrate: int = 0  # default bit/s; 0 for lossless
    muxer_options: dict[str, str] = field(default_factory=dict)
    codec_options: dict[str, str] = field(default_factory=dict)


_SPECS: Final[dict[str, _Spec]] = {
    # id3v2_version=0: bare frames; a pipe would get an ID3 tag naming Lavf.
    MP3: _Spec("audio/mpeg", False, "mp3", "libmp3lame", "s16p", 64_000,
               {"id3v2_version": "0", "write_xing": "0"}),
    OPUS: _Spec("audio/ogg; codecs=opus", True, "ogg", "libopus", "s16", 32_000,
                {"page_duration": str(_OGG_PAGE_US)}, {"frame_duration": "20"}),
    # The native encoder only takes planar float.
    AAC: _Spec("audio/aac", False, "adts", "aac", "fltp", 64_000),
    # No 8 KiB PADDING block: it only helps files later edited in place.
    FLAC: _Spec("audio/flac", True, "flac", "flac", "s16", 0, {"metadata_header_padding": "0"}),
    WAV: _Spec("audio/wav", True),
    # audio/L16 would be wrong: RFC 2586 L16 is big-endian.
    PCM: _Spec("application/octet-stream", True),
}


def _spec(fmt: str) -> _Spec:
    try:
        return _SPECS[fmt]
    except KeyError:
        raise ValueError(f"unknown encode format {fmt!r}; expected one of {ENCODE_FORMATS}") from None


def content_type(fmt: str) -> str:
    """MIME type for an HTTP response carrying ``fmt``; ValueError if unknown."""
    return _spec(fmt).content_type


@runtime_checkable
class StreamEncoder(Protocol):
    fmt: str
    sample_rate: int
    content_type: str
    priming_samples: int
    priming_trimmed: bool

    @property
    def lead_samples(self) -> int: ...
    @property
    def samples_in(self) -> int: ...
    @property
    def samples_out(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def encode(self, pcm: Int16Array) -> bytes: ...
    def flush(self) -> bytes: ...


class _EncoderBase:
    """Bookkeeping and input checks shared by both implementations."""

    def __init__(self, fmt: str, sample_rate: int, priming_samples: int) -> None:
        spec = _spec(fmt)
        self.fmt = fmt
        self.sample_rate = sample_rate
        self.content_type = spec.content_type
        self.priming_samples = priming_samples
        self.priming_trimmed = spec.priming_trimmed
        self._samples_in = 0
        self._samples_out = 0
        self._closed = False

    @property
    def lead_samples(self) -> int:
        """Samples a decoder outputs before input sample 0 (input rate)."""
        return 0 if self.priming_trimmed else self.priming_samples

    @property
    def samples_in(self) -> int:
        return self._samples_in

    @property
    def samples_out(self) -> int:
        return self._samples_out

    @property
    def closed(self) -> bool:
        return self._closed

    def _accept(self, pcm: Int16Array) -> Int16Array:
        if self._closed:
            raise RuntimeError(f"{self.fmt} encoder already flushed; open a new one per utterance")
        samples = np.asarray(pcm)
        # A float array cast to int16 would be silent garbage: make the caller quantise.
        if samples.dtype != np.int16:
            raise TypeError(f"expected int16 PCM, got {samples.dtype} (use formats.float_to_int16)")
        if samples.ndim != 1:
            if samples.size != max(samples.shape, default=0):
                raise ValueError(f"expected mono samples, got shape {samples.shape}")
            samples = samples.reshape(-1)
        return np.ascontiguousarray(samples)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.fmt} encoder already flushed")


class _RawEncoder(_EncoderBase):
    """``pcm`` and ``wav``: no codec, so no PyAV round trip per chunk."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        super().__init__(fmt, sample_rate, 0)
        self._header = _wav_header(sample_rate) if fmt == WAV else b""

    def encode(self, pcm: Int16Array) -> bytes:
        samples = self._accept(pcm)
        out = self._header + samples.astype("<i2", copy=False).tobytes()
        self._header = b""
        self._samples_in += samples.size
        self._samples_out = self._samples_in
        return out

    def flush(self) -> bytes:
        out = self.encode(np.zeros(0, np.int16))
        self._closed = True
        return out


def _wav_header(sample_rate: int) -> bytes:
    unknown = 0xFFFFFFFF
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", unknown, b"WAVE", b"fmt ", 16,
                       1, 1, sample_rate, sample_rate * 2, 2, 16, b"data", unknown)


class _ByteSink:
    """The file-like PyAV writes into. Deliberately no seek/tell (see module doc)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def drain(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class _PyAVEncoder(_EncoderBase):
    def __init__(self, fmt: str, sample_rate: int, bitrate: int | None) -> None:
        import av

        spec = _spec(fmt)
        assert spec.muxer is not None
        rates = av.Codec(spec.codec, "w").audio_rates
        if rates and sample_rate not in rates:
            raise ValueError(f"{fmt} ({spec.codec}) does not take {sample_rate} Hz; use one of {sorted(rates)}")
        rate_bps = spec.bitrate if bitrate is None else bitrate
        self._sink = _ByteSink()
        self._container = av.open(self._sink, "w", format=spec.muxer,
                                  container_options={**spec.muxer_options, "flush_packets": "1"})
        try:
            codec = self._container.add_stream(spec.codec, rate=sample_rate).codec_context
            assert isinstance(codec, av.AudioCodecContext)
            self._codec = codec
            _configure(codec, spec, sample_rate, rate_bps)
            self._codec.open()
            if fmt == OPUS:
                priming = opus_pre_skip(bytes(self._codec.extradata or b"")) * sample_rate // OPUS_GRANULE_RATE
            else:
                priming = _measured_priming(fmt, sample_rate, rate_bps)
            # Writes the header into the sink now, so the first encode() returns it.
            self._container.start_encoding()
        except BaseException:
            self._container.close()
            raise
        super().__init__(fmt, sample_rate, priming)
        self._time_base = Fraction(1, sample_rate)
        self._ogg = OggGranules() if fmt == OPUS else None
        self._packet_end = 0

    def encode(self, pcm: Int16Array) -> bytes:
        import av  # loaded by __init__: a dictionary lookup

        samples = self._accept(pcm)
        if samples.size:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._samples_in
            frame.time_base = self._time_base
            self._samples_in += samples.size
            # PyAV re-frames to the codec's frame size and converts the sample format.
            self._mux(self._codec.encode(frame))
        return self._drain()

    def flush(self) -> bytes:
        self._check_open()
        try:
            self._mux(self._codec.encode(None))
        finally:
            self._closed = True
            self._container.close()  # trailer: Ogg's last page, flagged end-of-stream
        out = self._drain()
        self._samples_out = self._samples_in
        return out

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            # Read before muxing: the muxer rebases the packet to the stream time base.
            if packet.pts is not None and packet.duration is not None:
                self._packet_end = max(self._packet_end, packet.pts + packet.duration)
            self._container.mux_one(packet)

    def _drain(self) -> bytes:
        out = self._sink.drain()
        if self._ogg is not None:
            self._ogg.feed(out)
            pre_skip = self.priming_samples * OPUS_GRANULE_RATE // self.sample_rate
            end = (self._ogg.granule - pre_skip) * self.sample_rate // OPUS_GRANULE_RATE
        else:
            # mp3/adts/flac muxers write every packet through at once (flush_packets).
            end = self._packet_end
        self._samples_out = max(self._samples_out, min(max(end, 0), self._samples_in))
        return out


def _configure(codec: av.AudioCodecContext, spec: _Spec, sample_rate: int, bitrate: int) -> None:
    codec.sample_rate = sample_rate
    codec.layout = "mono"
    codec.format = spec.sample_fmt
    codec.time_base = Fraction(1, sample_rate)
    if bitrate:
        codec.bit_rate = bitrate
    codec.options = dict(spec.codec_options)


@functools.lru_cache(maxsize=32)
def _measured_priming(fmt: str, sample_rate: int, bitrate: int) -> int:
    """Encoder delay at the input rate, measured once per configuration: FFmpeg
    stamps the first packet ``-initial_padding`` (PyAV does not expose the field,
    and ``CodecContext.delay`` stays 0 for these encoders)."""
    import av

    spec = _spec(fmt)
    codec = av.CodecContext.create(spec.codec, "w")
    assert isinstance(codec, av.AudioCodecContext)
    _configure(codec, spec, sample_rate, bitrate)
    codec.open()
    frame_size = codec.frame_size or 1024
    silence = np.zeros((1, frame_size), np.int16)
    for index in range(64):
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = index * frame_size
        frame.time_base = Fraction(1, sample_rate)
        packets = codec.encode(frame)
        if packets and packets[0].pts is not None:
            return max(0, -int(packets[0].pts))
    raise RuntimeError(f"{spec.codec} produced no packet from {64 * frame_size} samples")


def open_encoder(fmt: str, sample_rate: int = SAMPLE_RATE, bitrate: int | None = None) -> StreamEncoder:
    """A fresh encoder for one utterance of mono int16 audio at ``sample_rate``.

    ``bitrate`` (bit/s) overrides the lossy defaults (mp3 64k CBR, opus 32k VBR,
    aac 64k); it is ignored by the lossless formats. ValueError for an unknown
    format or a rate the codec does not take.
    """
    spec = _spec(fmt)
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    if spec.muxer is None:
        return _RawEncoder(fmt, sample_rate)
    return _PyAVEncoder(fmt, sample_rate, bitrate)
