"""What the chunk budget needs to turn time into characters, learnt from the
chunks the daemon renders: how fast each language is spoken, and how much
audio every engine run decodes beyond its speech.

Both are properties of the model and the engine, not of the machine's speed
(that is the RTF, kokorod.daemon.admission), so they are measured from what
the engine returns rather than written down: the silence a run decodes around
its speech changes with the engine (one that trims its pads decodes less), and
characters per second of speech differ by language and voice.

Everything is kept at 1x: at speed s a run's speech and its pads (Kokoro
divides every duration by the speed) are 1/s as long.
"""

from __future__ import annotations

from dataclasses import dataclass

from kokorod.speech.seams import PAUSE_MS
from kokorod.text.cut_policy import ChunkBudget
from kokorod.text.segment_profiles import Unit

# Until a language has been heard: spoken characters per second of speech at 1x
# (English ~14-16 chars/s; a hanzi or Japanese character carries ~3-3.5 Latin
# characters' worth, see segment_profiles) and the silence a run decodes around
# its speech (Kokoro's pad tokens get 0.3-0.4 s before and 0.2-0.3 s after).
# Both are on the cautious side: with trimmed decoding the daemon learnt 17-20
# chars/s and 0.31-0.54 s in en/es/fr/it (AMD EPYC, bench/chunking_quality.py),
# so a language's first utterance gets a shorter first chunk than later ones.
PRIOR_CHARS_PER_S: dict[Unit, float] = {"words": 14.0, "chars": 4.5}
PRIOR_OVERHEAD_S = 0.55
PRIOR_WEIGHT_S = 2.0        # the prior counts as this many seconds of speech heard
HALF_LIFE_SPEECH_S = 120.0  # what was learnt halves in weight every this much speech
MIN_SPEECH_S = 0.2          # shorter runs say little about the rate
MAX_LANGUAGES = 32          # bounded: one entry per language code met


@dataclass
class _Rate:
    chars: float        # decayed spoken characters
    speech_s: float     # decayed seconds of speech, at 1x
    overhead_s: float   # decayed seconds decoded beyond speech, at 1x (summed over runs)
    runs: float         # decayed run count

    def add(self, chars: float, speech_s: float, overhead_s: float) -> None:
        keep = 0.5 ** (speech_s / HALF_LIFE_SPEECH_S)
        self.chars = self.chars * keep + chars
        self.speech_s = self.speech_s * keep + speech_s
        self.overhead_s = self.overhead_s * keep + overhead_s
        self.runs = self.runs * keep + 1.0


class SpeechRates:
    """Per language: spoken characters per second of speech, and audio decoded
    beyond speech per run. Owned by the event loop (sessions observe after a
    render returns), so no lock."""

    def __init__(self) -> None:
        self._rates: dict[str, _Rate] = {}

    def _rate(self, lang_code: str, unit: Unit) -> _Rate:
        rate = self._rates.get(lang_code)
        if rate is None:
            cps = PRIOR_CHARS_PER_S[unit]
            runs = PRIOR_WEIGHT_S / 2.0  # a prior run is ~2 s of speech
            rate = _Rate(cps * PRIOR_WEIGHT_S, PRIOR_WEIGHT_S, PRIOR_OVERHEAD_S * runs, runs)
            if len(self._rates) >= MAX_LANGUAGES:
                self._rates.pop(next(iter(self._rates)))
            self._rates[lang_code] = rate
        return rate

    def observe(self, lang_code: str, unit: Unit, *, spoken_chars: int, speech_samples: int,
                decoded_samples: int, sample_rate: int, speed: float) -> None:
        """One rendered run: its text's length, the span of its speech and
        everything it decoded, in samples at the speed it was made at."""
        speech_s = speech_samples / sample_rate * speed
        if speech_s < MIN_SPEECH_S or spoken_chars <= 0 or decoded_samples < speech_samples:
            return
        overhead_s = (decoded_samples - speech_samples) / sample_rate * speed
        self._rate(lang_code, unit).add(float(spoken_chars), speech_s, overhead_s)

    def chars_per_s(self, lang_code: str, unit: Unit) -> float:
        r = self._rate(lang_code, unit)
        return r.chars / r.speech_s

    def overhead_s(self, lang_code: str, unit: Unit) -> float:
        r = self._rate(lang_code, unit)
        return r.overhead_s / r.runs

    def budget(self, lang_code: str, unit: Unit, *, speed: float, pace: float | None,
               first_audio_s: float | None, first_pace: float | None = None) -> ChunkBudget | None:
        """The segmenter's budget for a stream at ``speed`` planned at ``pace``
        (None: nothing measured yet, the profile's word counts and ramp);
        ``first_pace``: the first chunk's expected pace (ChunkBudget)."""
        if pace is None or not pace > 0:
            return None
        if pace >= 1.0:
            # The engine cannot keep up with this stream however it is cut: a
            # short first chunk would only be followed by a wait, and short
            # chunks pay the per-run overhead more often. The old policy (word
            # counts, then chunks as large as the ramp allows) stutters least.
            return ChunkBudget(pace)
        return ChunkBudget(pace, chars_per_s=self.chars_per_s(lang_code, unit) * speed,
                           overhead_s=self.overhead_s(lang_code, unit) / speed, first_audio_s=first_audio_s,
                           first_pace=None if first_pace is None else min(first_pace, pace),
                           # The seams' pauses by boundary kind; "final" (the utterance's
                           # last chunk) is not one of them: it gets none.
                           pause_s={kind: ms / 1000 / speed for kind, ms in PAUSE_MS.items() if ms})
