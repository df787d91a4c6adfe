"""How many streams the engine can feed at 1x: a measured real-time factor and
the arithmetic that turns it into an admission decision.

Units. RTF is engine seconds per second of audio *as produced*: a chunk of
3 s of audio that took 1.2 s on an engine worker is 0.4. A listener plays audio
at 1x whatever speed it was synthesized at, so a stream keeps up only if the
engine makes one second of its audio per wall second: its demand on the engine
is RTF(speed) engine seconds per wall second (a fraction of one worker). It is
*not* ``speed x RTF(1x)``: speed 2 packs twice the text into each second of
audio, but the audio itself is half as long, and Kokoro's cost is mostly per
second of audio (the decoder), partly per phoneme (G2P, the text encoder, fixed
per-run work). Hence a linear model per second of audio,

    RTF(s) = RTF(1) * (1 + slope * (s - 1)),   0 <= slope <= 1,

slope 0 when all the cost is per audio second, 1 when all of it is per phoneme
(then demand grows with speed, as ``speed x RTF`` would say). The daemon
measures the slope at start (the same sentence at 1x and 2x) instead of assuming
it; it differs between machines (on a GPU the per-phoneme CPU work dominates).
Slow speech (s < 1) is counted as 1x: per second of audio it has fewer phonemes,
so it never costs more.

Admission. A new stream is admitted while every stream, it included, fits:

    sum(demand) <= workers * utilisation     and     demand(new) <= utilisation

(a stream's chunks run one at a time, so one stream can never use more than one
worker). A stream is always admitted when none is active: refusing it would
help no one. See docs/operations.md (*Capacity*) for the choice of the
utilisation bound.

A stream's demand for admission is conservative: ``RtfEstimator.admission_rtf``
(the highest of the running RTF, long chunks' and chunks run under
concurrency) times a margin learnt from late streams (kokorod.daemon.headroom).
Without a learning Headroom it is the running RTF times a fixed margin (1: the
admission of old).
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from typing import Callable, Iterable

from kokorod.config import DEFAULT_UTILISATION  # why 0.8: said with the setting
from kokorod.daemon.headroom import Headroom
from kokorod.protocol.messages import CapacityInfo

# Observed chunks weigh by their audio; the estimate halves the weight of what
# it learnt every this many seconds of audio produced (all streams together).
DEFAULT_HALF_LIFE_AUDIO_S = 30.0
# One observation moves the estimate by at most this factor either way: a run
# slowed by a one-off (a language's G2P built on first use, a GC pause) must not
# swing admission, while a real change of load still wins within a few chunks.
MAX_STEP = 2.0
MIN_AUDIO_S = 0.1  # shorter chunks are mostly fixed overhead: not representative
# A stream's steady chunks: the segmenter ramps up to ~300 characters (15-20 s
# of audio), and every chunk from this long on costs about the same per second.
LONG_CHUNK_S = 5.0
# Long chunks' RTF over the warm-up sentence's, until a long chunk is measured:
# 1.42 and 1.49 on the reference box (2.6 s against 17 s of audio, idle and loaded).
LONG_CHUNK_PRIOR = 1.4
# Audio a learnt figure needs before it counts (one chunk of a few words says little).
MIN_LEARNT_AUDIO_S = 5.0
_EPS = 1e-9


def speed_factor(speed: float, slope: float) -> float:
    """RTF(speed) / RTF(1x) under the linear model (slope clamped to [0, 1])."""
    slope = min(1.0, max(0.0, slope))
    return 1.0 + slope * (speed - 1.0)


def slope_from(rtf_1x: float, rtf_2x: float) -> float:
    """The model's slope from the RTF of the same text at 1x and at 2x."""
    if not (rtf_1x > 0 and math.isfinite(rtf_1x) and math.isfinite(rtf_2x)):
        return 0.0
    return min(1.0, max(0.0, rtf_2x / rtf_1x - 1.0))


class _Ratio:
    """Decayed engine seconds over decayed audio seconds: each observation
    weighs by its audio, and what was learnt halves in weight every
    ``half_life_audio_s`` seconds of audio observed."""

    __slots__ = ("engine", "audio")

    def __init__(self) -> None:
        self.engine = 0.0  # decayed engine seconds, normalised to 1x
        self.audio = 0.0   # decayed audio seconds

    def value(self) -> float | None:
        return self.engine / self.audio if self.audio > 0 else None

    def add(self, rtf: float, audio_s: float, half_life_audio_s: float) -> None:
        current = self.value()
        if current is not None:
            rtf = min(current * MAX_STEP, max(current / MAX_STEP, rtf))
        keep = 0.5 ** (audio_s / half_life_audio_s)
        self.engine = self.engine * keep + rtf * audio_s
        self.audio = self.audio * keep + audio_s


