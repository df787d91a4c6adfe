"""--engine auto with the real model: the first start measures the candidates
and reports its choice (ready, /metrics, the log, kokorod doctor); a second
start reuses the record without measuring. Which engine wins depends on the
CPU, so the test asserts the reporting and the reuse, not the winner."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kokorod.assets.paths import resolve_cache_dir
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


async def test_auto_measures_once_reports_the_choice_and_reuses_the_record(cache: Path) -> None:
    d, engine, first_s = await start(cache)
    try:
        info, cpu = engine_metrics(d)
        assert engine in ("onnx", "onnx-fp32") and info["engine"] == engine and info["source"] == "measured"
        assert set(cpu) == {"onnx", "onnx-fp32"} and all(v > 0 for v in cpu.values())
        assert "engine_chosen" in d.log() or "engine onnx" in d.log()
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
    print(f"serve -> /readyz: first start (measuring) {first_s:.1f} s, second (recorded) {second_s:.1f} s")
