"""One utterance's output timeline, sans I/O.

Feeds shaped 24 kHz chunks in and gets wire events out, in the order the
protocol promises: ``chunk``, then each ``word`` before the audio frame holding
its start, then the frames. Positions are integer samples (24 kHz for words,
the output rate for audio), so nothing drifts however many chunks there are.

For the compressed formats (``opus``, ``mp3``) the frames come from one encoder
per utterance (kokorod/audio/compressed.py): a frame goes out when the encoder's
bytes complete new samples, its ``offset``/``samples`` are the timeline samples
they complete, and words are held until the frame that completes their start.
The encoder is flushed by :meth:`UtteranceTimeline.finish` and discarded by
:meth:`UtteranceTimeline.close` (cancel, failure).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from kokorod.audio.compressed import EncodedFrame, FrameEncoder
from kokorod.audio.formats import encode_pcm, is_compressed
from kokorod.audio.resample import StreamResampler, rescale_offset
from kokorod.engine.base import SAMPLE_RATE
from kokorod.protocol.messages import Audio, Chunk, Done, WordEvent
from kokorod.speech.chunk import SpeechChunk, Word

ServerEvent = Chunk | WordEvent | Audio | Done


@dataclass(frozen=True)
class OutputFormat:
    format: str = "pcm_s16le"
    sample_rate: int = SAMPLE_RATE
    frame_ms: int = 100

    @property
    def frame_samples(self) -> int:
        return max(1, self.sample_rate * self.frame_ms // 1000)


class UtteranceTimeline:
    def __init__(self, utterance: str, fmt: OutputFormat) -> None:
        self.utterance = utterance
        self.fmt = fmt
        self.lang: str | None = None  # the language code each chunk event names
        self._resampler = StreamResampler(fmt.sample_rate)
        self.pos_24k = 0            # samples of model-rate audio placed so far
        self.out_samples = 0        # samples at the output rate sent so far
        self._seq = 0
        self._chunk_index = 0
        self._word_index = 0
        self._words: deque[Word] = deque()  # on the utterance timeline (24 kHz), not yet sent
        self._encoder = FrameEncoder(fmt.format, fmt.sample_rate) if is_compressed(fmt.format) else None
        self.bytes_out = 0          # audio payload bytes sent so far
        self.closed = False         # finished or discarded: no more events

    @property
    def audio_s(self) -> float:
        return self.out_samples / self.fmt.sample_rate

    @property
    def compressed(self) -> bool:
        return self._encoder is not None

    def render(self, text: str, chunk: SpeechChunk) -> list[ServerEvent]:
        """Events for one synthesized chunk (already trimmed, faded and padded)."""
        if self.closed:
            return []
        start = self.pos_24k
        events: list[ServerEvent] = [
            Chunk(self.utterance, self._chunk_index, text, start / SAMPLE_RATE, (start + chunk.samples) / SAMPLE_RATE,
                  self.lang)
        ]
        self._chunk_index += 1
        self._words.extend(w.shifted(start) for w in chunk.words)
        self.pos_24k += chunk.samples
        events.extend(self._frames(self._resampler.process(chunk.audio)))
        return events

    def silence(self, samples: int) -> list[ServerEvent]:
        """``samples`` (24 kHz) of silence on the timeline, for a pause tag: the
        words after it start exactly that much later. Frames like any audio, no
        ``chunk`` (no text is spoken)."""
        if self.closed or samples <= 0:
            return []
        self.pos_24k += samples
        return self._frames(self._resampler.process(np.zeros(samples, dtype=np.float32)))

    def finish(self) -> list[ServerEvent]:
        """The resampler's tail, the encoder's last frame, any words still held,
        and ``done``."""
        if self.closed:
            return []
        events = self._frames(self._resampler.flush())
        if self._encoder is not None:
            last = self._encoder.finish()
            if last is not None:
                events.extend(self._compressed_frame(last))
        self.closed = True
        # Words whose start lies beyond the last sample (clamped by rounding) still
        # go out, before ``done``.
        events.extend(self._word_event(w) for w in self._drain_words(None))
        events.append(Done(self.utterance, self.out_samples / self.fmt.sample_rate, self.out_samples))
        return events

    def close(self) -> None:
        """The utterance ended without :meth:`finish` (cancelled, failed): drop
        the encoder and whatever it holds. Idempotent; a no-op after finish."""
        self.closed = True
        if self._encoder is not None:
            self._encoder.discard()

    def _frames(self, audio: np.ndarray) -> list[ServerEvent]:
        if self._encoder is not None:
            return self._encoded_frames(audio)
        events: list[ServerEvent] = []
        step = self.fmt.frame_samples
        for begin in range(0, audio.shape[0], step):
            frame = audio[begin : begin + step]
            frame_end = self.out_samples + frame.shape[0]
            events.extend(self._word_event(w) for w in self._drain_words(frame_end))
            events.append(
                Audio(
                    self.utterance, self._seq, self.out_samples, int(frame.shape[0]),
                    self.fmt.sample_rate, self.fmt.format, encode_pcm(frame, self.fmt.format),
                )
            )
            self._seq += 1
            self.out_samples = frame_end
            self.bytes_out += len(events[-1].pcm)  # type: ignore[union-attr]
        return events

    def _encoded_frames(self, audio: np.ndarray) -> list[ServerEvent]:
        """Feed ``frame_ms`` of audio at a time; a frame whenever the encoder's
        bytes complete new samples (so frames are about ``frame_ms`` long, give
        or take the codec's framing)."""
        assert self._encoder is not None
        events: list[ServerEvent] = []
        step = self.fmt.frame_samples
        for begin in range(0, audio.shape[0], step):
            frame = self._encoder.encode(audio[begin : begin + step])
            if frame is not None:
                events.extend(self._compressed_frame(frame))
        return events

    def _compressed_frame(self, frame: EncodedFrame) -> list[ServerEvent]:
        assert self._encoder is not None and frame.offset == self.out_samples
        frame_end = frame.offset + frame.samples
        events: list[ServerEvent] = [self._word_event(w) for w in self._drain_words(frame_end)]
        events.append(Audio(self.utterance, self._seq, frame.offset, frame.samples, self.fmt.sample_rate,
                            self.fmt.format, frame.data, self._encoder.lead))
        self._seq += 1
        self.out_samples = frame_end
        self.bytes_out += len(frame.data)
        return events

    def _drain_words(self, before_out_sample: int | None) -> list[Word]:
        out: list[Word] = []
        while self._words and (
            before_out_sample is None
            or rescale_offset(self._words[0].start, self.fmt.sample_rate) < before_out_sample
        ):
            out.append(self._words.popleft())
        return out

    def _word_event(self, word: Word) -> WordEvent:
        event = WordEvent(self.utterance, self._word_index, word.text, word.start / SAMPLE_RATE, word.end / SAMPLE_RATE)
        self._word_index += 1
        return event
