"""Measured admission: the RTF estimator, the admission arithmetic, Capacity's
bookkeeping, the ``ready.capacity`` wire form and the flags. All pure: no engine."""

from __future__ import annotations

import argparse
import math
import threading
import time

import numpy as np
import pytest

from kokorod.daemon.admission import (
    MAX_STEP, RtfEstimator, fits, max_streams, slope_from, speed_factor,
)
from kokorod.cli.serve import add_server_args, limits_from_args
from kokorod.config import ServerConfig
from kokorod.engine.base import SynthesisCancelled
from kokorod.protocol.codec import JsonCodec, MsgpackCodec
from kokorod.protocol.messages import CapacityInfo, Limits, Ready
from kokorod.daemon.admission import Capacity
from kokorod.speech.chunk import SpeechChunk
from kokorod.daemon.workers import WorkerSynthesizers


# -- the estimator --------------------------------------------------------------

def test_empty_estimator_knows_nothing() -> None:
    est = RtfEstimator()
    assert est.rtf() is None and est.rtf(2.0) is None


def test_seed_is_the_first_estimate() -> None:
    est = RtfEstimator()
    est.seed(1.5, 3.0)
    assert est.rtf() == pytest.approx(0.5)


def test_observations_weigh_by_their_audio() -> None:
    est = RtfEstimator(half_life_audio_s=1e9)  # no decay: a plain audio-weighted mean
    est.observe(1.0, 10.0)   # rtf 0.1 over 10 s of audio
    est.observe(0.3, 1.0)    # rtf 0.3 over 1 s: clamped to 2x the estimate (0.2)
    assert est.rtf() == pytest.approx((0.1 * 10 + 0.2 * 1) / 11)


def test_old_observations_fade() -> None:
    est = RtfEstimator(half_life_audio_s=10.0)
    est.seed(5.0, 10.0)  # 0.5
    for _ in range(40):  # 120 s of audio at rtf 0.25: twelve half-lives
        est.observe(0.75, 3.0)
    assert est.rtf() == pytest.approx(0.25, rel=0.01)


def test_one_outlier_moves_the_estimate_at_most_by_the_step() -> None:
    est = RtfEstimator(half_life_audio_s=30.0)
    est.seed(4.0, 10.0)  # 0.4
    est.observe(60.0, 3.0)  # a 20 s stall (a G2P built on first use) for 3 s of audio
    assert 0.4 < est.rtf() <= 0.4 * MAX_STEP
    # ... but a real change of load wins within a few chunks.
    for _ in range(20):
        est.observe(3.0, 3.0)
    assert est.rtf() == pytest.approx(1.0, rel=0.15)


def test_runs_without_audio_or_time_are_ignored() -> None:
    est = RtfEstimator()
    est.seed(1.0, 2.0)
    for engine_s, audio_s in ((0.5, 0.0), (0.0, 3.0), (0.2, 0.01), (math.nan, 1.0), (1.0, math.inf)):
        est.observe(engine_s, audio_s)
    assert est.rtf() == pytest.approx(0.5) and est.observations == 0


def test_speed_model() -> None:
    assert speed_factor(1.0, 0.3) == 1.0
    assert speed_factor(2.0, 0.0) == 1.0          # all cost per audio second
    assert speed_factor(2.0, 1.0) == 2.0          # all cost per phoneme: speed x RTF
    assert speed_factor(2.0, 0.25) == pytest.approx(1.25)
    assert speed_factor(2.0, 7.0) == 2.0          # slope clamped to [0, 1]
    assert slope_from(0.4, 0.5) == pytest.approx(0.25)
    assert slope_from(0.4, 0.3) == 0.0            # noise below the 1x figure: no slope
    assert slope_from(0.0, 0.3) == 0.0 and slope_from(0.4, math.nan) == 0.0


def test_observations_are_normalised_to_1x_and_demand_follows_speed() -> None:
    est = RtfEstimator(half_life_audio_s=1e9, slope=0.5)
    est.seed(3.0, 10.0)  # 0.3 at 1x
    est.observe(0.45 * 4, 4.0, speed=2.0)  # 0.45 at 2x = 0.3 x 1.5: the same engine speed
    assert est.rtf() == pytest.approx(0.3)
    assert est.rtf(2.0) == pytest.approx(0.45)
    assert est.rtf(1.5) == pytest.approx(0.375)
    assert est.rtf(0.5) == pytest.approx(0.3)  # slow speech counts as 1x, never less


