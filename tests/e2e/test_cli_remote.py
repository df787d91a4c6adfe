"""`kokorod say` / `kokorod pipe` as a user runs them: through a running daemon,
falling back to in-process synthesis, and failing with one line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support.asr import transcribe, word_error_rate
from support.daemon import ROOT, DaemonProcess, free_port
from kokorod.audio.wav import read_wav

pytestmark = pytest.mark.slow
TOKEN = "cli-token"
WORD_LINE = re.compile(r"^\s*\d+\.\d{3}\s+\d+\.\d{3}\s+\S+")


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    d = DaemonProcess("--token", TOKEN)
    yield d
    assert d.stop() == 0, d.log()[-3000:]


def kokorod(*args: str, stdin: str | None = None, token: str | None = TOKEN,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KOKOROD_TOKEN", "KOKOROD_URL")}
    if token is not None:
        env["KOKOROD_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "kokorod", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


@contextlib.contextmanager
def sigint_not_ignored():  # type: ignore[no-untyped-def]
    """Start children the way a shell starts a foreground command, whose Ctrl-C
    is delivered. An ignored SIGINT is inherited across exec (POSIX shells ignore
    it in background jobs: `make test &` from a script), and Python then leaves it
    ignored, so the child would never see the test's SIGINT. A handled SIGINT is
    reset to the default on exec: install one while the child starts."""
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def metric(daemon: DaemonProcess, series: str) -> float:
    request = urllib.request.Request(daemon.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    body = urllib.request.urlopen(request, timeout=5).read().decode()
    found = re.search("^" + re.escape(series) + r" (\S+)$", body, re.M)
    return float(found.group(1)) if found else 0.0


def utterances_started(daemon: DaemonProcess) -> int:
    return int(metric(daemon, "kokorod_utterances_started_total"))


def heard(path: Path) -> tuple[float, str]:
    audio, rate = read_wav(path)
    return audio.shape[0] / rate, transcribe(audio, rate)[0]


def test_say_through_the_daemon_writes_a_wav(daemon: DaemonProcess, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    before = utterances_started(daemon)
    text = "The weather is lovely today, so we are going for a walk."
    run = kokorod("say", text, "-o", str(out), "--url", daemon.url)
    assert run.returncode == 0, run.stderr
    assert utterances_started(daemon) == before + 1  # the daemon spoke it, not a fallback
    duration, transcript = heard(out)
    assert 2.0 < duration < 8.0
    assert word_error_rate(text, transcript) <= 0.15, transcript
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"wrote {out}") and "words)" in lines[0]
    assert all(WORD_LINE.match(line) for line in lines[1:]) and len(lines) - 1 == 12
    assert run.stderr == ""  # not a TTY: no status line


def test_say_falls_back_in_process_when_no_daemon_answers(tmp_path: Path) -> None:
    out = tmp_path / "x.wav"
    run = kokorod("say", "--url", f"ws://127.0.0.1:{free_port()}/v1/stream", "Hello", "-o", str(out))
    assert run.returncode == 0, run.stderr
    duration, transcript = heard(out)
    assert 0.2 < duration < 3.0 and "hello" in transcript.lower()


def test_pipe_through_the_daemon(daemon: DaemonProcess, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    text = "Some text. More text."
    run = kokorod("pipe", "-o", str(out), "--url", daemon.url, stdin=text + "\n")
    assert run.returncode == 0, run.stderr
    duration, transcript = heard(out)
    assert 1.0 < duration < 5.0
    assert word_error_rate(text, transcript) <= 0.15, transcript
    assert [line.split()[-1] for line in run.stdout.splitlines()[1:]] == ["Some", "text", "More", "text"]


def test_pipe_speaks_partial_lines_as_they_come(daemon: DaemonProcess, tmp_path: Path) -> None:
    """An LLM writes half-lines with pauses and no newline at the end."""
    out = tmp_path / "llm.wav"
    pieces = ["Hello the", "re, this text ar", "rives in pieces. And then it sim", "ply stops"]
    proc = subprocess.Popen([sys.executable, "-m", "kokorod", "pipe", "-o", str(out), "--url", daemon.url,
                             "--token", TOKEN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdin is not None
    for piece in pieces:
        proc.stdin.write(piece.encode())
        proc.stdin.flush()
        time.sleep(0.4)
    stdout, stderr = proc.communicate(timeout=120)  # closes stdin: EOF
    assert proc.returncode == 0, stderr
    _, transcript = heard(out)
    assert word_error_rate("".join(pieces), transcript) <= 0.15, transcript


def test_pipe_falls_back_in_process(tmp_path: Path) -> None:
    out = tmp_path / "local.wav"
    text = "Nobody is listening on that port. This still works."
    run = kokorod("pipe", "-o", str(out), "--url", f"ws://127.0.0.1:{free_port()}/v1/stream", stdin=text)
    assert run.returncode == 0, run.stderr
    _, transcript = heard(out)
    assert word_error_rate(text, transcript) <= 0.15, transcript


def test_pipe_with_a_wrong_token_prints_one_line(daemon: DaemonProcess, tmp_path: Path) -> None:
    run = kokorod("pipe", "-o", str(tmp_path / "no.wav"), "--url", daemon.url, "--token", "wrong", stdin="Hello.")
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "token" in lines[0] and "wrong" not in lines[0]  # says how to fix, never echoes the token
    assert not (tmp_path / "no.wav").exists()


def test_say_with_an_unknown_voice_prints_one_line(daemon: DaemonProcess, tmp_path: Path) -> None:
    run = kokorod("say", "Hello.", "-o", str(tmp_path / "v.wav"), "--url", daemon.url, "--voice", "zz_nobody")
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "zz_nobody" in lines[0] and "kokorod voices" in lines[0], run.stderr


def test_pipe_ctrl_c_cancels_and_exits_130(daemon: DaemonProcess, tmp_path: Path) -> None:
    cancels = 'kokorod_utterances_cancelled_total{reason="cancel"}'
    started, cancelled = utterances_started(daemon), metric(daemon, cancels)
    with sigint_not_ignored():
        proc = subprocess.Popen([sys.executable, "-m", "kokorod", "pipe", "-o", str(tmp_path / "int.wav"), "--url",
                                 daemon.url, "--token", TOKEN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"A very long story about a cat who lived in a lighthouse by the sea. " * 30)
        proc.stdin.flush()  # stdin stays open: the utterance is mid-stream
        deadline = time.time() + 60
        while utterances_started(daemon) == started and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        # Through the daemon, not a silent in-process fallback: only then is there a cancel to send.
        assert utterances_started(daemon) == started + 1, proc.poll()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:  # a failed run must not leave a process speaking into the shared daemon
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert b"Traceback" not in stderr and b"Error" not in stderr, stderr
    assert not (tmp_path / "int.wav").exists()
    # The daemon was told (a `cancel`, not just a dropped connection).
    deadline = time.time() + 15
    while metric(daemon, cancels) <= cancelled and time.time() < deadline:
        time.sleep(0.1)
    assert metric(daemon, cancels) == cancelled + 1
