"""Warm-up: prove synthesis works, and measure the engine's speed without making
start-up wait for all of it.

On the readiness path, only what admission cannot do without:

1. the default voice's G2P is built (misaki's lexicon, spaCy: seconds, and
   paid once however many workers there are), untimed;
2. every worker at once synthesizes PROBE_TEXT at 1x, timed: that pays each
   engine's first run, proves synthesis works, and seeds the RTF estimate with
   what the workers do *together*. Until the speed slope is known it is taken
   as 1 (demand grows with speed as fast as it can), so a fast stream admitted
   early is never under-counted.

After ``ready``, ``measure_slope`` runs the same text at 2x on every worker as
the least urgent job there is (a listener's chunk preempts it), and sets the
slope from the two figures. From then on real jobs refine the estimate.

PROBE_TEXT is a typical first chunk: a short sentence of ~2.5 s of audio. One
run of it costs about what the old "Ready." plus two measuring sentences cost
in a third of the time; on the machines we measured its RTF matched a
4-second sentence's within the run-to-run noise (bench/footprint.py prints the
daemon's figures).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from kokorod.daemon.admission import RtfEstimator, slope_from
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.text.languages import for_voice
from kokorod.daemon.workers import WorkerSynthesizers
from kokorod.heap import release_free_heap  # noqa: F401  (also the daemon's, from here)

log = logging.getLogger("kokorod.daemon.server")
PROBE_TEXT = "Members can borrow up to ten books."


@dataclass(frozen=True)
class Probe:
    """What the readiness-path run measured, all workers together."""

    engine_s: float
    audio_s: float
    warmup_s: float  # wall time of the whole warm-up, G2P included

    @property
    def rtf(self) -> float:
        return self.engine_s / self.audio_s if self.audio_s > 0 else math.nan


def _timed(workers: WorkerSynthesizers, index: int, voice: str, speed: float) -> tuple[float, float]:
    with workers.lease(index) as synth:  # this worker's own engine: each pays its first run
        started = time.perf_counter()
        chunk = synth.synthesize(PROBE_TEXT, voice=voice, speed=speed)
        return time.perf_counter() - started, chunk.samples / chunk.sample_rate


async def warm_up(scheduler: EngineScheduler, workers: WorkerSynthesizers, estimator: RtfEstimator,
                  voice: str) -> Probe:
    """The readiness path: G2P, then one timed 1x run per worker; seeds ``estimator``."""
    started = time.perf_counter()
    lang = for_voice(voice)
    await scheduler.run_direct(lambda: workers.g2p.phonemize(PROBE_TEXT, lang))
    runs = await scheduler.run_on_each(lambda i: _timed(workers, i, voice, 1.0))
    engine_s, audio_s = sum(r[0] for r in runs), sum(r[1] for r in runs)
    estimator.seed(engine_s, audio_s, slope=1.0)
    release_free_heap()
    return Probe(engine_s, audio_s, time.perf_counter() - started)


async def measure_slope(scheduler: EngineScheduler, workers: WorkerSynthesizers, estimator: RtfEstimator,
                        voice: str, probe: Probe) -> float:
    """After ready, at the lowest priority: PROBE_TEXT at 2x; sets the speed slope.

    Cancellable (the daemon owns and cancels this task at shutdown); a failure
    leaves the conservative slope of 1 in place."""
    try:
        runs = await scheduler.run_on_each(lambda i: _timed(workers, i, voice, 2.0), urgency=math.inf)
    except Exception:  # never fatal: admission stays conservative
        log.exception("speed measurement at 2x failed; keeping the conservative speed model")
        return estimator.slope
    engine_s, audio_s = sum(r[0] for r in runs), sum(r[1] for r in runs)
    rtf_2x = engine_s / audio_s if audio_s > 0 else math.nan
    estimator.slope = slope_from(probe.rtf, rtf_2x)
    log.info("speed measured: RTF %.3f at 2x against %.3f at 1x, speed slope %.2f", rtf_2x, probe.rtf,
             estimator.slope, extra={"event": "speed_measured",
                                     "fields": {"rtf_2x": round(rtf_2x, 3), "speed_slope": round(estimator.slope, 3)}})
    return estimator.slope
