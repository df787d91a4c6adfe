"""Which engine ``--engine auto`` runs: the choice among measured candidates (pure logic).

The reference is onnxruntime's int8 graph (``onnx``), the default everywhere.
Another candidate replaces it only when it

- passed the quality gate against the reference (kokorod.engine.gate:
  durations equal, log-mel distance bounded),
- fits the memory bound (``--engine-max-rss-mb``: its measured resident
  growth, times the engine workers),
- and is faster by at least ``MIN_GAIN`` in CPU time per second of audio, so
  run-to-run noise (several percent on a shared machine) cannot flip the choice.

Among those, the fastest wins. Measuring is kokorod.engine.measure's; keeping
the result across starts is kokorod.engine.choice_record's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kokorod.engine.gate import MAX_LOG_MEL_DB

REFERENCE = "onnx"  # the int8 graph: also --engine onnx
MIN_GAIN = 0.05     # a candidate must need at least 5% less CPU per audio second


@dataclass(frozen=True)
class Measured:
    """One candidate's figures from the warm-up measurement."""

    name: str
    cpu_per_audio_s: float      # median over rounds of CPU seconds per second of audio
    rss_bytes: int              # resident growth of loading it, its first runs and one ~8 s input
    durations_equal: bool = True
    log_mel_db: float = 0.0     # worst sentence's distance to the reference's audio

    @property
    def gate_passed(self) -> bool:
        # Judged with today's bound, so a record written under another bound
        # is re-judged, not trusted.
        return self.durations_equal and self.log_mel_db <= MAX_LOG_MEL_DB

    def to_dict(self) -> dict[str, Any]:
        # Unrounded: a record read back must lead to the choice made when it was written.
        return {"name": self.name, "cpu_per_audio_s": self.cpu_per_audio_s, "rss_bytes": self.rss_bytes,
                "durations_equal": self.durations_equal, "log_mel_db": self.log_mel_db}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Measured":
        return cls(str(d["name"]), float(d["cpu_per_audio_s"]), int(d["rss_bytes"]), bool(d["durations_equal"]),
                   float(d["log_mel_db"]))


@dataclass(frozen=True)
class Choice:
    """The engine in use and why. ``source``: measured (this start), cached (a
    record of an earlier start on this machine), forced (``--engine``),
    pending (int8 while the daemon has yet to measure), or default (nothing
    measured: int8)."""

    name: str
    source: str
    reason: str
    measured: tuple[Measured, ...] = ()
    verdicts: dict[str, str] = field(default_factory=dict)  # candidate -> why kept or not
    # source "pending": what measures the candidates later (a
    # kokorod.engine.selection.PendingMeasure); never recorded or sent.
    pending: object = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.name, "source": self.source, "reason": self.reason,
                "candidates": [{**m.to_dict(), "verdict": self.verdicts.get(m.name, "")} for m in self.measured]}

    def summary(self) -> str:
        """One line for logs and doctor: the choice, then each candidate's figures."""
        parts = [f"{self.name} ({self.source}: {self.reason})"]
        for m in self.measured:
            parts.append(f"{m.name} {m.cpu_per_audio_s:.3f} CPU s/audio s, +{m.rss_bytes / 2**20:.0f} MB, "
                         f"{m.log_mel_db:.2f} dB: {self.verdicts.get(m.name, '')}")
        return "; ".join(parts)


def choose(measured: list[Measured] | tuple[Measured, ...], *, source: str = "measured", min_gain: float = MIN_GAIN,
           max_rss_bytes: int | None = None, workers: int = 1) -> Choice:
    """The fastest candidate that passes every bound, else the reference.

    The reference is never excluded: it is what runs when nothing else may
    (a memory bound below even its size is reported in its verdict)."""
    by_name = {m.name: m for m in measured}
    ref = by_name.get(REFERENCE)
    if ref is None:
        return Choice(REFERENCE, "default", "the reference was not measured", tuple(measured))
    verdicts: dict[str, str] = {}
    eligible: list[Measured] = []
    budget = math.inf if max_rss_bytes is None else max_rss_bytes
    for m in measured:
        if m.name == REFERENCE:
            verdicts[m.name] = "reference" + (" (above the memory bound)" if m.rss_bytes * workers > budget else "")
            continue
        gain = 1.0 - m.cpu_per_audio_s / ref.cpu_per_audio_s if ref.cpu_per_audio_s > 0 else 0.0
        if not m.durations_equal:
            verdicts[m.name] = "gate failed: durations differ from int8"
        elif m.log_mel_db > MAX_LOG_MEL_DB:
            verdicts[m.name] = f"gate failed: audio {m.log_mel_db:.2f} dB from int8 (bound {MAX_LOG_MEL_DB})"
        elif m.rss_bytes * workers > budget:
            verdicts[m.name] = (f"over the memory bound: {m.rss_bytes * workers / 2**20:.0f} MB "
                                f"> {budget / 2**20:.0f} MB")
        elif gain < min_gain:
            verdicts[m.name] = f"not faster enough: {gain:+.1%} CPU against int8 (needs {min_gain:.0%})"
        else:
            verdicts[m.name] = f"{gain:.1%} less CPU than int8"
            eligible.append(m)
    if not eligible:
        return Choice(REFERENCE, source, f"no other candidate is {min_gain:.0%} faster within the gate and the memory bound",
                      tuple(measured), verdicts)
    best = min(eligible, key=lambda m: m.cpu_per_audio_s)
    verdicts[best.name] = "chosen: " + verdicts[best.name]
    return Choice(best.name, source, verdicts[best.name].removeprefix("chosen: "), tuple(measured), verdicts)
