"""`say` and `pipe`, in-process and through the daemon, run one pipeline: the
same text (a pause, a word from the built-in lexicon, an emoji no voice can
say) gives the same audio length, the same words at the same times, and the
same report of what was not spoken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.daemon import ROOT, DaemonProcess
from kokorod.audio.wav import read_wav

pytestmark = pytest.mark.slow
TEXT = 'Restart nginx now. <break time="2s"/> Then check the logs. 🦄'


def run(*args: str, stdin: str | None = None, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KOKOROD_TOKEN", "KOKOROD_URL")}
    if url is not None:
        env["KOKOROD_URL"] = url
    return subprocess.run([sys.executable, "-m", "kokorod", *args], input=stdin, capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


def words(stdout: str) -> list[tuple[float, str]]:
    out = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((float(parts[0]), parts[2]))
    return out


def test_say_and_pipe_agree_in_process_and_through_the_daemon(tmp_path: Path) -> None:
    results: dict[str, tuple[float, list[tuple[float, str]], bool]] = {}
    for name, args, stdin in (("say --local", ("say", "--local", TEXT), None),
                              ("pipe --local", ("pipe", "--local"), TEXT + "\n")):
        wav = tmp_path / f"{name.split()[0]}.wav"
        done = run(*args, "--words", "-o", str(wav), stdin=stdin)
        assert done.returncode == 0, done.stderr[-2000:]
        audio, rate = read_wav(wav)
        results[name] = (len(audio) / rate, words(done.stdout), "not spoken: 🦄" in done.stderr)
    daemon = DaemonProcess()
    try:
        wav = tmp_path / "daemon.wav"
        done = run("say", TEXT, "--words", "-o", str(wav), url=daemon.url)
        assert done.returncode == 0, done.stderr[-2000:]
        audio, rate = read_wav(wav)
        results["say via daemon"] = (len(audio) / rate, words(done.stdout), "🦄" in done.stderr)
    finally:
        assert daemon.stop() == 0, daemon.log()[-3000:]
    local_s, local_words, local_reported = results["say --local"]
    assert local_reported, results
    assert [w for _, w in local_words] == ["Restart", "nginx", "now", "Then", "check", "the", "logs"]
    # The 2 s pause is there: "Then" starts at least 2 s after "now".
    assert dict((w, t) for t, w in local_words)["Then"] - dict((w, t) for t, w in local_words)["now"] > 2.0
    for name, (seconds, said, reported) in results.items():
        # Identical in-process; through the daemon the chunks may be cut
        # elsewhere (its first chunk follows its measured speed), so lengths
        # agree within the seams' pauses.
        tolerance = 0.002 if name.endswith("--local") else 0.6
        assert abs(seconds - local_s) <= tolerance, (name, results)
        assert [w for _, w in said] == [w for _, w in local_words], (name, results)
        assert reported, (name, "the emoji was not reported")
