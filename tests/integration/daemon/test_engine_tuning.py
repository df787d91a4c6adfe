"""--engine auto's measurement after ready (kokorod.daemon.engine_tuning), with
fake engines on a real EngineScheduler: it waits for idle, never holds a
listener's job up, discards disturbed rounds, records the figures, and swaps
every worker's engine only when a candidate wins."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kokorod.daemon.engine_tuning import Tuner, swap_engines
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.workers import WorkerSynthesizers
from kokorod.engine.base import SAMPLES_PER_FRAME, CancelToken, EngineOutput, SynthesisCancelled
from kokorod.engine.choice import REFERENCE, Choice
from kokorod.engine.selection import PendingMeasure

MB = 2**20


class FakeEngine:
    """Sleeps for its runs (a fake CPU clock counts them); a cancel stops it."""

    vocab = {ch: i + 1 for i, ch in enumerate("abcdefghijklmnopqrstuvwxyzɑɛɪʊʌəæðʃʧˈˌ ,.ɹIOᵻᵊ")}

    def __init__(self, name: str, cost_s: float) -> None:
        self.name = name
        self.cost_s = cost_s
        self.runs = 0

    def run(self, ids: list[int], style: np.ndarray, speed: float, cancel: CancelToken | None = None) -> EngineOutput:
        deadline = time.monotonic() + self.cost_s
        while time.monotonic() < deadline:
            if cancel is not None and cancel.cancelled:
                raise SynthesisCancelled()
            time.sleep(0.002)
        self.runs += 1
        durations = np.full(len(ids), 2, dtype=np.int64)
        n = int(durations.sum()) * SAMPLES_PER_FRAME
        return EngineOutput((0.3 * np.sin(2 * np.pi * 200 * np.arange(n) / 24000)).astype(np.float32), durations)


class Synth:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.voices = self.g2p = None


def pending(tmp_path: Path, costs: dict[str, float], built: list[str]) -> PendingMeasure:
    def build(name: str) -> FakeEngine:
        built.append(name)
        return FakeEngine(name, costs[name])

    return PendingMeasure(tmp_path, {"test": "key"}, tuple(costs), build, lambda n: np.zeros((1, 256), np.float32))


async def tune(tmp_path: Path, costs: dict[str, float], *, workers: int = 1, idle: Any = None,
               during: Any = None, tuners: list[Tuner] | None = None) -> tuple[Choice | None, list[Any], WorkerSynthesizers, list[str], Tuner]:
    sched = EngineScheduler(workers=workers)
    sched.start()
    pool = WorkerSynthesizers([Synth(FakeEngine(REFERENCE, costs[REFERENCE])) for _ in range(workers)])
    applied: list[Any] = []
    built: list[str] = []

    async def apply(choice: Choice, engines: list[Any]) -> None:
        applied.append((choice, engines))
        await asyncio.to_thread(swap_engines, pool, engines)

    # The fakes sleep: time them by the wall clock, not CPU.
    tuner = Tuner(pending(tmp_path, costs, built), sched, pool, idle or (lambda: True), apply, idle_s=0.05,
                  clock=time.monotonic)
    if tuners is not None:
        tuners.append(tuner)
    try:
        task = asyncio.create_task(tuner.run())
        if during is not None:
            await during(sched, task)
        choice = await asyncio.wait_for(task, 30)
    finally:
        await sched.aclose()
    return choice, applied, pool, built, tuner


async def test_a_faster_candidate_is_measured_recorded_and_swapped_into_every_worker(tmp_path: Path) -> None:
    choice, applied, pool, built, _ = await tune(tmp_path, {REFERENCE: 0.03, "fast": 0.01}, workers=2)
    assert choice is not None and (choice.name, choice.source) == ("fast", "measured")
    assert [type(e).__name__ for e in applied[0][1]] == ["FakeEngine", "FakeEngine"]
    assert [s.engine.name for s in pool.synths] == ["fast", "fast"]
    assert built == [REFERENCE, "fast", "fast"]  # one more of the winner for the second worker
    record = json.loads(next((tmp_path / "onnx").glob("engine-choice-*.json")).read_text())
    assert {c["name"] for c in record["candidates"]} == {REFERENCE, "fast"}


async def test_int8_stays_when_no_candidate_is_faster_and_nothing_is_swapped(tmp_path: Path) -> None:
    choice, applied, pool, built, _ = await tune(tmp_path, {REFERENCE: 0.01, "slow": 0.02})
    assert choice is not None and choice.name == REFERENCE and choice.source == "measured"
    assert applied == [(choice, [])] and pool.synths[0].engine.name == REFERENCE
    assert built == [REFERENCE, "slow"]


async def test_nothing_is_measured_while_a_stream_is_admitted(tmp_path: Path) -> None:
    streams = {"active": 1}
    built_at: list[float] = []

    async def during(sched: EngineScheduler, task: asyncio.Task[Any]) -> None:
        await asyncio.sleep(0.5)
        assert not task.done()
        built_at.append(time.monotonic())
        streams["active"] = 0

    choice, _, _, built, _ = await tune(tmp_path, {REFERENCE: 0.01, "x": 0.02},
                                        idle=lambda: streams["active"] == 0, during=during)
    assert choice is not None and built  # measured once the stream ended


async def test_a_listeners_job_preempts_the_measurement_and_its_round_is_run_again(tmp_path: Path) -> None:
    waited: list[float] = []

    async def during(sched: EngineScheduler, task: asyncio.Task[Any]) -> None:
        # Wait until a timed run is on the engine, then arrive as a listener.
        for _ in range(2000):
            if tuners[0].phase == "timing" and sched.background_jobs and sched._running:
                break
            await asyncio.sleep(0.005)
        started = time.monotonic()
        await sched.submit(lambda token: time.sleep(0.01), urgency=lambda: 0.0)
        waited.append(time.monotonic() - started)

    tuners: list[Tuner] = []
    choice, _, _, _, tuner = await tune(tmp_path, {REFERENCE: 0.3, "x": 0.3}, during=during, tuners=tuners)
    assert choice is not None
    assert waited and waited[0] < 0.25  # did not wait for the 0.3 s measuring run
    assert tuner.disturbed >= 1


async def test_it_gives_up_when_never_left_alone_and_writes_no_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kokorod.daemon import engine_tuning

    monkeypatch.setattr(engine_tuning, "MAX_DISTURBED", 2)
    # A stream is admitted during every engine run, and gone by the next look.
    admitted = {"during_run": False}
    original = FakeEngine.run

    def run(self: FakeEngine, *args: Any, **kwargs: Any) -> EngineOutput:
        admitted["during_run"] = True
        return original(self, *args, **kwargs)

    def idle() -> bool:
        was, admitted["during_run"] = admitted["during_run"], False
        return not was

    monkeypatch.setattr(FakeEngine, "run", run)
    choice, applied, pool, _, tuner = await tune(tmp_path, {REFERENCE: 0.01, "x": 0.005}, idle=idle)
    assert choice is None and tuner.disturbed == 2
    [(said, engines)] = applied  # reported: int8, and why
    assert (said.name, said.source, engines) == (REFERENCE, "default", []) and "given up" in said.reason
    assert pool.synths[0].engine.name == REFERENCE
    assert not list(tmp_path.glob("onnx/engine-choice-*.json"))


@pytest.mark.parametrize("costs, kept", [({REFERENCE: 0.01, "slow": 0.02}, []),
                                         ({REFERENCE: 0.03, "fast": 0.01}, ["fast", "fast"])])
async def test_engines_not_kept_are_gone_when_the_heap_is_trimmed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  costs: dict[str, float], kept: list[str]) -> None:
    """The heap is handed back to the OS only once the candidates not chosen
    (and, after a switch, the int8 engines swapped out) are unreachable: a
    candidate still referenced then stays resident for the daemon's life."""
    import gc
    import weakref

    from kokorod.daemon import engine_tuning

    made: list[weakref.ref[FakeEngine]] = []
    original_init = FakeEngine.__init__

    def init(self: FakeEngine, name: str, cost_s: float) -> None:
        original_init(self, name, cost_s)
        made.append(weakref.ref(self))

    alive_at_trims: list[list[str]] = []

    def trim() -> None:
        gc.collect()
        alive_at_trims.append(sorted(e.name for ref in made if (e := ref()) is not None))

    monkeypatch.setattr(FakeEngine, "__init__", init)
    monkeypatch.setattr(engine_tuning, "release_free_heap", trim)
    choice, _, pool, _, _ = await tune(tmp_path, costs, workers=2)
    assert choice is not None and [s.engine.name for s in pool.synths] == (kept or [REFERENCE, REFERENCE])
    # The last trim sees only the engines that serve from now on.
    assert alive_at_trims and alive_at_trims[-1] == sorted(kept or [REFERENCE, REFERENCE])
