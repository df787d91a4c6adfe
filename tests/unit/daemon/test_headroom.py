"""Admission that holds: the margin learnt from late streams (kokorod.daemon.headroom)
and the conservative RTF admission plans with (RtfEstimator.admission_rtf), fed
with synthetic observations. Pure: no engine, no clock."""

from __future__ import annotations

import pytest

from kokorod.daemon import headroom as hr
from kokorod.daemon.admission import LONG_CHUNK_PRIOR, Capacity, RtfEstimator
from kokorod.daemon.headroom import Headroom


# -- the margin -----------------------------------------------------------------

def test_a_fresh_margin_is_conservative_and_bounded() -> None:
    h = Headroom()
    assert h.margin == hr.INITIAL_MARGIN and h.low == hr.MIN_MARGIN and h.high == hr.MAX_MARGIN
    with pytest.raises(ValueError):
        Headroom(initial=0.9, low=1.0)
    with pytest.raises(ValueError):
        Headroom(fixed=0.0)


def test_a_late_stream_raises_the_margin_once_per_cooldown() -> None:
    h = Headroom()
    assert h.late(100.0)
    assert h.margin == pytest.approx(hr.INITIAL_MARGIN * hr.RAISE_FACTOR)
    # The same slow spell makes several streams (or chunks) late at once: one lesson.
    assert not h.late(100.5) and not h.late(100.0 + hr.RAISE_COOLDOWN_S - 0.1)
    assert h.margin == pytest.approx(hr.INITIAL_MARGIN * hr.RAISE_FACTOR)
    assert h.late(100.0 + hr.RAISE_COOLDOWN_S + 0.1)
    assert h.margin == pytest.approx(hr.INITIAL_MARGIN * hr.RAISE_FACTOR ** 2)
    assert h.late_events == 4 and h.raises == 2


def test_the_margin_never_rises_past_its_bound() -> None:
    h = Headroom()
    for i in range(50):
        h.late(i * 10.0)
    assert h.margin == hr.MAX_MARGIN
    assert not h.late(1000.0)  # nothing left to raise


def test_on_time_audio_lowers_it_slowly_and_only_when_streams_shared() -> None:
    h = Headroom()
    h.on_time(600.0, streams=1)  # a lone stream says nothing about whether two fit
    assert h.margin == hr.INITIAL_MARGIN and h.on_time_shared_s == 0.0
    h.on_time(10.0, streams=2)
    assert hr.MIN_MARGIN < h.margin < hr.INITIAL_MARGIN
    assert h.margin > hr.INITIAL_MARGIN - 0.01  # slowly: ten seconds barely move it
    h = Headroom()
    h.on_time(hr.LOWER_HALF_LIFE_S, streams=3)  # one half-life: half way to the floor
    assert h.margin == pytest.approx(hr.MIN_MARGIN + (hr.INITIAL_MARGIN - hr.MIN_MARGIN) / 2)
    for _ in range(100):
        h.on_time(hr.LOWER_HALF_LIFE_S, streams=2)
    assert h.margin == pytest.approx(hr.MIN_MARGIN) and h.margin >= hr.MIN_MARGIN


def test_lateness_outweighs_hours_of_good_service() -> None:
    """Hours on time bring it to the floor; one late spell lifts it straight away."""
    h = Headroom()
    h.on_time(7200.0, streams=2)
    floor = h.margin
    h.late(0.0)
    assert h.margin == pytest.approx(floor * hr.RAISE_FACTOR)


def test_a_fixed_margin_never_learns() -> None:
    h = Headroom(fixed=1.0)
    h.late(0.0)
    h.on_time(1e6, streams=4)
    assert h.margin == 1.0 and h.fixed and h.late_events == 1 and h.on_time_shared_s == 1e6


def test_bad_observations_are_ignored() -> None:
    h = Headroom()
    for audio_s in (0.0, -1.0, float("nan"), float("inf")):
        h.on_time(audio_s, streams=2)
    assert h.margin == hr.INITIAL_MARGIN


# -- the conservative RTF ---------------------------------------------------------

def test_before_any_long_chunk_the_warm_up_figure_is_scaled_up() -> None:
    est = RtfEstimator()
    assert est.admission_rtf() is None
    est.seed(0.3 * 2.6, 2.6)  # the warm-up: a short sentence
    assert est.rtf() == pytest.approx(0.3)
    assert est.admission_rtf() == pytest.approx(0.3 * LONG_CHUNK_PRIOR)


def test_long_chunks_measured_replace_the_prior() -> None:
    est = RtfEstimator()
    est.seed(0.3 * 2.6, 2.6)
    for _ in range(3):
        est.observe(0.36 * 16.0, 16.0, streams=1)  # steady chunks cost more per second
    assert est.admission_rtf() == pytest.approx(0.36, rel=0.02)
    for _ in range(40):
        est.observe(0.25 * 2.0, 2.0, streams=1)  # many short cheap ones move the running figure...
    assert est.rtf() < 0.3
    assert est.admission_rtf() == pytest.approx(0.36, rel=0.02)  # ...not what a long chunk costs


def test_chunks_run_while_streams_shared_the_engine_count_when_slower() -> None:
    est = RtfEstimator()
    est.seed(0.3 * 16, 16.0)
    est.observe(0.3 * 16, 16.0, streams=1)
    assert est.admission_rtf() == pytest.approx(0.3, rel=0.01)
    for _ in range(3):
        est.observe(0.42 * 8.0, 8.0, streams=2)  # two streams: the loop's work slows the engine
    assert est.admission_rtf() >= 0.42 * 0.98
    # The hook the daemon sets stands in for an explicit count.
    est.concurrency = lambda: 3
    est.observe(0.5 * 8.0, 8.0)
    assert est.admission_rtf() > 0.42


