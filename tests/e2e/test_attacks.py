"""The daemon against a hostile client's text and a hostile machine at start-up
(issue 18): what an attacker on the local network tried, kept as regression
tests against a real daemon on loopback.

Each test states what it attacks, checks the daemon's answer, that its
resident memory (VmRSS) stays within ``RSS_GROWTH_MB`` of what it was before
the attack, and that a normal request is served after it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.asr import transcribe
from support.daemon import DaemonProcess, Peer, Utterance, check_stream_invariants, words_of
from kokorod.assets.paths import resolve_cache_dir
from kokorod.protocol.messages import Done, Speak, Warning

pytestmark = pytest.mark.slow

# Growth allowed over the daemon's resident memory before an attack: one long
# utterance's buffers and the allocator's slack, far below a leak per request
# or an unbounded buffer (the daemon is ~400 MB once ready).
RSS_GROWTH_MB = 250
NORMAL = "This is a normal request."
LONG_NUMBER = "Call " + "1" * 400 + " now. And then more text after it."


def _rss_checked(daemon: DaemonProcess, before: float, what: str) -> None:
    after = daemon.rss_mb()
    print(f"{what}: VmRSS {before:.0f} MB before, {after:.0f} MB after")
    assert after - before < RSS_GROWTH_MB, (before, after)


async def _speak(daemon: DaemonProcess, uid: str, text: str, timeout: float = 400) -> Utterance:
    peer = await Peer.connect(daemon.url)
    try:
        await peer.send(Speak(uid, text, final=True))
        return await peer.utterance(uid, timeout)
    finally:
        await peer.close()


async def _served_normally(daemon: DaemonProcess) -> None:
    utt = await _speak(daemon, "normal", NORMAL, timeout=180)
    assert isinstance(utt.events[-1], Done), utt.events[-1]
    assert len(utt.audio()) > utt.sample_rate  # more than a second of speech


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    # No pacing: the 400-digit answer (minutes of audio) is made as fast as the
    # model can, so the test does not wait for it to play in real time.
    d = DaemonProcess("--max-ahead-s", "3600")
    yield d
    assert d.stop() == 0, d.log()[-3000:]


async def _baseline(daemon: DaemonProcess) -> float:
    await _served_normally(daemon)  # warm: the first synthesis allocates the model's buffers
    return daemon.rss_mb()


async def test_a_400_digit_number_is_spoken_whole_with_word_events(daemon: DaemonProcess) -> None:
    """Was: num2words' OverflowError failed the utterance (engine_error, only "Call" heard),
    and the traceback logged the digits."""
    before = await _baseline(daemon)
    utt = await _speak(daemon, "digits", LONG_NUMBER, timeout=900)  # ~100 s of speech: 4 min on a loaded 2-core machine
    assert isinstance(utt.events[-1], Done), utt.events[-1]
    check_stream_invariants(utt)
    words = words_of(utt)
    assert "".join(re.findall(r"\d", "".join(w.text for w in words))) == "1" * 400  # every digit has a word event
    assert all(len(re.sub(r"\D", "", w.text)) <= 4 for w in words)  # in groups, not one 400-digit word
    # The words after the number are heard: the tail of the audio, after the last digit group.
    last_digit_end = max(w.end for w in words if re.search(r"\d", w.text))
    audio = utt.audio()
    heard, _ = transcribe(audio[int(last_digit_end * utt.sample_rate):], utt.sample_rate)
    assert {"more", "text", "after"} <= set(re.findall(r"[a-z]+", heard.lower())), heard
    # Digit by digit from the start: the first groups are heard as "one"s. Each
    # group is judged alone. Six seconds of "one one one one, one one one one,
    # ..." compress so well that faster-whisper (our default temperatures) likely falls back to sampling at a
    # higher temperature, and its answer varies from run to run on the same
    # audio: once "C-W-N-N-N…" (a loaded full run), or "11111," (no word "1").
    # One group at a time it heard "1, 1, 1, 1." each time it was tried.
    groups = [w for w in words if re.search(r"\d", w.text)][:3]
    heard_groups = [transcribe(audio[max(0, int((w.start - 0.15) * utt.sample_rate)):
                                     int((w.end + 0.15) * utt.sample_rate)], utt.sample_rate)[0] for w in groups]
    assert any(re.search(r"\b(one|1+)\b", h.lower()) for h in heard_groups), heard_groups
    _rss_checked(daemon, before, "400 digits")
    await _served_normally(daemon)
    assert "1111111111" not in daemon.log()  # no user text in the log, tracebacks included


async def test_angle_bracket_text_is_spoken_or_warned(daemon: DaemonProcess) -> None:
    """Was: "a<b and c>d" and "<Enter>" taken for HTML tags and dropped without a word;
    a comment's content read aloud; private-use characters vanished."""
    before = await _baseline(daemon)
    text = ("If a<b and c>d then stop. Press <Enter> to continue. "
            "<!-- secret hidden note --> Icons \ue000 here <br> end.")
    utt = await _speak(daemon, "angles", text, timeout=180)
    assert isinstance(utt.events[-1], Done), utt.events[-1]
    warned = {w.text for w in utt.of(Warning)}
    assert any("<!-- secret hidden note -->" in t for t in warned), warned
    assert any("\ue000" in t for t in warned) and any("<br>" in t for t in warned), warned
    heard, _ = transcribe(utt.audio(), utt.sample_rate)
    said = set(re.findall(r"[a-z]+", heard.lower()))
    assert {"less", "greater", "enter", "continue"} <= said, heard
    assert not {"secret", "hidden"} & said, heard
    _rss_checked(daemon, before, "angle brackets")
    await _served_normally(daemon)


