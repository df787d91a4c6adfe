"""`kokorod say -f` through a running daemon: the same files as in-process
(audio with chapters, captions), each segment one utterance on the daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from support.asr import normalize_words, transcribe, word_error_rate
from support.daemon import ROOT, DaemonProcess

pytestmark = pytest.mark.slow
TEXT = """# Morning

The bakery on the corner opens at six, and the smell of fresh bread fills the street.

# Evening

When the shop closes, the baker sweeps the floor and counts the coins, humming an old song.
"""


def test_narration_through_the_daemon(tmp_path: Path) -> None:
    book = tmp_path / "day.md"
    book.write_text(TEXT)
    daemon = DaemonProcess()
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("KOKOROD_URL", "KOKOROD_TOKEN")}
        run = subprocess.run([sys.executable, "-m", "kokorod", "say", "-f", str(book), "-o", str(tmp_path / "day.m4a"),
                              "--captions", str(tmp_path / "day.srt"), "--url", daemon.url], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        log = daemon.log()
        import urllib.request

        with urllib.request.urlopen(daemon.http + "/metrics", timeout=10) as r:
            metrics = r.read().decode()
    finally:
        assert daemon.stop() == 0
    assert run.returncode == 0, run.stderr
    assert "utterance=narrate-" in log  # spoken by the daemon, not in-process
    # As background requests: engine time no live stream needs, no stream slot.
    background_s = [float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("kokorod_background_audio_seconds_total")]
    assert background_s and background_s[0] > 5, background_s
    with av.open(str(tmp_path / "day.m4a")) as c:
        titles = [ch["metadata"]["title"] for ch in c.chapters()]
        audio = [f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])]
    assert titles == ["Morning", "Evening"]
    import numpy as np

    heard, _ = transcribe(np.concatenate(audio))
    expected = "Morning. " + TEXT.split("\n")[2] + " Evening. " + TEXT.split("\n")[6]
    assert word_error_rate(normalize_words(expected), normalize_words(heard)) <= 0.25, heard
    srt = (tmp_path / "day.srt").read_text()
    assert srt.startswith("1\n00:00:00,") and "humming an old song." in srt