def test_estimator_is_thread_safe() -> None:
    est = RtfEstimator(half_life_audio_s=1e9)
    est.seed(1.0, 2.0)

    def feed() -> None:
        for _ in range(2000):
            est.observe(0.5, 1.0)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert est.observations == 8000 and est.rtf() == pytest.approx(0.5)


# -- the arithmetic ---------------------------------------------------------------

def test_fits() -> None:
    assert fits([], 5.0, workers=1, utilisation=0.8)               # a lone stream is always served
    assert fits([0.3], 0.3, workers=1, utilisation=0.8)
    assert not fits([0.3, 0.3], 0.3, workers=1, utilisation=0.8)   # 0.9 > 0.8
    assert fits([0.4, 0.4], 0.4, workers=2, utilisation=0.8)       # 1.2 <= 1.6
    assert not fits([0.4], 0.9, workers=2, utilisation=0.8)        # one stream cannot use two workers
    assert fits([0.2, 0.2, 0.2], 0.2, workers=1, utilisation=0.8)  # exactly at the bound


def test_max_streams() -> None:
    assert max_streams(None, workers=1, utilisation=0.8) is None
    assert max_streams(None, workers=1, utilisation=0.8, cap=3) == 3
    assert max_streams(0.47, workers=1, utilisation=0.8) == 1
    assert max_streams(0.15, workers=1, utilisation=0.8) == 5
    assert max_streams(0.2, workers=1, utilisation=0.8) == 4       # 0.8 / 0.2, despite float rounding
    assert max_streams(0.15, workers=1, utilisation=0.8, cap=3) == 3
    assert max_streams(0.7, workers=2, utilisation=0.8) == 2
    assert max_streams(2.0, workers=1, utilisation=0.8) == 1       # too slow: still the lone stream
    assert max_streams(0.9, workers=4, utilisation=0.8) == 1       # each stream needs one worker < 1
    assert max_streams(0.3, workers=1, utilisation=math.inf, cap=7) == 7


# -- Capacity ---------------------------------------------------------------------

class Holder:
    """Stands in for a Session: holds its slot while it has utterances."""

    def __init__(self) -> None:
        self.utterances: dict[str, object] = {}


def take(cap: Capacity, speed: float = 1.0) -> Holder | None:
    h = Holder()
    if not cap.try_acquire(h, speed):
        return None
    h.utterances["u"] = object()
    return h


def drop(cap: Capacity, h: Holder) -> None:
    h.utterances.clear()
    cap.release()


def measured(rtf: float, *, slope: float = 0.0, workers: int = 1, cap: int | None = None) -> Capacity:
    est = RtfEstimator(slope=slope)
    est.seed(rtf * 10, 10.0)
    return Capacity(cap, estimator=est, workers=workers, utilisation=0.8)


def test_fixed_capacity_counts_like_before() -> None:
    cap = Capacity(2)
    a, b = take(cap), take(cap)
    assert a and b and take(cap) is None and cap.active == 2
    drop(cap, a)
    assert cap.active == 1 and take(cap) is not None
    assert Capacity().try_acquire() and Capacity(None).max_active is None  # no estimator, no cap: unbounded


def test_anonymous_slots_still_work() -> None:
    cap = Capacity(1)
    assert cap.try_acquire() and not cap.try_acquire()
    cap.release()
    assert cap.active == 0 and cap.try_acquire()


def test_measured_capacity_admits_what_fits() -> None:
    cap = measured(0.25)  # 0.8 / 0.25: three streams
    held = [take(cap) for _ in range(3)]
    assert all(held) and take(cap) is None
    assert cap.plan().max_streams == 3 and cap.plan().demand == pytest.approx(0.75)
    drop(cap, held[0])
    assert take(cap) is not None


def test_a_lone_stream_is_admitted_however_slow() -> None:
    cap = measured(1.7)
    assert take(cap) is not None and take(cap) is None
    assert cap.plan().max_streams == 1


