"""Shares the engine workers among every connection.

All model work (G2P and the acoustic model) runs on engine worker threads, each
with its own engine session (``--engine-workers``; docs/operations.md has the
measured trade-off between one worker using every core and one single-thread
worker per core). Which job runs next is decided
at dispatch time, not at submit time: whenever a worker is free, the stream
whose listener will run out of audio soonest goes first, so a long paragraph on
one connection cannot starve a fresh utterance on another.

A job that is already running cannot be reordered, so a listener waiting for
first audio could still sit behind other streams' multi-second lookahead chunks.
When every worker is busy and one of them runs a job for a stream with plenty
buffered, we preempt it: terminate its run (ONNX stops mid-graph) and requeue
it. Each job is preempted at most once, so the cost is bounded by one wasted
partial chunk.

Background jobs (a ``"priority": "background"`` request: a book, a long file)
come after every live one: one is picked only when no live job is pending, and
a live job that finds every worker busy preempts a running background job
first, whatever its listener has buffered (a background job may be preempted
any number of times: its chunks are small, so each costs little, and it never
holds a live listener up). So a live stream waits for a book by at most the
time ONNX takes to stop a run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

from kokorod.engine.base import CancelToken, SynthesisCancelled

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds of audio still queued for the listener; lower = closer to running dry.
Urgency = Callable[[], float]
# Preempt a running job only for a listener with nothing buffered, and only
# when the running job's listener has at least this much audio queued.
PREEMPT_RUNNING_AHEAD_S = 1.5

_worker = threading.local()


def current_worker() -> int | None:
    """The index of the engine worker this thread is (None: not an engine thread)."""
    return getattr(_worker, "index", None)


def _mark_worker(index: int) -> None:
    _worker.index = index


@dataclass(eq=False)
class _Job(Generic[T]):
    fn: Callable[[CancelToken], T]
    urgency: Urgency
    order: int
    token: CancelToken = field(default_factory=CancelToken)
    future: "asyncio.Future[T] | None" = None
    preempted: bool = False     # the current token fired to make room, not to cancel
    preemptions: int = 0
    worker: int | None = None   # pinned to this worker (warm-up), else any
    background: bool = False    # runs only when no live job waits; preempted by any live one


class EngineScheduler:
    """Runs submitted jobs on ``workers`` dedicated threads, most urgent first."""

    def __init__(self, *, workers: int = 1, thread_name: str = "kokorod-engine") -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        # One single-thread executor per worker: a worker's thread is its own, so
        # its engine session (and whatever else is thread-confined) stays on it.
        self._executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name if i == 0 else f"{thread_name}-{i}",
                               initializer=_mark_worker, initargs=(i,))
            for i in range(workers)
        ]
        self._pending: list[_Job[object]] = []
        self._wakeup: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._counter = itertools.count()
        self._running: dict[int, _Job[object]] = {}  # worker -> its job
        self._runs: set[asyncio.Task[None]] = set()
        self.jobs_run = 0
        self.busy_s = 0.0
        self.preemptions = 0
        self.background_preemptions = 0

    @property
    def background_jobs(self) -> int:
        """Background jobs waiting or running."""
        return sum(1 for j in self._pending if j.background) + sum(1 for j in self._running.values() if j.background)

    @property
    def queue_depth(self) -> int:
        return len(self._pending) + len(self._running)

    def start(self) -> None:
        if self._dispatcher is None:
            self._wakeup = asyncio.Event()
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop(), name="kokorod-dispatcher")

    async def aclose(self) -> None:
        """Stop dispatching, interrupt in-flight work and join the engine threads."""
        for job in self._pending:
            if job.future is not None and not job.future.done():
                job.future.cancel()
        self._pending.clear()
        for job in list(self._running.values()):
            job.token.cancel()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.wait([self._dispatcher])  # never swallows our own cancellation
            self._dispatcher = None
        if self._runs:
            await asyncio.wait(list(self._runs))
        for job in self._pending:  # requeued by a preemption while we waited
            if job.future is not None and not job.future.done():
                job.future.cancel()
        self._pending.clear()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, ex.shutdown, True) for ex in self._executors))

    async def run_direct(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on an engine thread ahead of the priority queue (loading,
        readiness probes). It never runs concurrently with a job on that worker."""
        return await self.submit(lambda _token: fn(), urgency=lambda: float("-inf"))

    async def run_on_each(self, fn: Callable[[int], T], *, urgency: float = float("-inf")) -> list[T]:
        """Run ``fn(worker index)`` on every worker at once, by default ahead of
        the queue (warm-up: each worker's engine pays its first run, and is
        measured under the load of all of them together); ``urgency=inf`` puts
        it behind every listener's job instead (and makes it the first to be
        preempted)."""
        return list(await asyncio.gather(*(
            self.submit(lambda _token, i=i: fn(i), urgency=lambda: urgency, worker=i)
            for i in range(self.workers))))

    async def submit(self, fn: Callable[[CancelToken], T], *, urgency: Urgency, worker: int | None = None,
                     background: bool = False) -> T:
        """Queue ``fn`` and wait for its result (``background``: after every live job).

        If the awaiting task is cancelled, the job is dropped when still queued,
        or its CancelToken fires when it is running (for ONNX that terminates the
        run), and CancelledError propagates to the caller.
        """
        assert self._wakeup is not None, "EngineScheduler.start() was not called"
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(fn, urgency, next(self._counter), worker=worker, background=background)
        job.future = loop.create_future()
        self._pending.append(job)  # type: ignore[arg-type]
        self._wakeup.set()
        self._maybe_preempt(job)  # type: ignore[arg-type]
        try:
            return await job.future
        except asyncio.CancelledError:
            job.token.cancel()
            if job in self._pending:
                self._pending.remove(job)  # type: ignore[arg-type]
            raise

    def _maybe_preempt(self, new: _Job[object]) -> None:
        if len(self._running) < self.workers or new.worker is not None or new.background:
            return  # a worker is free (or about to be handed this job): nothing to make room for
        # Live work never waits for background work: stop one (the most recent,
        # the least done) unless it is already stopping.
        background = [j for j in self._running.values() if j.background and not j.preempted]
        if background:
            victim = max(background, key=lambda j: j.order)
            victim.preempted = True
            victim.preemptions += 1
            self.background_preemptions += 1
            victim.token.cancel()
            return
        try:
            if new.urgency() > 0.0:
                return
        except Exception:
            return
        # The running job whose listener has the most audio queued gives way.
        victim: _Job[object] | None = None
        victim_ahead = PREEMPT_RUNNING_AHEAD_S
        for running in self._running.values():
            # Same urgency function = same session: its own jobs are already in order.
            if running.preemptions >= 1 or running.preempted or running.urgency == new.urgency:
                continue
            try:
                ahead = running.urgency()
            except Exception:
                continue
            if ahead >= victim_ahead:
                victim, victim_ahead = running, ahead
        if victim is None:
            return
        victim.preempted = True
        victim.preemptions += 1
        self.preemptions += 1
        victim.token.cancel()

    def _pick(self, free: list[int]) -> tuple[_Job[object], int] | None:
        """The most urgent pending job that can run on a free worker, and the worker."""
        def key(job: _Job[object]) -> tuple[bool, float, int]:
            try:
                return (job.background, job.urgency(), job.order)
            except Exception:  # a broken urgency function must not stall everyone
                log.exception("urgency function failed")
                return (job.background, float("inf"), job.order)

        runnable = [j for j in self._pending if j.worker is None or j.worker in free]
        if not runnable:
            return None
        job = min(runnable, key=key)
        self._pending.remove(job)
        return job, job.worker if job.worker is not None else free[0]

    async def _dispatch_loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            # Clearing before looking is race-free: everything here runs on the
            # loop, so a wakeup set after the scan arrives during the wait.
            self._wakeup.clear()
            while self._pending:
                free = [i for i in range(self.workers) if i not in self._running]
                if not free:
                    break
                picked = self._pick(free)
                if picked is None:
                    break
                job, worker = picked
                if job.future is None or job.future.done():
                    continue
                self._running[worker] = job
                run = loop.create_task(self._run(job, worker), name=f"kokorod-engine-run-{worker}")
                self._runs.add(run)
                run.add_done_callback(self._runs.discard)
            # Not kept while we wait: a finished job's closure can hold a whole
            # engine (--engine auto's candidates, ~300 MB for fp32).
            job = picked = None  # type: ignore[assignment]
            await self._wakeup.wait()

    async def _run(self, job: _Job[object], worker: int) -> None:
        assert job.future is not None and self._wakeup is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result = await loop.run_in_executor(self._executors[worker], _call, job)
        except SynthesisCancelled:
            if job.preempted and not job.future.done():
                # Made room for a more urgent listener: run it again later.
                job.preempted = False
                job.token = CancelToken()
                self._pending.append(job)
            elif not job.future.done():
                job.future.cancel()
        except Exception as exc:  # delivered to the submitter, never kills the scheduler
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._running.pop(worker, None)
            self.jobs_run += 1
            self.busy_s += loop.time() - started
            self._wakeup.set()


def _call(job: _Job[T]) -> T:
    job.token.raise_if_cancelled()
    return job.fn(job.token)


def engine_threads() -> list[threading.Thread]:
    """Engine threads alive now (tests assert none outlive the daemon)."""
    return [t for t in threading.enumerate() if t.name.startswith("kokorod-engine")]
