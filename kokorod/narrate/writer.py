"""Audio files written as synthesis goes, in the format the name asks for.

mp3, Ogg Opus, ADTS AAC and FLAC reuse the daemon's streaming encoders
(``kokorod.audio.encode``): their bytes go to the file as they come, so what
is on disk is always a playable prefix, and ``close()`` (run on Ctrl-C or a
failure too) only adds the codec's last frames. WAV goes through soundfile,
which patches the header's sizes on close. m4a (MP4) cannot be streamed that
way: its index is written at the end, so it is muxed by PyAV straight into the
file, with the chapters in the container.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kokorod.audio.formats import float_to_int16
from kokorod.narrate.chapters import Chapter, chapters_file, tag_mp3, write_chapter_list

# Extension -> format. "ogg" is Ogg Opus (the only Ogg we write).
EXTENSIONS = {"wav": "wav", "mp3": "mp3", "opus": "opus", "ogg": "opus", "flac": "flac", "m4a": "m4a",
              "aac": "aac"}
FORMATS = ("wav", "mp3", "opus", "flac", "m4a", "aac")
M4A_BITRATE = 64_000


def format_for(path: str, fmt: str | None = None) -> str:
    """The format named by ``fmt``, else by the file's extension."""
    from kokorod.errors import InputError

    if fmt:
        if fmt not in FORMATS and fmt not in EXTENSIONS:
            raise InputError(f"unknown format {fmt!r}", "use one of " + ", ".join(FORMATS))
        return EXTENSIONS.get(fmt, fmt)
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in EXTENSIONS:
        raise InputError(f"cannot tell the audio format of {path!r} from its extension",
                         "name it .wav .mp3 .opus .ogg .flac .m4a or .aac, or pass --format")
    return EXTENSIONS[ext]


class AudioWriter:
    """One output file. ``write`` takes float32 mono at ``sample_rate``."""

    def __init__(self, path: Path, fmt: str, sample_rate: int) -> None:
        self.path, self.fmt, self.sample_rate = path, fmt, sample_rate
        self.samples = 0  # written so far, at sample_rate
        self.lead_samples = 0  # what a decoder plays before sample 0 (mp3/aac priming)
        self.closed = False
        self._file: BinaryIO | None = None
        if fmt == "wav":
            import soundfile

            self._wav = soundfile.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16")
        elif fmt == "m4a":
            self._m4a = _M4aMuxer(path, sample_rate)
        else:
            from kokorod.audio.encode import open_encoder

            self._encoder = open_encoder("aac" if fmt == "aac" else fmt, sample_rate)
            self.lead_samples = self._encoder.lead_samples
            self._file = path.open("wb")
            self._file.write(self._encoder.encode(np.zeros(0, np.int16)))  # the container header

    @property
    def bytes_written(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def write(self, audio: np.ndarray) -> None:
        if not audio.size:
            return
        if self.fmt == "wav":
            self._wav.write(audio)
        elif self.fmt == "m4a":
            self._m4a.write(audio)
        else:
            assert self._file is not None
            self._file.write(self._encoder.encode(float_to_int16(audio)))
            self._file.flush()  # on disk as it comes: a killed job still leaves the prefix
        self.samples += int(audio.shape[0])

    def close(self, chapters: list[Chapter] | None = None) -> list[Path]:
        """Finish the file (idempotent); returns any side file written (chapters)."""
        if self.closed:
            return []
        self.closed = True
        chapters = [c for c in (chapters or []) if c.start < max(self.samples, 1)]
        if self.fmt == "wav":
            self._wav.close()
        elif self.fmt == "m4a":
            self._m4a.close(chapters)
            return []
        else:
            assert self._file is not None
            try:
                self._file.write(self._encoder.flush())
            finally:
                self._file.close()
        if len(chapters) > 1 or (chapters and chapters[0].start > 0):
            if self.fmt == "mp3" and tag_mp3(self.path, chapters, self.sample_rate, self.lead_samples):
                return []
            side = chapters_file(self.path)
            write_chapter_list(side, chapters, self.sample_rate)
            return [side]
        return []


class _M4aMuxer:
    """AAC-LC in MP4 (iTunes flavour) through PyAV into a seekable file."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        import av

        self._container = av.open(str(path), "w", format="ipod")
        stream = self._container.add_stream("aac", rate=sample_rate)
        codec = stream.codec_context
        codec.layout = "mono"
        codec.format = "fltp"  # FFmpeg's native AAC encoder takes planar float only
        codec.bit_rate = M4A_BITRATE
        self._stream, self._rate, self._pts = stream, sample_rate, 0

    def write(self, audio: np.ndarray) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, np.float32).reshape(1, -1),
                                           format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = self._rate, self._pts, Fraction(1, self._rate)
        self._pts += audio.shape[0]
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self, chapters: list[Chapter]) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if chapters:
                tb = Fraction(1, self._rate)
                self._container.set_chapters([
                    {"id": c.index, "start": c.start, "end": max(c.end, c.start + 1), "time_base": tb,
                     "metadata": {"title": c.title}} for c in chapters])
        finally:
            self._container.close()  # the moov index: without it the file does not play