def test_a_broken_concurrency_hook_costs_nothing() -> None:
    est = RtfEstimator()

    def broken() -> int:
        raise RuntimeError("boom")

    est.concurrency = broken
    est.observe(0.4 * 8.0, 8.0)
    assert est.rtf() == pytest.approx(0.4) and est.observations == 1


# -- Capacity with a learnt margin -----------------------------------------------------

def learning(rtf: float, *, long_rtf: float | None = None) -> Capacity:
    est = RtfEstimator()
    est.seed(rtf * 2.6, 2.6)
    if long_rtf is not None:
        est.observe(long_rtf * 16.0, 16.0, streams=1)
    return Capacity(None, estimator=est, utilisation=0.8, headroom=Headroom())


def test_admission_plans_with_the_conservative_rtf_times_the_margin() -> None:
    # Warm-up RTF 0.2: the old arithmetic admitted floor(0.8 / 0.2) = 4 streams.
    cap = learning(0.2)
    plan = cap.plan()
    assert plan.admission_rtf == pytest.approx(0.2 * LONG_CHUNK_PRIOR)
    assert plan.margin == hr.INITIAL_MARGIN
    assert plan.max_streams == 1  # 0.2 x 1.4 x 1.5 = 0.42 a stream: one fits under 0.8
    a, b = object(), object()
    assert cap.try_acquire(a) and not cap.try_acquire(b)
    info = cap.info()
    assert info.margin == hr.INITIAL_MARGIN and info.admission_rtf == pytest.approx(0.28) and info.rtf == 0.2


def test_on_time_shared_service_earns_capacity_and_lateness_takes_it_back() -> None:
    cap = learning(0.2, long_rtf=0.22)
    assert cap.plan().max_streams == 2  # 0.22 x 1.5 = 0.33: two fit
    a, b, c = object(), object(), object()
    assert cap.try_acquire(a) and cap.try_acquire(b) and not cap.try_acquire(c)
    for _ in range(60):
        cap.on_time(60.0)  # an hour of audio delivered on time to two streams
    assert cap.headroom.margin == pytest.approx(hr.MIN_MARGIN, rel=0.01)
    assert cap.plan().max_streams == 3 and cap.try_acquire(c)  # 0.22 x 1.15 x 3 = 0.76
    cap.late(0.0)
    cap.late(hr.RAISE_COOLDOWN_S * 2)
    assert cap.plan().max_streams == 2  # the margin rose: a fourth would not fit, nor a third again
    assert cap.plan().demand > 0.8


def test_pace_plans_chunks_with_a_raised_margin() -> None:
    from kokorod.daemon.admission import PACE_MARGIN

    cap = learning(0.3)
    # Chunks are planned on the running RTF (what chunks cost on average), at
    # the pace margin while the learnt margin starts there: the conservative
    # figure is admission's, and on a slow engine it would push the pace over
    # 1, where the first-chunk budget gives up (issue 16).
    assert cap.pace(1.0) == pytest.approx(PACE_MARGIN * 0.3)
    assert cap.pace(1.0) < cap.headroom.margin * cap._rtf(1.0)
    for i in range(4):
        cap.late(i * 10.0)
    assert cap.headroom.margin > PACE_MARGIN
    assert cap.pace(1.0) == pytest.approx(cap.headroom.margin * 0.3)
    # With a fixed margin (the old admission) chunks are planned as before: the running RTF x the pace margin.
    est = RtfEstimator()
    est.seed(0.3 * 2.6, 2.6)
    assert Capacity(None, estimator=est, headroom=Headroom(fixed=1.0)).pace(1.0) == pytest.approx(PACE_MARGIN * 0.3)


# -- the flag ---------------------------------------------------------------------------

def test_admission_margin_flag() -> None:
    import argparse

    from kokorod.cli.serve import add_server_args

    p = argparse.ArgumentParser()
    add_server_args(p)
    assert p.parse_args([]).admission_margin is None  # auto: learnt
    assert p.parse_args(["--admission-margin", "auto"]).admission_margin is None
    assert p.parse_args(["--admission-margin", "1"]).admission_margin == 1.0
    assert p.parse_args(["--admission-margin", "1.8"]).admission_margin == 1.8
    for bad in ("0.5", "0", "x", "inf", "nan"):
        with pytest.raises(SystemExit):
            p.parse_args(["--admission-margin", bad])
    fixed = Headroom(fixed=1.8)
    assert fixed.fixed and fixed.margin == 1.8


def test_a_lone_stream_on_time_brings_a_raised_margin_back_to_its_start_only() -> None:
    """A noisy neighbour made streams late, then left: with the margin up no two
    streams share, so lone streams must be able to undo the raise (not more)."""
    h = Headroom()
    for i in range(10):
        h.late(i * 10.0)
    assert h.margin == hr.MAX_MARGIN
    h.on_time(hr.LOWER_HALF_LIFE_S, streams=1)
    assert h.margin == pytest.approx(hr.INITIAL_MARGIN + (hr.MAX_MARGIN - hr.INITIAL_MARGIN) / 2)
    for _ in range(100):
        h.on_time(hr.LOWER_HALF_LIFE_S, streams=1)
    assert h.margin == pytest.approx(hr.INITIAL_MARGIN) and h.margin >= hr.INITIAL_MARGIN
    assert h.on_time_shared_s == 0.0