class RtfEstimator:
    """Engine seconds per second of audio, at 1x, learnt from the jobs the engine ran.

    An exponentially weighted ratio of sums: each observation's engine seconds
    (normalised to 1x by the speed model) and audio seconds are added to decayed
    totals, so long chunks count for more than short ones and old ones fade.
    Only completed runs are observed: a cancelled or preempted run made no audio
    and says nothing about speed (its time shows in the scheduler's busy time).
    Thread-safe: workers observe, the event loop reads.

    Beside that running figure (``rtf``, what chunks cost on average) it keeps
    what admission must plan with (``admission_rtf``): the warm-up times a short
    sentence, but a stream's steady chunks are long, and a long run costs more
    per second of audio (measured on the reference box, one process: RTF 0.29
    for 2.6 s of audio, 0.35 for 8 s, 0.41 for 17 s); and streams sharing the
    engine slow each other (the event loop's encoding and sending on the same
    cores). So it also learns the RTF of long chunks (>= LONG_CHUNK_S of audio)
    and of chunks run while two or more streams were admitted (``concurrency``,
    set by the daemon), and admission plans with the highest of the three;
    until a long chunk has been seen, the long figure is the running one times
    LONG_CHUNK_PRIOR.
    """

    def __init__(self, *, half_life_audio_s: float = DEFAULT_HALF_LIFE_AUDIO_S, slope: float = 0.0) -> None:
        self.half_life_audio_s = half_life_audio_s
        self.slope = min(1.0, max(0.0, slope))
        self.observations = 0
        # Streams admitted now, read on the engine threads when a run completes
        # (the daemon points it at Capacity.active); None: unknown, counted as one.
        self.concurrency: Callable[[], int] | None = None
        self._all = _Ratio()
        self._long = _Ratio()    # chunks of at least LONG_CHUNK_S of audio
        self._shared = _Ratio()  # chunks run while two or more streams were admitted
        self._lock = threading.Lock()

    def seed(self, engine_s: float, audio_s: float, *, slope: float | None = None) -> None:
        """Start from a measurement (the warm-up), forgetting anything before."""
        with self._lock:
            if slope is not None:
                self.slope = min(1.0, max(0.0, slope))
            self._all, self._long, self._shared = _Ratio(), _Ratio(), _Ratio()
            if audio_s > 0 and engine_s > 0:
                self._all.engine, self._all.audio = engine_s, audio_s

    def observe(self, engine_s: float, audio_s: float, speed: float = 1.0, *, streams: int | None = None) -> None:
        if not (math.isfinite(engine_s) and math.isfinite(audio_s)) or engine_s <= 0 or audio_s < MIN_AUDIO_S:
            return
        if streams is None and self.concurrency is not None:
            try:
                streams = self.concurrency()
            except Exception:  # a broken hook must not cost the measurement
                streams = None
        with self._lock:
            rtf = engine_s / audio_s / speed_factor(speed, self.slope)
            self._all.add(rtf, audio_s, self.half_life_audio_s)
            if audio_s >= LONG_CHUNK_S:
                self._long.add(rtf, audio_s, self.half_life_audio_s)
            if streams is not None and streams >= 2:
                self._shared.add(rtf, audio_s, self.half_life_audio_s)
            self.observations += 1

    def rtf(self, speed: float = 1.0) -> float | None:
        """Estimated RTF of a stream at ``speed`` (None: nothing measured yet)."""
        with self._lock:
            value = self._all.value()
        return None if value is None else value * speed_factor(max(1.0, speed), self.slope)

    def admission_rtf(self, speed: float = 1.0) -> float | None:
        """The conservative RTF admission plans with: the highest of the running
        figure, long chunks' (or the running one x LONG_CHUNK_PRIOR before any)
        and shared chunks' (None: nothing measured yet)."""
        with self._lock:
            running = self._all.value()
            if running is None:
                return None
            long_ = self._long.value() if self._long.audio >= MIN_LEARNT_AUDIO_S else None
            shared = self._shared.value() if self._shared.audio >= MIN_LEARNT_AUDIO_S else None
        candidates = [running, long_ if long_ is not None else running * LONG_CHUNK_PRIOR]
        if shared is not None:
            candidates.append(shared)
        return max(candidates) * speed_factor(max(1.0, speed), self.slope)