def test_speed_counts() -> None:
    cap = measured(0.3, slope=1.0)
    fast = take(cap, speed=2.0)  # 0.6
    assert fast is not None and take(cap, speed=1.0) is None  # 0.9 would not fit
    drop(cap, fast)
    slow = [take(cap, speed=0.5), take(cap, speed=0.5)]  # counted as 1x each: 0.6
    assert all(slow) and take(cap, speed=0.5) is None


def test_speed_with_a_flat_slope_costs_nothing_extra() -> None:
    cap = measured(0.3, slope=0.0)
    assert take(cap, speed=2.0) and take(cap, speed=2.0)  # 0.3 + 0.3


def test_workers_multiply_capacity() -> None:
    cap = measured(0.5, workers=2)  # 1.6 / 0.5: three streams
    assert all(take(cap) for _ in range(3)) and take(cap) is None


def test_a_number_caps_measured_admission() -> None:
    cap = measured(0.1, cap=2)  # 8 would fit
    assert take(cap) and take(cap) and take(cap) is None
    assert cap.plan().max_streams == 2


def test_infinite_utilisation_is_the_plain_cap() -> None:
    est = RtfEstimator()
    est.seed(9.0, 1.0)
    cap = Capacity(3, estimator=est, utilisation=math.inf)
    assert all(take(cap) for _ in range(3)) and take(cap) is None
    assert cap.info().utilisation is None and cap.info().max_streams == 3


def test_release_frees_only_holders_without_utterances() -> None:
    cap = measured(0.2)
    a, b = take(cap), take(cap)
    assert a and b
    a.utterances.clear()
    cap.release()
    assert cap.active == 1
    b.utterances.clear()  # a session whose release was missed is pruned at the next admission
    assert take(cap) is not None and cap.active == 1


def test_a_returning_holder_keeps_its_place() -> None:
    """Barge-in: the connection releases and re-acquires in one step; the estimate
    moving in between must not cost it its stream, while a newcomer is checked."""
    est = RtfEstimator(slope=1.0)
    est.seed(4.0, 10.0)  # 0.4: two streams
    cap = Capacity(None, estimator=est, utilisation=0.8)
    a, b = take(cap), take(cap)
    assert a and b
    est.seed(5.0, 10.0)  # 0.5: now only one would fit
    a.utterances.clear()
    cap.release()
    assert cap.try_acquire(a, 1.0)  # back in
    a.utterances["u"] = object()
    assert take(cap) is None  # a newcomer is checked against the new estimate
    a.utterances.clear()
    cap.release()
    assert not cap.try_acquire(a, 2.0)  # no free pass for a stream that costs more than before


def test_returning_needs_nothing_admitted_meanwhile() -> None:
    est = RtfEstimator()
    est.seed(3.0, 10.0)  # 0.3: two streams
    cap = Capacity(None, estimator=est, utilisation=0.8)
    a, b = take(cap), take(cap)
    assert a and b
    drop(cap, a)
    c = take(cap)  # a newcomer took the room
    assert c is not None
    assert not cap.try_acquire(a, 1.0)


def test_info_for_ready() -> None:
    cap = measured(0.4667)
    take(cap)
    info = cap.info()
    # A fixed margin of 1 (no Headroom given): admission plans with the running RTF itself.
    assert info == CapacityInfo(rtf=0.467, max_streams=1, active=1, workers=1, utilisation=0.8,
                                admission_rtf=0.467, margin=1.0, background=0)
    assert Capacity(3).info() == CapacityInfo(rtf=None, max_streams=3, active=0, workers=1, utilisation=0.8,
                                              margin=1.0, background=0)


# -- the wire -----------------------------------------------------------------------

READY = Ready(version="0.1.0", session="s", encoding="msgpack", sample_rate=24000, format="pcm_s16le", frame_ms=100,
              voice="af_heart", speed=1.0, voices=("af_heart",), limits=Limits(100, 200, 3, 50))


