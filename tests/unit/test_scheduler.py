"""EngineScheduler: urgency order, cancellation reaching queued and running jobs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kokorod.engine.base import CancelToken, SynthesisCancelled
from kokorod.scheduler import EngineScheduler, engine_threads


async def test_runs_most_urgent_first() -> None:
    sched = EngineScheduler()
    sched.start()
    gate = threading.Event()
    order: list[str] = []

    def blocker(_t: CancelToken) -> None:
        gate.wait(5)

    def job(name: str):
        def run(_t: CancelToken) -> str:
            order.append(name)
            return name
        return run

    first = asyncio.create_task(sched.submit(blocker, urgency=lambda: 0.0))
    await asyncio.sleep(0.05)  # blocker is running; the rest queue up behind it
    relaxed = asyncio.create_task(sched.submit(job("relaxed"), urgency=lambda: 5.0))
    starving = asyncio.create_task(sched.submit(job("starving"), urgency=lambda: -1.0))
    middle = asyncio.create_task(sched.submit(job("middle"), urgency=lambda: 1.0))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, relaxed, starving, middle)
    assert order == ["starving", "middle", "relaxed"]
    await sched.aclose()


async def test_cancel_reaches_running_job_and_frees_engine() -> None:
    sched = EngineScheduler()
    sched.start()
    started = threading.Event()
    observed: list[bool] = []

    def long_job(token: CancelToken) -> None:
        started.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if token.cancelled:
                observed.append(True)
                raise SynthesisCancelled()
            time.sleep(0.005)

    task = asyncio.create_task(sched.submit(long_job, urgency=lambda: 0.0))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The engine is free again quickly: the next job runs at once.
    assert await sched.submit(lambda _t: "next", urgency=lambda: 0.0) == "next"
    assert time.monotonic() - t0 < 1.0
    assert observed == [True]
    await sched.aclose()


async def test_cancelled_queued_job_never_runs() -> None:
    sched = EngineScheduler()
    sched.start()
    gate = threading.Event()
    ran: list[str] = []
    blocker = asyncio.create_task(sched.submit(lambda _t: gate.wait(5), urgency=lambda: 0.0))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(sched.submit(lambda _t: ran.append("queued"), urgency=lambda: 0.0))
    await asyncio.sleep(0.01)
    queued.cancel()
    gate.set()
    await blocker
    with pytest.raises(asyncio.CancelledError):
        await queued
    await asyncio.sleep(0.05)
    assert ran == []
    assert sched.queue_depth == 0
    await sched.aclose()


async def test_exceptions_reach_the_submitter_and_scheduler_survives() -> None:
    sched = EngineScheduler()
    sched.start()

    def boom(_t: CancelToken) -> None:
        raise RuntimeError("engine exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        await sched.submit(boom, urgency=lambda: 0.0)
    assert await sched.submit(lambda _t: 42, urgency=lambda: 0.0) == 42
    await sched.aclose()


async def test_aclose_leaves_no_engine_thread() -> None:
    sched = EngineScheduler(thread_name="kokorod-engine-test-close")
    sched.start()
    await sched.submit(lambda _t: None, urgency=lambda: 0.0)
    assert any(t.name.startswith("kokorod-engine-test-close") for t in threading.enumerate())
    await sched.aclose()
    assert not any(t.name.startswith("kokorod-engine-test-close") for t in threading.enumerate())
    assert all(not t.name.startswith("kokorod-engine-test-close") for t in engine_threads())


async def test_waiting_listener_preempts_a_well_buffered_running_job() -> None:
    sched = EngineScheduler()
    sched.start()
    runs: list[str] = []
    started = threading.Event()

    def lookahead_chunk(token: CancelToken) -> str:
        runs.append("long")
        started.set()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if token.cancelled:
                raise SynthesisCancelled()
            time.sleep(0.005)
        return "long done"

    buffered = asyncio.create_task(sched.submit(lookahead_chunk, urgency=lambda: 5.0))  # 5 s queued
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
    t0 = time.monotonic()
    first_audio = await sched.submit(lambda _t: "first", urgency=lambda: -0.1)
    assert first_audio == "first" and time.monotonic() - t0 < 0.5
    # The preempted job was requeued, not lost, and runs to completion.
    assert await buffered == "long done"
    assert runs == ["long", "long"] and sched.preemptions == 1
    await sched.aclose()


async def test_no_preemption_when_the_running_stream_is_nearly_dry() -> None:
    sched = EngineScheduler()
    sched.start()
    gate = threading.Event()
    running = asyncio.create_task(sched.submit(lambda _t: gate.wait(5) and "ok", urgency=lambda: 0.3))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(sched.submit(lambda _t: "next", urgency=lambda: -0.1))
    await asyncio.sleep(0.1)
    assert not waiting.done() and sched.preemptions == 0
    gate.set()
    assert await running == "ok" and await waiting == "next"
    await sched.aclose()