def fits(active: Iterable[float], new: float, *, workers: int, utilisation: float) -> bool:
    """Whether a stream of demand ``new`` may join streams of demands ``active``."""
    active = list(active)
    if not active:
        return True
    return new <= utilisation + _EPS and sum(active) + new <= workers * utilisation + _EPS


def max_streams(rtf: float | None, *, workers: int, utilisation: float, cap: int | None = None) -> int | None:
    """How many 1x streams fit (at least 1, the lone stream); None when unbounded
    (nothing measured and no cap)."""
    if rtf is None or rtf <= 0 or math.isinf(utilisation):
        return cap
    n = 1 if rtf > utilisation + _EPS else max(1, math.floor(workers * utilisation / rtf + _EPS))
    return n if cap is None else min(n, cap)


@dataclass(frozen=True)
class Plan:
    """What admission looks like now (for ``ready``, /metrics and the log)."""

    rtf: float | None       # estimated RTF at 1x
    max_streams: int | None  # 1x streams that fit (None: no bound)
    active: int
    demand: float           # sum of the active streams' demands, in workers (margin included)
    workers: int
    utilisation: float
    admission_rtf: float | None = None  # the conservative RTF admission plans with, at 1x
    margin: float = 1.0     # admission's factor over it (kokorod.daemon.headroom)
    background: int = 0     # background requests running or waiting (not counted in demand)
    late_events: int = 0    # chunks that reached an admitted stream's listener late, since start


# Chunks are sized for an engine this much slower than measured (Capacity.pace).
# 1.25 was not enough: on the reference box the warm-up measured RTF 0.529 and
# the stream's first chunks then ran at ~0.61-0.7 (the event loop's work, the
# refused clients), and the second chunk came 0.3 s late (bench/capacity.py).
PACE_MARGIN = 1.5


