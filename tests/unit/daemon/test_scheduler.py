"""EngineScheduler: urgency order, cancellation reaching queued and running jobs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kokorod.engine.base import CancelToken, SynthesisCancelled
from kokorod.daemon.scheduler import EngineScheduler, engine_threads


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


# -- several engine workers --------------------------------------------------------

async def test_workers_run_jobs_side_by_side_on_their_own_threads() -> None:
    from kokorod.daemon.scheduler import current_worker

    sched = EngineScheduler(workers=3, thread_name="kokorod-engine-test-side")
    sched.start()
    barrier = threading.Barrier(3, timeout=5)  # only passes if all three run at once

    def job(_t: CancelToken) -> tuple[int | None, str]:
        barrier.wait()
        return current_worker(), threading.current_thread().name

    results = await asyncio.gather(*(sched.submit(job, urgency=lambda: 0.0) for _ in range(3)))
    assert sorted(r[0] for r in results) == [0, 1, 2]
    assert len({r[1] for r in results}) == 3
    assert len([t for t in engine_threads() if t.name.startswith("kokorod-engine-test-side")]) == 3
    assert current_worker() is None  # the loop's thread is no engine worker
    await sched.aclose()
    assert not any(t.name.startswith("kokorod-engine-test-side") for t in threading.enumerate())


async def test_most_urgent_first_across_workers() -> None:
    sched = EngineScheduler(workers=2)
    sched.start()
    gates = [threading.Event(), threading.Event()]
    order: list[str] = []

    def blocker(i: int):
        def run(_t: CancelToken) -> None:
            gates[i].wait(5)
        return run

    def job(name: str):
        def run(_t: CancelToken) -> str:
            order.append(name)
            return name
        return run

    blockers = [asyncio.create_task(sched.submit(blocker(i), urgency=lambda: 0.0)) for i in range(2)]
    await asyncio.sleep(0.05)  # both workers busy; the rest queue up
    urgencies = {"relaxed": 5.0, "starving": -1.0, "middle": 1.0, "late": 9.0}
    tasks = [asyncio.create_task(sched.submit(job(n), urgency=lambda u=u: u)) for n, u in urgencies.items()]
    await asyncio.sleep(0.05)
    assert order == [] and sched.queue_depth == 6
    gates[0].set()  # one worker frees up: it takes the most urgent, one by one
    await asyncio.gather(*tasks)
    assert order == ["starving", "middle", "relaxed", "late"]
    gates[1].set()
    await asyncio.gather(*blockers)
    await sched.aclose()


async def test_no_job_runs_twice_across_workers() -> None:
    sched = EngineScheduler(workers=3)
    sched.start()
    runs: list[int] = []
    lock = threading.Lock()

    def job(n: int):
        def run(_t: CancelToken) -> int:
            time.sleep(0.002 * (n % 3))
            with lock:
                runs.append(n)
            return n * n
        return run

    results = await asyncio.gather(*(sched.submit(job(n), urgency=lambda n=n: float(n % 7)) for n in range(60)))
    assert results == [n * n for n in range(60)]
    assert sorted(runs) == list(range(60))  # each exactly once
    assert sched.jobs_run == 60 and sched.queue_depth == 0
    await sched.aclose()


async def test_cancellation_reaches_every_worker() -> None:
    sched = EngineScheduler(workers=3)
    sched.start()
    started = threading.Semaphore(0)
    observed: list[str] = []
    lock = threading.Lock()

    def long_job(token: CancelToken) -> None:
        started.release()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if token.cancelled:
                with lock:
                    observed.append(threading.current_thread().name)
                raise SynthesisCancelled()
            time.sleep(0.005)

    tasks = [asyncio.create_task(sched.submit(long_job, urgency=lambda: 0.0)) for _ in range(3)]
    loop = asyncio.get_running_loop()
    for _ in range(3):
        assert await loop.run_in_executor(None, started.acquire, True, 2)
    t0 = time.monotonic()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task
    # Every worker saw its cancellation and is free again: three jobs that can
    # only finish together (a barrier) get all three workers.
    barrier = threading.Barrier(3, timeout=10)
    nexts = await asyncio.gather(*(sched.submit(lambda _t: barrier.wait() >= 0, urgency=lambda: 0.0) for _ in range(3)))
    assert nexts == [True] * 3
    assert time.monotonic() - t0 < 4.0  # not the 5 s the jobs would have taken
    assert len(set(observed)) == 3
    await sched.aclose()


async def test_aclose_interrupts_every_worker() -> None:
    sched = EngineScheduler(workers=2, thread_name="kokorod-engine-test-close2")
    sched.start()

    def long_job(token: CancelToken) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            token.raise_if_cancelled()
            time.sleep(0.005)

    tasks = [asyncio.create_task(sched.submit(long_job, urgency=lambda: 0.0)) for _ in range(4)]
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await sched.aclose()
    assert time.monotonic() - t0 < 4.0  # interrupted, not the 5 s the jobs would take
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert not any(t.name.startswith("kokorod-engine-test-close2") for t in threading.enumerate())


async def test_preemption_with_all_workers_busy_takes_the_best_buffered() -> None:
    sched = EngineScheduler(workers=2)
    sched.start()
    runs: list[str] = []
    started = threading.Semaphore(0)

    def lookahead(name: str):
        def run(token: CancelToken) -> str:
            runs.append(name)
            started.release()
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                if token.cancelled:
                    raise SynthesisCancelled()
                time.sleep(0.005)
            return name
        return run

    some = asyncio.create_task(sched.submit(lookahead("some"), urgency=lambda: 2.0))
    lots = asyncio.create_task(sched.submit(lookahead("lots"), urgency=lambda: 6.0))
    loop = asyncio.get_running_loop()
    for _ in range(2):
        assert await loop.run_in_executor(None, started.acquire, True, 2)
    assert await sched.submit(lambda _t: "first", urgency=lambda: -0.1) == "first"
    assert not some.done()  # it got a worker without waiting for one to finish
    assert await some == "some" and await lots == "lots"
    # Only the stream with the most audio queued gave way, and it ran again.
    assert runs.count("lots") == 2 and runs.count("some") == 1 and sched.preemptions == 1
    await sched.aclose()


async def test_no_preemption_while_a_worker_is_free() -> None:
    sched = EngineScheduler(workers=2)
    sched.start()
    gate = threading.Event()
    buffered = asyncio.create_task(sched.submit(lambda _t: gate.wait(5) and "ok", urgency=lambda: 6.0))
    await asyncio.sleep(0.05)
    assert await sched.submit(lambda _t: "first", urgency=lambda: -0.1) == "first"
    assert sched.preemptions == 0
    gate.set()
    assert await buffered == "ok"
    await sched.aclose()


async def test_run_on_each_reaches_every_worker() -> None:
    from kokorod.daemon.scheduler import current_worker

    sched = EngineScheduler(workers=3)
    sched.start()
    seen = await sched.run_on_each(lambda i: (i, current_worker()))
    assert seen == [(0, 0), (1, 1), (2, 2)]
    await sched.aclose()


# -- background priority -------------------------------------------------------------

def _interruptible(runs: list[str], name: str, started: threading.Event, seconds: float = 2.0):
    def run(token: CancelToken) -> str:
        runs.append(name)
        started.set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if token.cancelled:
                raise SynthesisCancelled()
            time.sleep(0.005)
        return name
    return run


async def test_background_jobs_wait_for_every_live_job() -> None:
    """Whatever their urgency, background jobs run only when no live job is pending."""
    sched = EngineScheduler()
    sched.start()
    gate = threading.Event()
    order: list[str] = []

    def job(name: str):
        def run(_t: CancelToken) -> str:
            order.append(name)
            return name
        return run

    blocker = asyncio.create_task(sched.submit(lambda _t: gate.wait(5), urgency=lambda: 0.0))
    await asyncio.sleep(0.05)
    book = asyncio.create_task(sched.submit(job("book"), urgency=lambda: -100.0, background=True))
    relaxed = asyncio.create_task(sched.submit(job("relaxed live"), urgency=lambda: 50.0))
    book2 = asyncio.create_task(sched.submit(job("book 2"), urgency=lambda: -50.0, background=True))
    urgent = asyncio.create_task(sched.submit(job("urgent live"), urgency=lambda: -1.0))
    await asyncio.sleep(0.05)
    assert sched.background_jobs == 2
    gate.set()
    await asyncio.gather(blocker, book, relaxed, book2, urgent)
    # Live by urgency first, then background by its own urgency.
    assert order == ["urgent live", "relaxed live", "book", "book 2"]
    assert sched.background_jobs == 0
    await sched.aclose()


async def test_any_live_job_preempts_a_running_background_job_every_time() -> None:
    sched = EngineScheduler()
    sched.start()
    runs: list[str] = []
    started = threading.Event()
    book = asyncio.create_task(sched.submit(_interruptible(runs, "book", started, 1.0), urgency=lambda: 0.0,
                                            background=True))
    for i in range(2):  # even a well-buffered listener (8 s queued) does not wait; and again
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
        started.clear()
        t0 = time.monotonic()
        assert await sched.submit(lambda _t, i=i: f"live {i}", urgency=lambda: 8.0) == f"live {i}"
        assert time.monotonic() - t0 < 0.5
    # The background job was requeued each time, and completes once live work is done.
    assert await book == "book"
    assert runs == ["book", "book", "book"]
    assert sched.background_preemptions == 2 and sched.preemptions == 0
    await sched.aclose()


async def test_a_background_job_never_preempts() -> None:
    sched = EngineScheduler()
    sched.start()
    runs: list[str] = []
    started = threading.Event()
    live = asyncio.create_task(sched.submit(_interruptible(runs, "live", started, 0.3), urgency=lambda: 5.0))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
    book = asyncio.create_task(sched.submit(lambda _t: "book", urgency=lambda: -5.0, background=True))
    assert await live == "live" and await book == "book"
    assert runs == ["live"] and sched.preemptions == 0 and sched.background_preemptions == 0
    await sched.aclose()


async def test_background_job_cancelled_by_its_owner_while_preempted_never_runs_again() -> None:
    sched = EngineScheduler()
    sched.start()
    runs: list[str] = []
    started = threading.Event()
    gate = threading.Event()
    book = asyncio.create_task(sched.submit(_interruptible(runs, "book", started, 5.0), urgency=lambda: 0.0,
                                            background=True))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
    live = asyncio.create_task(sched.submit(lambda _t: gate.wait(5) and "live", urgency=lambda: 1.0))
    await asyncio.sleep(0.1)  # the book was preempted and waits behind the live job
    book.cancel()
    gate.set()
    assert await live == "live"
    with pytest.raises(asyncio.CancelledError):
        await book
    await asyncio.sleep(0.05)
    assert runs == ["book"] and sched.background_jobs == 0
    await sched.aclose()