@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()], ids=["msgpack", "json"])
def test_ready_carries_capacity_both_ways(codec: MsgpackCodec | JsonCodec) -> None:
    import dataclasses

    info = CapacityInfo(rtf=0.47, max_streams=1, active=0, workers=2, utilisation=0.8)
    ready = dataclasses.replace(READY, capacity=info)
    assert ready.to_dict()["capacity"] == {"rtf": 0.47, "max_streams": 1, "active": 0, "workers": 2, "utilisation": 0.8}
    frame = codec.encode(ready)
    assert codec.decode_event(frame).capacity == info
    # Optional both ways: absent from an older daemon, and absent when unknown.
    assert "capacity" not in READY.to_dict()
    assert codec.decode_event(codec.encode(READY)).capacity is None
    unknown = dataclasses.replace(READY, capacity=CapacityInfo(None, None, 0, 1, None))
    assert codec.decode_event(codec.encode(unknown)).capacity == CapacityInfo(None, None, 0, 1, None)
    # The request queue's state and bounds ride along when the daemon has one.
    queued = dataclasses.replace(info, queued=3, max_queued=32, queue_timeout_s=60.0)
    assert dataclasses.replace(READY, capacity=queued).to_dict()["capacity"]["max_queued"] == 32
    assert codec.decode_event(codec.encode(dataclasses.replace(READY, capacity=queued))).capacity == queued


# -- flags ----------------------------------------------------------------------------

def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_server_args(p)
    return p.parse_args(list(argv))


def test_max_active_streams_flag() -> None:
    assert limits_from_args(parse()).max_active_streams is None
    assert limits_from_args(parse("--max-active-streams", "auto")).max_active_streams is None
    assert limits_from_args(parse("--max-active-streams", "4")).max_active_streams == 4
    for bad in ("0", "-1", "many"):
        with pytest.raises(SystemExit):
            parse("--max-active-streams", bad)


def test_request_queue_flags() -> None:
    limits = limits_from_args(parse())
    assert (limits.max_queued, limits.queue_timeout_s) == (32, 120.0)
    limits = limits_from_args(parse("--max-queued", "0", "--queue-timeout-s", "2.5"))
    assert (limits.max_queued, limits.queue_timeout_s) == (0, 2.5)
    for bad in (["--max-queued", "-1"], ["--max-queued", "x"], ["--queue-timeout-s", "0"], ["--queue-timeout-s", "inf"]):
        with pytest.raises(SystemExit):
            parse(*bad)


def test_worker_flags() -> None:
    args = parse("--engine-workers", "2", "--engine-threads", "1", "--stream-utilisation", "0.7")
    assert (args.engine_workers, args.engine_threads, args.stream_utilisation) == (2, 1, 0.7)
    assert parse("--stream-utilisation", "inf").stream_utilisation == math.inf
    for bad in (["--engine-workers", "0"], ["--stream-utilisation", "0"], ["--engine-threads", "x"]):
        with pytest.raises(SystemExit):
            parse(*bad)


def test_threads_per_worker_divides_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import kokorod.config as config

    monkeypatch.setattr(config, "available_cpus", lambda: 8)
    assert ServerConfig(engine_workers=1).threads_per_worker() is None  # ONNX's own default
    assert ServerConfig(engine_workers=2).threads_per_worker() == 4
    assert ServerConfig(engine_workers=3).threads_per_worker() == 2
    assert ServerConfig(engine_workers=16).threads_per_worker() == 1
    assert ServerConfig(engine_workers=2, engine_threads=3).threads_per_worker() == 3


# -- the workers' synthesizers feed the estimate ------------------------------------------

class TimedFake:
    """A synthesizer that takes ``delay_s`` and makes ``audio_s`` of audio, or raises."""

    def __init__(self, audio_s: float, raises: BaseException | None = None) -> None:
        self.voices, self.g2p, self.engine = object(), object(), object()
        self.audio_s, self.raises, self.calls = audio_s, raises, 0

    def synthesize(self, text: str, **kwargs: object) -> SpeechChunk:
        self.calls += 1
        time.sleep(0.02)
        if self.raises is not None:
            raise self.raises
        return SpeechChunk(np.zeros(int(self.audio_s * 24000), dtype=np.float32))


