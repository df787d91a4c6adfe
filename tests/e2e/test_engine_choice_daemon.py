"""--engine auto with the real model: the first start is ready on int8 at once
and measures the candidates after ready, while idle, speaking all the while;
it then reports its choice (ready, /metrics, the log, kokorod doctor) and
speaks with it; a second start reuses the record without measuring. Which
engine wins depends on the CPU, so the test asserts the reporting, the
speech and the reuse, not the winner."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kokorod.assets.paths import resolve_cache_dir
from kokorod.engine.measure import candidate_status
from kokorod.protocol.messages import Done, Speak
from support.asr import transcribe, word_error_rate
from support.daemon import DaemonProcess, Peer

pytestmark = pytest.mark.slow

SHARED = ("kokoro-v1.0.int8.onnx", "voices", "lexicon", "langid")


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    """A cache of its own (the record and graphs are written here), over the
    shared model and voices."""
    shared = resolve_cache_dir(None)
    if not (shared / SHARED[0]).is_file():
        pytest.skip("the model is not in the default cache (kokorod fetch)")
    own = tmp_path / "cache"
    own.mkdir()
    for name in SHARED:
        if (shared / name).exists():
            (own / name).symlink_to(shared / name)
    # The candidates' optimised graphs, built before the daemon starts: the
    # fp32 graph's first build takes minutes on a loaded machine, longer than
    # a test daemon may take to get ready, and is not what this test is about
    # (the daemon still measures: there is no record yet).
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from kokorod.engine import load_engine; "
                    "[load_engine(k, cache_dir=Path(sys.argv[1])) for k in ('onnx', 'onnx-fp32')]", str(own)],
                   check=True, timeout=900)
    return own


def engine_metrics(d: DaemonProcess) -> tuple[dict[str, str], dict[str, float]]:
    with urllib.request.urlopen(d.http + "/metrics", timeout=10) as r:
        body = r.read().decode()
    info: dict[str, str] = {}
    cpu: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == "kokorod_engine_info":
                info = dict(s.labels)
            elif s.name == "kokorod_engine_candidate_cpu_per_audio_seconds":
                cpu[s.labels["engine"]] = s.value
    return info, cpu


async def start(cache: Path) -> tuple[DaemonProcess, str | None, float]:
    started = time.perf_counter()
    d = DaemonProcess("--engine", "auto", "--cache-dir", str(cache))
    ready_s = time.perf_counter() - started
    peer = await Peer.connect(d.url)
    assert peer.ready is not None and peer.ready.capacity is not None
    engine = peer.ready.capacity.engine
    await peer.close()
    return d, engine, ready_s


SENTENCE = "The library opens at nine, and closes at six."


async def heard(d: DaemonProcess, uid: str) -> float:
    """The error rate of one sentence spoken now (Whisper tiny.en)."""
    peer = await Peer.connect(d.url)
    try:
        await peer.send(Speak(uid, SENTENCE, final=True))
        utt = await peer.utterance(uid)
        assert utt.of(Done), utt.events
        text, _ = transcribe(utt.audio(), utt.sample_rate)
        return word_error_rate(SENTENCE, text)
    finally:
        await peer.close()


async def measured(d: DaemonProcess, timeout_s: float = 900) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info, _ = engine_metrics(d)
        if info.get("source") == "measured":
            return info
        await asyncio.sleep(1)
    raise AssertionError(f"not measured after {timeout_s} s: {engine_metrics(d)}\n{d.log()[-3000:]}")


async def test_auto_is_ready_on_int8_measures_after_ready_and_reuses_the_record(cache: Path) -> None:
    d, engine, first_s = await start(cache)
    try:
        info, _ = engine_metrics(d)
        assert (engine, info["engine"], info["source"]) == ("onnx", "onnx", "pending")
        # Served while it measures (its runs give way to a listener's).
        assert await heard(d, "during") <= 0.34
        info = await measured(d)
        _, cpu = engine_metrics(d)
        engine = info["engine"]
        # The candidates of this machine: onnx and onnx-fp32, and the split
        # engine where OpenVINO is installed and the CPU has AMX bf16.
        candidates = {name for name, ok, _ in candidate_status() if ok}
        assert engine in candidates and {"onnx", "onnx-fp32"} <= candidates
        assert set(cpu) == candidates and all(v > 0 for v in cpu.values())
        peer = await Peer.connect(d.url)
        assert peer.ready is not None and peer.ready.capacity is not None and peer.ready.capacity.engine == engine
        await peer.close()
        assert "engine_chosen" in d.log() or "engine onnx" in d.log()
        assert await heard(d, "after") <= 0.34  # the engine it chose (or kept) speaks
    finally:
        assert d.stop() == 0
    assert len(list((cache / "onnx").glob("engine-choice-*.json"))) == 1

    doctor = subprocess.run([sys.executable, "-m", "kokorod", "doctor", "--cache-dir", str(cache)],
                            capture_output=True, text=True, timeout=120)
    lines = [line for line in doctor.stdout.splitlines() if "auto choice" in line]
    assert len(lines) == 1 and f"{engine} (cached" in lines[0] and "onnx-fp32" in lines[0], doctor.stdout

    d, again, second_s = await start(cache)
    try:
        info, cpu_again = engine_metrics(d)
        assert again == engine and info["source"] == "cached"
        assert cpu_again == pytest.approx(cpu, rel=1e-3)  # the recorded figures, not new ones
    finally:
        assert d.stop() == 0
    print(f"serve -> /readyz: first start (measures later) {first_s:.1f} s, second (recorded) {second_s:.1f} s")
