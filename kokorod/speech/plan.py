"""One segment as the steps that speak it: warn, synthesize, pause.

Every entry point (the daemon's session, ``say``, ``pipe``) walks these steps
in order, so what is reported, what is synthesized and where silence goes is
decided in one place. Pure: no engine, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence, Union

from kokorod.engine.base import SAMPLE_RATE
from kokorod.text.languages import Language
from kokorod.text.segmenter import Segment

# Warning codes: the wire's ``WarningCode`` values (kokorod.protocol.messages),
# kept as plain strings so the pipeline does not depend on the protocol.
UNSPEAKABLE = "unspeakable"   # text the voice cannot say (another script, emoji, unknown symbols)
SKIPPED = "skipped"           # text deliberately not spoken (code blocks)
MARKUP = "markup"             # inline control not taken as written (a clamped <break/>)


@dataclass(frozen=True)
class Warn:
    """Tell the listener about text not spoken as written (never silent)."""

    code: str
    text: str      # the written text concerned
    message: str

    @property
    def unspoken(self) -> bool:
        """The text was not spoken at all (a markup note's text was)."""
        return self.code != MARKUP


@dataclass(frozen=True)
class Synthesize:
    """Speak the segment's normalised text (``kokorod.speech.render``)."""

    segment: Segment


@dataclass(frozen=True)
class Pause:
    """Exact silence from a <break/> tag, after whatever the text made."""

    samples: int  # at the model's rate (24 kHz)


Step = Union[Warn, Synthesize, Pause]


def plan_segment(segment: Segment, lang: Language) -> list[Step]:
    """The steps for one segment, in the order they happen: what the
    normaliser dropped or the segmenter skipped is reported first, then the
    spoken text, then a pause tag's silence."""
    steps: list[Step] = []
    if segment.dropped:
        steps.append(Warn(UNSPEAKABLE, " ".join(segment.dropped), f"not speakable as {lang.name}; skipped"))
    if segment.code and segment.text.strip():
        steps.append(Warn(SKIPPED, segment.text.strip(), "code block not spoken"))
    for note in segment.notes:  # markup not taken as written, e.g. a clamped <break/>
        steps.append(Warn(MARKUP, segment.text.strip(), note))
    if segment.spoken.strip():
        steps.append(Synthesize(segment))
    if segment.pause_after_ms:
        steps.append(Pause(segment.pause_after_ms * SAMPLE_RATE // 1000))
    return steps


def unspeakable_warning(unspeakable: Sequence[str], lang: Language) -> Warn | None:
    """After synthesis: written words the G2P gave no sound the model knows."""
    if not unspeakable:
        return None
    return Warn(UNSPEAKABLE, " ".join(unspeakable), f"{lang.name} G2P gave no sounds the model knows for this text")


def makes_sound(segment: Segment) -> bool:
    """Whether a segment puts anything on the timeline (speech or a pause)."""
    return bool(segment.spoken.strip() or segment.pause_after_ms)


def is_last(final: bool, following: Iterable[Segment]) -> bool:
    """Whether a segment about to be synthesized is the utterance's last sound:
    its text is complete (``final``) and nothing queued after it makes sound.
    The last chunk gets no seam pause, so the end is not delayed by silence."""
    return final and not any(makes_sound(s) for s in following)
