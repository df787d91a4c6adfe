"""The margin admission keeps over the measured engine speed, learnt from lateness.

Why learnt and not fixed. The RTF estimate (kokorod.daemon.admission) is what
the engine's runs took; what a listener sees is more: the event loop encoding
and sending on the same cores, the first chunks of streams that start at once
queueing behind each other, a neighbour's job on a shared box. How much more
depends on the CPU and on the load, so a constant margin is too small on one
machine and wastes capacity on another. The only measurement that says whether
the margin was enough is the one admission exists for: did an admitted stream
run late?

- a late chunk (a listener ran out of audio) raises the margin by
  ``RAISE_FACTOR``, at most once per ``RAISE_COOLDOWN_S`` (one slow spell makes
  several streams late at once: that is one lesson, not five);
- audio delivered on time while streams *shared* the engine (two or more
  admitted) lowers it slowly: it halves its distance to ``MIN_MARGIN`` every
  ``LOWER_HALF_LIFE_S`` seconds of such audio. A lone stream's audio says
  nothing about whether a second would fit, so it lowers the margin only back
  towards where it started (a noisy neighbour that made streams late and then
  left must not leave the daemon at one stream for good: with the margin up,
  no two streams may share, so shared audio could never bring it down);
- it stays within [MIN_MARGIN, MAX_MARGIN].

It starts at ``INITIAL_MARGIN``: a fresh daemon admits conservatively and earns
its capacity, rather than learning by making streams stutter. Plain object,
no clock of its own (``now`` is passed in), owned by the event loop.
"""

from __future__ import annotations

import math

# 1.5 is the pace margin chunk sizes were already planned with (Capacity.pace):
# admitting streams up to the bound at a smaller margin left the segmenter
# planning for a pace >= 1, i.e. with no chunk size that keeps up.
INITIAL_MARGIN = 1.5
MIN_MARGIN = 1.15
MAX_MARGIN = 3.0
RAISE_FACTOR = 1.25
RAISE_COOLDOWN_S = 5.0
LOWER_HALF_LIFE_S = 600.0  # seconds of on-time audio served to two or more streams


class Headroom:
    """A margin in [low, high]: up on lateness, slowly down on shared on-time audio.

    ``fixed``: a constant margin that never learns (``--admission-margin N``;
    1 with the plain running RTF is the admission of old).
    """

    def __init__(self, *, initial: float = INITIAL_MARGIN, low: float = MIN_MARGIN, high: float = MAX_MARGIN,
                 fixed: float | None = None) -> None:
        if fixed is not None:
            if not (fixed > 0 and math.isfinite(fixed)):
                raise ValueError(f"a fixed margin must be a positive number, not {fixed!r}")
            initial = low = high = fixed
        if not 0 < low <= initial <= high:
            raise ValueError(f"need 0 < low <= initial <= high, not {low}, {initial}, {high}")
        self.fixed = fixed is not None
        self.low, self.high, self.initial = low, high, initial
        self.margin = initial
        self.late_events = 0      # late chunks reported (every one, also inside a cooldown)
        self.raises = 0           # times the margin went up
        self.on_time_shared_s = 0.0  # audio delivered on time to streams sharing the engine
        self._last_raise: float | None = None

    def late(self, now: float) -> bool:
        """An admitted stream's chunk came after its listener ran out of audio.
        True when that raised the margin (not within the cooldown of a raise)."""
        self.late_events += 1
        if self.fixed or (self._last_raise is not None and now - self._last_raise < RAISE_COOLDOWN_S):
            return False
        self._last_raise = now
        before = self.margin
        self.margin = min(self.high, self.margin * RAISE_FACTOR)
        if self.margin > before:
            self.raises += 1
        return self.margin > before

    def on_time(self, audio_s: float, streams: int) -> None:
        """``audio_s`` of audio reached a listener before it ran out, while
        ``streams`` streams were admitted."""
        if streams < 1 or not audio_s > 0 or not math.isfinite(audio_s):
            return
        if streams >= 2:
            self.on_time_shared_s += audio_s
        floor = self.low if streams >= 2 else self.initial
        if self.fixed or self.margin <= floor:
            return
        keep = 0.5 ** (audio_s / LOWER_HALF_LIFE_S)
        self.margin = floor + (self.margin - floor) * keep
