"""Shares one engine among every connection.

All model work (G2P and the acoustic model) runs on a single engine thread: on a
small CPU box one synthesis at a time using every core finishes each chunk
sooner than two fighting over the cores, which is what time-to-first-audio needs.
Which job runs next is decided at dispatch time, not at submit time: the stream
whose listener will run out of audio soonest goes first, so a long paragraph on
one connection cannot starve a fresh utterance on another.

A job that is already running cannot be reordered, so a listener waiting for
first audio could still sit behind another stream's multi-second lookahead
chunk. When that other stream has plenty buffered, we preempt: terminate its run
(ONNX stops mid-graph) and requeue it. Each job is preempted at most once, so the
cost is bounded by one wasted partial chunk.
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
# Preempt the running job only for a listener with nothing buffered, and only
# when the running job's listener has at least this much audio queued.
PREEMPT_RUNNING_AHEAD_S = 1.5


@dataclass(eq=False)
class _Job(Generic[T]):
    fn: Callable[[CancelToken], T]
    urgency: Urgency
    order: int
    token: CancelToken = field(default_factory=CancelToken)
    future: "asyncio.Future[T] | None" = None
    preempted: bool = False     # the current token fired to make room, not to cancel
    preemptions: int = 0


class EngineScheduler:
    """Runs submitted jobs one at a time on a dedicated thread, most urgent first."""

    def __init__(self, *, thread_name: str = "kokorod-engine") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._pending: list[_Job[object]] = []
        self._wakeup: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._counter = itertools.count()
        self._running: _Job[object] | None = None
        self.jobs_run = 0
        self.busy_s = 0.0
        self.preemptions = 0

    @property
    def queue_depth(self) -> int:
        return len(self._pending) + (1 if self._running is not None else 0)

    def start(self) -> None:
        if self._dispatcher is None:
            self._wakeup = asyncio.Event()
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop(), name="kokorod-dispatcher")

    async def aclose(self) -> None:
        """Stop dispatching, interrupt in-flight work and join the engine thread."""
        for job in self._pending:
            if job.future is not None and not job.future.done():
                job.future.cancel()
        self._pending.clear()
        if self._running is not None:
            self._running.token.cancel()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.wait([self._dispatcher])  # never swallows our own cancellation
            self._dispatcher = None
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    async def run_direct(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the engine thread outside the priority queue (warm-up,
        readiness probes). It still never runs concurrently with a job."""
        return await self.submit(lambda _token: fn(), urgency=lambda: float("-inf"))

    async def submit(self, fn: Callable[[CancelToken], T], *, urgency: Urgency) -> T:
        """Queue ``fn`` and wait for its result.

        If the awaiting task is cancelled, the job is dropped when still queued,
        or its CancelToken fires when it is running (for ONNX that terminates the
        run), and CancelledError propagates to the caller.
        """
        assert self._wakeup is not None, "EngineScheduler.start() was not called"
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(fn, urgency, next(self._counter))
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
        running = self._running
        # Same urgency function = same session: its own jobs are already in order.
        if running is None or running.preemptions >= 1 or running.urgency == new.urgency:
            return
        try:
            if new.urgency() > 0.0 or running.urgency() < PREEMPT_RUNNING_AHEAD_S:
                return
        except Exception:
            return
        running.preempted = True
        running.preemptions += 1
        self.preemptions += 1
        running.token.cancel()

    def _pick(self) -> _Job[object]:
        def key(job: _Job[object]) -> tuple[float, int]:
            try:
                return (job.urgency(), job.order)
            except Exception:  # a broken urgency function must not stall everyone
                log.exception("urgency function failed")
                return (float("inf"), job.order)

        job = min(self._pending, key=key)
        self._pending.remove(job)
        return job

    async def _dispatch_loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            job = self._pick()
            if job.future is None or job.future.done():
                continue
            self._running = job
            started = loop.time()
            try:
                result = await loop.run_in_executor(self._executor, _call, job)
            except SynthesisCancelled:
                if job.preempted and not job.future.done():
                    # Made room for a more urgent listener: run it again later.
                    job.preempted = False
                    job.token = CancelToken()
                    self._pending.append(job)
                elif not job.future.done():
                    job.future.cancel()
            except Exception as exc:  # delivered to the submitter, never kills the loop
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                self._running = None
                self.jobs_run += 1
                self.busy_s += loop.time() - started


def _call(job: _Job[T]) -> T:
    job.token.raise_if_cancelled()
    return job.fn(job.token)


def engine_threads() -> list[threading.Thread]:
    """Engine threads alive now (tests assert none outlive the daemon)."""
    return [t for t in threading.enumerate() if t.name.startswith("kokorod-engine")]