def test_completed_synthesis_feeds_the_estimate_and_cancelled_does_not() -> None:
    est = RtfEstimator(half_life_audio_s=1e9, slope=1.0)
    done = WorkerSynthesizers([TimedFake(0.2)], est)
    done.synthesize("x", voice="af_heart", speed=2.0)
    assert est.observations == 1
    assert 0.02 / 0.2 / 2 <= est.rtf() < 1.0  # normalised to 1x by the speed model (factor 2 at slope 1)
    cancelled = WorkerSynthesizers([TimedFake(0.2, raises=SynthesisCancelled())], est)
    with pytest.raises(SynthesisCancelled):
        cancelled.synthesize("x", voice="af_heart")
    silent = WorkerSynthesizers([TimedFake(0.0)], est)
    silent.synthesize("x", voice="af_heart")
    assert est.observations == 1


def test_off_the_engine_threads_the_first_synthesizer_answers() -> None:
    a, b = TimedFake(0.2), TimedFake(0.2)
    pool = WorkerSynthesizers([a, b])
    pool.synthesize("x")
    assert (a.calls, b.calls) == (1, 0) and pool.voices is a.voices and pool.g2p is a.g2p


def test_each_synthesis_leases_a_free_synthesizer_and_a_named_one_waits_for_it() -> None:
    """Two calls at once run on two engines (no thread-local routing); the
    warm-up's lease of one engine by index waits until that one is free."""
    a, b = TimedFake(0.2), TimedFake(0.2)
    pool = WorkerSynthesizers([a, b])
    calls = [threading.Thread(target=pool.synthesize, args=("x",)) for _ in range(2)]
    for t in calls:
        t.start()
    for t in calls:
        t.join(10)
    assert (a.calls, b.calls) == (1, 1)
    order: list[str] = []
    with pool.lease(0) as first:
        assert first is a

        def named() -> None:
            with pool.lease(0) as again:
                order.append("named")
                assert again is a

        waiting = threading.Thread(target=named)
        waiting.start()
        time.sleep(0.05)
        with pool.lease() as other:  # a free one is still there meanwhile
            assert other is b
        order.append("released")
    waiting.join(10)
    assert order == ["released", "named"]


def test_pace_is_the_streams_own_rtf_or_its_share_of_all_demand_with_a_margin() -> None:
    from kokorod.daemon.admission import PACE_MARGIN

    assert Capacity(None).pace(1.0) is None  # no estimator: the segmenter's static ramp
    est = RtfEstimator()
    cap = Capacity(None, estimator=est, workers=1)
    assert cap.pace(1.0) is None  # nothing measured yet
    est.seed(0.3, 1.0)
    assert cap.pace(1.0) == pytest.approx(PACE_MARGIN * 0.3)  # alone: its own RTF
    others = [object(), object()]
    for holder in others:
        assert cap.try_acquire(holder, 1.0)
    # Two streams of 0.3 on one worker: the engine makes each one's audio at 0.6.
    assert cap.pace(1.0) == pytest.approx(PACE_MARGIN * 0.6)
    two_workers = Capacity(None, estimator=est, workers=2)
    for holder in others:
        two_workers.try_acquire(holder, 1.0)
    assert two_workers.pace(1.0) == pytest.approx(PACE_MARGIN * 0.3)  # 0.6 of demand over 2 workers: own wins


def test_the_first_chunks_pace_is_the_expected_one_without_the_planning_margin() -> None:
    from kokorod.daemon.admission import PACE_MARGIN

    est = RtfEstimator()
    cap = Capacity(None, estimator=est, workers=1)
    assert cap.first_pace(1.0) is None  # nothing measured yet
    est.seed(0.3, 1.0)
    assert cap.first_pace(1.0) == pytest.approx(0.3)
    assert cap.pace(1.0) == pytest.approx(PACE_MARGIN * 0.3)
    # Late streams raised the learnt margin past the planning one: the first
    # chunk's expectation rises in proportion.
    cap.headroom.margin = PACE_MARGIN * 1.25
    assert cap.first_pace(1.0) == pytest.approx(0.3 * 1.25)
    assert cap.pace(1.0) == pytest.approx(PACE_MARGIN * 1.25 * 0.3)