class Capacity:
    """Daemon-wide admission of streams: connections with an utterance queued or
    speaking. A connection synthesizes one utterance at a time (queued ones wait
    for their turn), so it holds one slot however many it has queued. Past what
    the engine can feed at 1x new work is refused up front instead of letting
    every stream underrun.

    With an ``estimator`` (the daemon's), admission is measured (``auto``): a
    stream is admitted while all of them fit the engine workers at 1x with
    headroom (kokorod.daemon.admission); ``max_active`` then only caps that. Without
    one it is a plain count bounded by ``max_active`` (None: unbounded).

    Holders are sessions: one holds its slot while ``holder.utterances`` is
    non-empty, and ``release()`` (the session's last utterance retired) frees the
    slot of every holder left with none. Each slot remembers the speed it was
    taken at, because demand depends on it. A holder that let go of its slot
    gets it back unchecked while no other stream was admitted since (a barge-in
    replaces the connection's stream, it does not add one): a live conversation
    is not refused because the estimate moved a little.
    """

    def __init__(self, max_active: int | None = None, *, estimator: RtfEstimator | None = None, workers: int = 1,
                 utilisation: float = DEFAULT_UTILISATION, headroom: Headroom | None = None) -> None:
        self.max_active = max_active
        self.estimator = estimator
        # The daemon's learns its margin over the conservative RTF; without one
        # (or with a fixed one) a stream's demand is the running RTF (x the
        # fixed margin): admission as it was before the margin was learnt.
        self.headroom = headroom if headroom is not None else Headroom(fixed=1.0)
        self.workers = max(1, workers)
        self.utilisation = utilisation
        self._held: dict[object, float] = {}  # holder -> speed
        # Background requests ("priority": "background") now: never admitted
        # or refused here (they take engine time no stream needs), only counted.
        self.background = 0
        # Released since the last admission -> its speed (weak: a closed session is forgotten).
        self._returning: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()

    @property
    def active(self) -> int:
        return len(self._held)

    def _rtf(self, speed: float = 1.0) -> float | None:
        """The RTF admission plans with: conservative while the margin learns."""
        if self.estimator is None:
            return None
        return self.estimator.rtf(speed) if self.headroom.fixed else self.estimator.admission_rtf(speed)

    def _demand(self, speed: float) -> float:
        rtf = self._rtf(speed)
        return 0.0 if rtf is None else rtf * self.headroom.margin

    def late(self, now: float) -> None:
        """An admitted stream's listener ran out of audio (the session saw it)."""
        self.headroom.late(now)

    def on_time(self, audio_s: float) -> None:
        """Audio reached an admitted stream's listener before it ran out."""
        self.headroom.on_time(audio_s, self.active)

    def try_acquire(self, holder: object | None = None, speed: float = 1.0) -> bool:
        holder = holder if holder is not None else _Anonymous()
        self._held.pop(holder, None)
        self._prune()
        if self.max_active is not None and len(self._held) >= self.max_active:
            return False
        returning = holder in self._returning and self._demand(speed) <= self._demand(self._returning[holder])
        if self.estimator is not None and self.estimator.rtf() is not None and not returning:
            active = [self._demand(s) for s in self._held.values()]
            if not fits(active, self._demand(speed), workers=self.workers, utilisation=self.utilisation):
                return False
        self._returning.clear()
        self._held[holder] = speed
        return True

    def release(self, holder: object | None = None) -> None:
        if holder is not None:
            self._held.pop(holder, None)
            return
        if not self._prune():
            anonymous = next((h for h in self._held if isinstance(h, _Anonymous)), None)
            if anonymous is not None:
                del self._held[anonymous]

    def _prune(self) -> int:
        idle = [h for h in self._held if not isinstance(h, _Anonymous) and not _holds(h)]
        for h in idle:
            self._returning[h] = self._held.pop(h)
        return len(idle)

    def pace(self, speed: float) -> float | None:
        """The real-time factor a stream at ``speed`` should plan its chunk sizes
        for (Segmenter.pace): its own, or its share of every admitted stream's
        demand when that is higher, with a margin for the estimate's noise and
        the event loop's share of the cores (the learnt margin when higher).
        None: nothing measured yet."""
        # Chunk sizes are planned on what chunks cost on average (the running
        # RTF), not on admission's conservative figure: that one is a long
        # chunk's cost under concurrency x1.4 until measured, which on a
        # machine at RTF ~0.6 put the pace over 1, where the budget gives up
        # and the first chunk is a whole sentence again (first audio 0.47x ->
        # 0.94x of the first sentence's synthesis, bench/first_audio.py). The
        # margin learnt from late streams still raises the pace when chunks
        # did come late.
        expected = self.first_pace(speed)
        return None if expected is None else expected * PACE_MARGIN

    def first_pace(self, speed: float) -> float | None:
        """The pace a stream's first chunk is expected to run at, for its latency
        budget (ChunkBudget.first_pace): ``pace`` without PACE_MARGIN, which
        guards later chunks against an underrun. A learnt margin above
        PACE_MARGIN (late streams) still raises it, in proportion. None:
        nothing measured yet."""
        estimator = self.estimator
        own = estimator.rtf(speed) if estimator is not None else None
        if own is None:
            return None
        share = sum(estimator.rtf(s) or 0.0 for s in self._held.values()) / self.workers  # type: ignore[union-attr]
        return max(1.0, self.headroom.margin / PACE_MARGIN) * max(own, share)

    def plan(self) -> Plan:
        rtf = self.estimator.rtf() if self.estimator is not None else None
        planned = self._rtf()
        margin = self.headroom.margin
        return Plan(rtf, max_streams(None if planned is None else planned * margin, workers=self.workers,
                                     utilisation=self.utilisation, cap=self.max_active),
                    self.active, sum(self._demand(s) for s in self._held.values()), self.workers, self.utilisation,
                    planned, margin, self.background, self.headroom.late_events)

    def info(self) -> CapacityInfo:
        """For ``ready``."""
        p = self.plan()
        return CapacityInfo(None if p.rtf is None else round(p.rtf, 3), p.max_streams, p.active, p.workers,
                            p.utilisation if math.isfinite(p.utilisation) else None,
                            admission_rtf=None if p.admission_rtf is None else round(p.admission_rtf, 3),
                            margin=round(p.margin, 3), background=p.background)


def _holds(holder: object) -> bool:
    """Whether a holder still needs its slot: a session says so itself
    (``holds_stream``: a live utterance queued or speaking), else by having
    any utterance at all."""
    holds = getattr(holder, "holds_stream", None)
    return bool(holds if holds is not None else getattr(holder, "utterances", True))


class _Anonymous:
    """A slot taken without naming its holder (released by a bare ``release()``)."""

    utterances = ()
