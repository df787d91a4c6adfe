"""``--engine auto``'s first measurement, after ready, while the daemon is idle.

A daemon with no record of this machine's engine candidates starts on int8
and becomes ready at once (measuring first cost 13-20 s of start-up on a
2-core EPYC, and minutes when a candidate's graph had to be built). Then,
owned by the daemon:

1. it waits until no stream is admitted and no engine job waits or runs;
2. it loads each candidate on a thread of its own, so a graph built for the
   first time never holds an engine worker (not at a lower OS priority: the
   session's intra-op threads, created there, inherit it: on a loaded
   machine int8 then measured 1.26-1.47 CPU s per audio s, and took 98-121 s
   to measure, against 0.50-0.62 measured before ready, and 0.68 in 38 s
   without it: bench/engine_start.py);
3. it runs the measuring sentences through each candidate (the gate's
   inputs) and times them in interleaved rounds, each run a *background*
   scheduler job: it runs only when no listener's job waits, and any
   listener's job preempts it at once (ONNX stops mid-graph);
4. a round counts only if nothing else ran on the engine and no stream was
   admitted while it ran (CPU time is the process's: anyone else's work would
   be charged to the candidate); a disturbed round is run again, and after
   ``MAX_DISTURBED`` of them the measurement gives up, keeping int8, and the
   next start tries again (no record is written);
5. the figures are recorded (later starts read them) and the choice applied:
   if it is not int8, every worker's engine is swapped between two of its
   jobs, the chunk cache is re-keyed, and ``ready``, ``/metrics`` and the log
   report the new engine.

Nothing here runs on the event loop but bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from typing import Any, Awaitable, Callable, TypeVar

from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.workers import WorkerSynthesizers
from kokorod.engine.base import Engine, EngineOutput
from kokorod.engine.choice import REFERENCE, Choice
from kokorod.engine.measure import (ROUNDS, figures, first_outputs, load_candidate, long_input, measuring_inputs,
                                    resident_bytes, timed_run)
from kokorod.engine.selection import PendingMeasure
from kokorod.heap import release_free_heap

log = logging.getLogger("kokorod.engine")
T = TypeVar("T")

IDLE_S = 2.0          # seconds without streams or engine jobs before a step starts
POLL_S = 0.25
MAX_DISTURBED = 20    # disturbed rounds before giving up until the next start


class Tuner:
    """Measures ``pending``'s candidates when idle and applies the choice.
    ``idle()`` says whether the daemon has no stream admitted; ``apply(choice,
    engines)`` is called on the loop with the choice and, when it is not int8,
    one loaded engine per worker (the daemon swaps them in, ``swap_engines``)."""

    def __init__(self, pending: PendingMeasure, scheduler: EngineScheduler, workers: WorkerSynthesizers,
                 idle: Callable[[], bool], apply: Callable[[Choice, list[Engine]], Awaitable[None]], *,
                 idle_s: float = IDLE_S, rounds: int = ROUNDS, rss: Callable[[], int] = resident_bytes,
                 clock: Callable[[], float] = time.process_time) -> None:
        self.pending = pending
        self.scheduler = scheduler
        self.workers = workers
        self._idle = idle
        self._apply = apply
        self.idle_s = idle_s
        self.rounds = rounds
        self.rss = rss
        self.clock = clock
        self.disturbed = 0
        self.phase = "waiting"  # loading, gating, timing, switching, done: for logs and tests

    def quiet(self) -> bool:
        return self._idle() and self.scheduler.queue_depth == 0

    async def wait_idle(self) -> None:
        quiet_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if not self.quiet():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= self.idle_s:
                return
            await asyncio.sleep(POLL_S)

    async def run(self) -> Choice | None:
        """The choice applied, or None when the daemon was never idle enough."""
        names = self.pending.names
        engines: dict[str, Engine] = {}
        first: dict[str, list[EngineOutput]] = {}
        growth: dict[str, int] = {}
        inputs: list[Any] = []
        for name in names:
            await self.wait_idle()
            try:
                # Straight into the dicts: a local naming the last candidate
                # kept it (+305 MB for fp32) alive past the trim below, and
                # the daemon idled at 663 MB instead of ~330 after measuring.
                engines[name], first[name], growth[name], inputs = await self._prepare(name, inputs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if name == REFERENCE:
                    raise
                log.warning("engine candidate %s left out: %s: %s", name, type(exc).__name__, exc)
                continue
        per_round: dict[str, list[float]] = {name: [] for name in engines}
        self.phase = "timing"
        while len(per_round[REFERENCE]) < self.rounds:
            if self.disturbed >= MAX_DISTURBED:
                log.warning("engine measurement given up: %d rounds disturbed by listeners' work; int8 stays "
                            "until the next start measures again", self.disturbed)
                engines.clear()
                await asyncio.to_thread(release_free_heap)
                self.phase = "done"
                await self._apply(Choice(REFERENCE, "default", f"measurement given up: {self.disturbed} rounds "
                                         "disturbed by listeners' work (the next start measures again)"), [])
                return None
            await self.wait_idle()
            figures_now = await self.round(engines, inputs)
            if figures_now is None:
                self.disturbed += 1
                continue
            for name, value in figures_now.items():
                per_round[name].append(value)
        choice = await asyncio.to_thread(self.pending.finish, figures(first, per_round, growth))
        chosen: list[Engine] = []
        self.phase = "switching"
        if choice.name != REFERENCE:
            chosen.append(engines.pop(choice.name))
            for _ in range(self.workers_count - 1):
                await self.wait_idle()
                chosen.append(await in_own_thread(lambda: self.pending.build(choice.name)))
        engines.clear()  # the candidates not chosen go, with their memory
        await asyncio.to_thread(release_free_heap)
        await self._apply(choice, chosen)
        del chosen
        if choice.name != REFERENCE:  # the int8 engines swapped out go too
            await asyncio.to_thread(release_free_heap)
        self.phase = "done"
        return choice

    async def _prepare(self, name: str, inputs: list[Any]) -> tuple[Engine, list[EngineOutput], int, list[Any]]:
        """Load candidate ``name`` and run it on the measuring inputs (made from
        the first candidate when ``inputs`` is empty) and on the long input:
        (engine, its first outputs, its resident growth, the inputs)."""
        self.phase = "loading"
        engine, before = await in_own_thread(lambda: load_candidate(name, self.pending.build, self.rss))
        inputs = inputs or measuring_inputs(engine, self.pending.style_for)
        self.phase = "gating"
        outputs = await self.background(lambda token: first_outputs(engine, inputs, token))
        long = long_input(engine, self.pending.style_for)
        await self.background(lambda token: engine.run(*long, 1.0, token))
        return engine, outputs, max(0, self.rss() - before), inputs

    @property
    def workers_count(self) -> int:
        return len(self.workers.synths)

    async def round(self, engines: dict[str, Engine], inputs: list[Any]) -> dict[str, float] | None:
        """One timed run of each candidate, or None if anything else used the
        engine or a stream was admitted meanwhile."""
        out: dict[str, float] = {}
        for name, engine in engines.items():
            runs_before = self.scheduler.jobs_run
            value = await self.background(lambda token, e=engine: timed_run(e, inputs, clock=self.clock, cancel=token))
            # Our own job is the one run; nothing else may have run, be running, or be admitted.
            if self.scheduler.jobs_run != runs_before + 1 or not self.quiet() or not math.isfinite(value):
                return None
            out[name] = value
        return out

    async def background(self, fn: Callable[[Any], T]) -> T:
        return await self.scheduler.submit(fn, urgency=lambda: math.inf, background=True)


async def in_own_thread(fn: Callable[[], T]) -> T:
    """``fn()`` on a thread of its own. A daemon thread: a graph build cannot
    be interrupted, and must not hold up a shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def body() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:  # delivered to the awaiting task
            error = exc
        # The loop may have closed while a load ran (the daemon shut down):
        # then the result has no one to go to.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=body, name="kokorod-measure-load", daemon=True).start()
    return await future


def swap_engines(workers: WorkerSynthesizers, engines: list[Engine]) -> None:
    """Give worker synthesizer i ``engines[i]``, each between two of its runs
    (its lease waits for the run in progress). Blocking: call it off the loop."""
    for index, engine in enumerate(engines):
        with workers.lease(index) as synth:
            synth.engine = engine
