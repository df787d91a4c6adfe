"""--engine auto's choice (kokorod.engine.choice, choice_record, measure, selection) with fake candidates."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import pytest

from kokorod.engine import choice_record, selection
from kokorod.engine.base import SAMPLES_PER_FRAME, EngineOutput
from kokorod.engine.choice import REFERENCE, Choice, Measured, choose
from kokorod.engine.gate import MAX_LOG_MEL_DB, judge, log_mel_distance
from kokorod.engine.measure import measure

MB = 2**20


def m(name: str, cpu: float, rss_mb: float = 150, *, durations: bool = True, db: float = 1.5) -> Measured:
    return Measured(name, cpu, int(rss_mb * MB), durations, 0.0 if name == REFERENCE else db)


def test_the_fastest_passing_candidate_wins() -> None:
    c = choose([m(REFERENCE, 0.60), m("b", 0.40), m("c", 0.30)])
    assert c.name == "c" and c.source == "measured"
    assert c.verdicts["c"].startswith("chosen") and "less CPU" in c.verdicts["b"]


def test_a_candidate_failing_the_gate_is_excluded_however_fast() -> None:
    c = choose([m(REFERENCE, 0.60), m("bf16", 0.20, db=MAX_LOG_MEL_DB + 2), m("odd", 0.25, durations=False),
                m("fp32", 0.50)])
    assert c.name == "fp32"
    assert "gate failed: audio" in c.verdicts["bf16"] and "durations" in c.verdicts["odd"]


def test_a_small_gain_keeps_int8() -> None:
    c = choose([m(REFERENCE, 0.60), m("fp32", 0.58)])  # 3% less CPU: run-to-run noise
    assert c.name == REFERENCE and "not faster enough" in c.verdicts["fp32"]
    assert choose([m(REFERENCE, 0.60), m("fp32", 0.56)]).name == "fp32"  # 6.7%


def test_a_slower_candidate_keeps_int8() -> None:
    assert choose([m(REFERENCE, 0.60), m("fp32", 0.75)]).name == REFERENCE


def test_the_memory_bound_excludes_a_candidate_times_the_workers() -> None:
    ms = [m(REFERENCE, 0.60, 150), m("fp32", 0.40, 300)]
    assert choose(ms, max_rss_bytes=400 * MB).name == "fp32"
    c = choose(ms, max_rss_bytes=400 * MB, workers=2)  # 600 MB for two sessions
    assert c.name == REFERENCE and "memory bound" in c.verdicts["fp32"]
    # int8 is never excluded, only reported above the bound.
    c = choose(ms, max_rss_bytes=100 * MB)
    assert c.name == REFERENCE and "above the memory bound" in c.verdicts[REFERENCE]


def test_without_the_reference_nothing_is_chosen_but_int8() -> None:
    assert choose([m("fp32", 0.1)]).name == REFERENCE


def test_the_record_round_trips_and_is_re_judged(tmp_path: Path) -> None:
    key = choice_record.choice_key(model_sha256="abc", threads=2, trim_context=8, candidates=(REFERENCE, "fp32"))
    ms = [m(REFERENCE, 0.6), m("fp32", 0.4)]
    path = choice_record.save_record(tmp_path, key, ms)
    assert path is not None and path.parent == tmp_path / "onnx"
    assert choice_record.load_record(tmp_path, key) == ms
    other = {**key, "threads": "1"}
    assert choice_record.load_record(tmp_path, other) is None
    path.write_text("{not json")
    assert choice_record.load_record(tmp_path, key) is None


def test_the_gate_measure_tells_fp32_like_differences_from_noise() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(24000 * 2) / 24000
    speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    assert log_mel_distance(speech, speech) == 0.0
    slightly = speech * 1.05  # a 0.4 dB level difference
    assert log_mel_distance(speech, slightly) < 1.0
    noisy = speech + rng.standard_normal(speech.size).astype(np.float32) * np.sqrt((speech ** 2).mean() / 100)
    assert log_mel_distance(speech, noisy) > MAX_LOG_MEL_DB
    d = np.array([1, 2, 3])
    assert judge([(speech, d)], [(slightly, d)]).passed
    assert not judge([(speech, d)], [(slightly, d + 1)]).passed


class FakeEngine:
    """Durations of 2 frames per id; audio a fixed tone (``noise``: plus noise)."""

    def __init__(self, name: str, noise: float = 0.0) -> None:
        self.name, self.noise = name, noise
        self.vocab = {ch: i + 1 for i, ch in enumerate(sorted(set("".join(selection_sentences()))))}
        self.runs = 0
        self.loaded_from_cache = True

    def run(self, ids: list[int], style: np.ndarray, speed: float, cancel: object = None) -> EngineOutput:
        self.runs += 1
        durations = np.full(len(ids), 2, dtype=np.int64)
        n = int(durations.sum()) * SAMPLES_PER_FRAME
        audio = 0.3 * np.sin(2 * np.pi * 200 * np.arange(n) / 24000)
        if self.noise:
            audio = audio + np.random.default_rng(0).standard_normal(n) * self.noise
        return EngineOutput(audio.astype(np.float32), durations)


def selection_sentences() -> tuple[str, ...]:
    from kokorod.engine.measure import SENTENCES

    return SENTENCES


def test_measure_gates_and_times_fake_candidates() -> None:
    cpu_per_run = {REFERENCE: 1.0, "fast": 0.5, "noisy": 0.2}
    built: dict[str, FakeEngine] = {}

    def build(name: str) -> FakeEngine:
        built[name] = FakeEngine(name, noise=0.05 if name == "noisy" else 0.0)
        return built[name]

    def clock() -> float:  # CPU seconds so far: each candidate's runs at its cost per run
        return sum(e.runs * cpu_per_run[n] for n, e in built.items())

    rss_values = iter([100, 250, 250, 300, 300, 900])
    measured, engines = measure((REFERENCE, "fast", "noisy"), build, lambda n: np.zeros((1, 256), np.float32),
                                rounds=3, rss=lambda: next(rss_values) * MB, clock=clock)
    by = {x.name: x for x in measured}
    assert set(engines) == {REFERENCE, "fast", "noisy"}
    assert by[REFERENCE].rss_bytes == 150 * MB and by["fast"].rss_bytes == 50 * MB and by["noisy"].rss_bytes == 600 * MB
    assert by["fast"].cpu_per_audio_s == pytest.approx(by[REFERENCE].cpu_per_audio_s / 2)
    assert by["fast"].gate_passed and not by["noisy"].gate_passed
    assert choose(measured).name == "fast"


def test_a_candidate_that_fails_to_load_is_left_out() -> None:
    def build(name: str) -> FakeEngine:
        if name == "broken":
            raise RuntimeError("no such kernel")
        return FakeEngine(name)

    measured, engines = measure((REFERENCE, "broken"), build, lambda n: np.zeros((1, 256), np.float32), rounds=1)
    assert [x.name for x in measured] == [REFERENCE] and list(engines) == [REFERENCE]


def test_choose_engine_measures_once_then_reuses_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "candidate_status", lambda: [(REFERENCE, True, ""), ("onnx-fp32", True, "")])
    # Each fake engine "grows" the process by 50 MB (the real growth of a fake is noise around 0).
    resident = itertools.count(step=50 * MB)
    monkeypatch.setattr(selection, "measure", functools.partial(measure, rss=lambda: next(resident)))
    builds: list[str] = []

    def build(name: str) -> FakeEngine:
        builds.append(name)
        return FakeEngine(name)

    style = lambda n: np.zeros((1, 256), np.float32)  # noqa: E731
    choice, engine = selection.choose_engine(tmp_path, build=build, style_for=style, threads=2, trim_context=8)
    assert choice.source == "measured" and engine is not None and engine.name == choice.name
    assert builds == [REFERENCE, "onnx-fp32"]
    again, engine = selection.choose_engine(tmp_path, build=build, style_for=style, threads=2, trim_context=8)
    assert again.source == "cached" and engine is None and again.name == choice.name
    assert builds == [REFERENCE, "onnx-fp32"]  # nothing loaded to measure
    assert [x.name for x in again.measured] == [REFERENCE, "onnx-fp32"]
    assert all(x.rss_bytes == 50 * MB for x in again.measured)
    # A memory bound given later applies to the recorded figures without measuring.
    bounded, _ = selection.choose_engine(tmp_path, build=build, style_for=style, threads=2, trim_context=8,
                                         max_rss_mb=40)
    assert bounded.name == REFERENCE and bounded.source == "cached"
    assert "memory bound" in bounded.verdicts["onnx-fp32"]
    # Another key (thread count, CPU) measures again.
    selection.choose_engine(tmp_path, build=build, style_for=style, threads=1, trim_context=8)
    assert builds[-2:] == [REFERENCE, "onnx-fp32"] and len(builds) == 4
    monkeypatch.setattr(choice_record, "cpu_model", lambda: "Another CPU")
    selection.choose_engine(tmp_path, build=build, style_for=style, threads=2, trim_context=8)
    assert len(builds) == 6


def test_one_shot_commands_never_measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "candidate_status", lambda: [(REFERENCE, True, ""), ("onnx-fp32", True, "")])

    def build(name: str) -> FakeEngine:
        raise AssertionError("measured")

    choice, engine = selection.choose_engine(tmp_path, build=build, style_for=lambda n: np.zeros((1, 256)),
                                             threads=None, trim_context=8, measure_now=False)
    assert (choice.name, choice.source, engine) == (REFERENCE, "default", None)


def test_doctor_lines_name_every_candidate_and_the_recorded_choice(tmp_path: Path) -> None:
    lines = selection.doctor_lines(tmp_path)
    assert any("onnx-fp32" in detail for _, _, detail in lines)
    assert any("openvino-split" in detail for _, _, detail in lines)
    assert any("not measured yet" in detail for _, _, detail in lines)


def test_doctor_lists_only_records_this_version_reads(tmp_path: Path) -> None:
    from kokorod.engine.choice_record import choice_key, save_record

    key = choice_key(model_sha256="a" * 64, threads=None, trim_context=8, candidates=(REFERENCE,))
    measured = [Measured(REFERENCE, 0.4, 200 * 2**20, True, 0.0)]
    save_record(tmp_path, key, measured)
    save_record(tmp_path, {**key, "graph_edit": "1"}, [Measured(REFERENCE, 0.9, 200 * 2**20, True, 0.0)])
    details = [d for name, _, d in selection.doctor_lines(tmp_path) if name == "auto choice"]
    assert len(details) == 1 and "0.400" in details[0], details
    assert any(name == "old records" and d.startswith("1 ") for name, _, d in selection.doctor_lines(tmp_path))


def test_the_kernels_line_says_what_the_graph_edit_does_here() -> None:
    assert "VNNI matrix products" in selection.kernels_summary("x86_64+avx2+avx512_vnni", "fast")
    assert "no VNNI" in selection.kernels_summary("x86_64+avx2", "fast")
    assert "export's nodes" in selection.kernels_summary("x86_64+avx512_vnni", "export")


def test_ready_capacity_carries_the_engine() -> None:
    from kokorod.protocol.event_parsing import _capacity
    from kokorod.protocol.server_events import CapacityInfo

    info = CapacityInfo(rtf=0.4, max_streams=1, active=0, engine="onnx-fp32")
    assert info.to_dict()["engine"] == "onnx-fp32"
    assert "engine" not in CapacityInfo(rtf=0.4, max_streams=1, active=0).to_dict()  # as older daemons sent it
    assert _capacity({"capacity": info.to_dict()}) == info


def test_the_daemon_defers_measuring_int8_now_and_a_pending_measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "candidate_status", lambda: [(REFERENCE, True, ""), ("onnx-fp32", True, "")])

    def build(name: str) -> FakeEngine:
        raise AssertionError("measured before ready")

    choice, engine = selection.choose_engine(tmp_path, build=build, style_for=lambda n: np.zeros((1, 256)),
                                             threads=None, trim_context=8, workers=2, max_rss_mb=500, defer=True)
    pending = selection.pending_of(choice)
    assert (choice.name, choice.source, engine) == (REFERENCE, "pending", None) and pending is not None
    assert pending.names == (REFERENCE, "onnx-fp32") and pending.workers == 2 and pending.max_rss_bytes == 500 * MB
    assert "pending" not in choice.to_dict() and choice == Choice(REFERENCE, "pending", choice.reason)
    finished = pending.finish([Measured(REFERENCE, 1.0, 100 * MB), Measured("onnx-fp32", 0.5, 200 * MB)])
    assert finished.name == "onnx-fp32" and finished.source == "measured"
    again, _ = selection.choose_engine(tmp_path, build=build, style_for=lambda n: np.zeros((1, 256)),
                                       threads=None, trim_context=8, workers=2, max_rss_mb=500, defer=True)
    assert (again.name, again.source) == ("onnx-fp32", "cached") and selection.pending_of(again) is None