# ---------------------------------------------------------------- start-up

def _cache_with_links(root: Path) -> Path:
    """A cache directory whose model and voices are the real ones (linked), and
    no graph cache yet: the daemon must write one at start-up."""
    real = resolve_cache_dir(None)
    cache = root / "cache"
    (cache / "voices").mkdir(parents=True)
    for f in real.iterdir():
        if f.is_file():
            (cache / f.name).symlink_to(f)
    for f in (real / "voices").glob("*.bin"):
        (cache / "voices" / f.name).symlink_to(f)
    (cache / "onnx").mkdir()
    return cache


def _tmpfs_prefix(onnx_dir: Path) -> tuple[str, ...] | None:
    """``unshare``: the daemon in its own mount namespace, over a 1 MB tmpfs at
    ``onnx_dir`` (root, or an unprivileged user namespace); None if not allowed here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = (unshare, "--mount", "--map-root-user", "sh", "-c",
              'mount -t tmpfs -o size=1m kokorod-full "$0" && exec "$@"', str(onnx_dir))
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


# A full disk without privileges: no regular file may grow past 1 MB
# (RLIMIT_FSIZE, with SIGXFSZ ignored, so a write fails with EFBIG as on a full
# file system). The daemon's log stays far below; the ~90 MB graph cannot be written.
_FSIZE = textwrap.dedent("""
    import os, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
    os.execv(sys.argv[1], sys.argv[1:])
""")


@pytest.mark.parametrize("how", ["tmpfs", "file-size-limit"])
async def test_a_full_graph_cache_does_not_stop_start_up(how: str, tmp_path: Path) -> None:
    """Was: onnxruntime's InvalidProtobuf while writing the optimised graph made
    `kokorod serve` exit 1 (a restart loop under systemd)."""
    cache = _cache_with_links(tmp_path)
    prefix: tuple[str, ...] | None
    if how == "tmpfs":
        prefix = _tmpfs_prefix(cache / "onnx")
        if prefix is None:
            pytest.skip("no mount namespace here (needs root or unprivileged user namespaces)")
    else:
        prefix = (sys.executable, "-c", _FSIZE)
    d = DaemonProcess("--cache-dir", str(cache), env={"KOKOROD_CACHE_DIR": str(cache)}, prefix=prefix)
    try:
        before = d.rss_mb()
        await _served_normally(d)
        _rss_checked(d, before, f"full graph cache ({how}), from ready")
        log = d.log()
        assert "cannot cache the ONNX graph" in log, log[-3000:]
        assert not list((cache / "onnx").glob("kokoro-*.onnx"))  # nothing half-written was kept
    finally:
        assert d.stop() == 0, d.log()[-3000:]
