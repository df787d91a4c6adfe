"""`kokorod say` flags for narration: which path runs, names, formats, the bar."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kokorod.cli import build_parser
from kokorod.errors import InputError
from kokorod.narrate.command import _targets, wants_narration
from kokorod.narrate.job import Progress
from kokorod.narrate.progress import ProgressBar
from kokorod.narrate.writer import format_for


def say(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["say", *argv])


def test_which_say_narrates() -> None:
    assert not wants_narration(say("Hello"))
    assert not wants_narration(say("Hello", "-o", "x.wav"))
    assert not wants_narration(say("Hello", "--words"))  # words in time with playback, as before
    assert wants_narration(say("Hello", "-o", "x.mp3"))  # used to write WAV data into x.mp3
    assert wants_narration(say("-f", "book.md"))
    assert wants_narration(say("Hello", "-o", "x.wav", "--captions", "x.vtt"))
    assert wants_narration(say("-f", "-", "-o", "x.ogg", "--split-chapters", "--quiet"))


def test_formats_from_the_extension_or_the_flag() -> None:
    assert [format_for(f"a.{e}") for e in ("wav", "MP3", "opus", "ogg", "flac", "m4a", "aac")] == \
        ["wav", "mp3", "opus", "opus", "flac", "m4a", "aac"]
    assert format_for("book.audio", "flac") == "flac"
    with pytest.raises(InputError, match="extension"):
        format_for("book.txt")
    with pytest.raises(SystemExit):
        say("-f", "b.md", "--format", "xyz")


def test_split_chapter_names(tmp_path: Path) -> None:
    args = say("-f", "b.md", "-o", str(tmp_path / "book.m4a"), "--captions", str(tmp_path / "book.srt"),
               "--words-json", str(tmp_path / "w.json"), "--split-chapters")
    targets = _targets(args, "m4a")(3, "The Storm: part 2/3")
    assert targets.audio == tmp_path / "book" / "03 The Storm part 2 3.m4a"
    assert targets.captions == tmp_path / "book" / "03 The Storm part 2 3.srt"
    assert targets.words == tmp_path / "book" / "03 The Storm part 2 3.words.json"


def test_bad_paths_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=".vtt or .srt"):
        _targets(say("-f", "b.md", "-o", str(tmp_path / "b.mp3"), "--captions", str(tmp_path / "b.txt")), "mp3")
    with pytest.raises(InputError, match="does not exist"):
        _targets(say("-f", "b.md", "-o", str(tmp_path / "nope" / "b.mp3")), "mp3")


def test_the_bar_is_quiet_off_a_terminal_and_with_quiet() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not ProgressBar(quiet=False, sample_rate=24000, stream=io.StringIO()).enabled
    assert not ProgressBar(quiet=True, sample_rate=24000, stream=Tty()).enabled
    tty = Tty()
    with ProgressBar(quiet=False, sample_rate=24000, stream=tty) as bar:
        bar.update(Progress(bytes_done=50, bytes_total=200, audio_samples=24000 * 90, render_s=30, chapter="One"))
        bar.message("not spoken: 🙂")
    shown = tty.getvalue()
    assert "25%" in shown and "0:01:30 audio" in shown and "3.0x real time" in shown and "not spoken" in shown


def test_help_shows_a_narration_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        say("--help")
    assert "kokorod say -f book.md -o book.mp3 --captions book.vtt" in capsys.readouterr().out
