"""``kokorod say`` and ``kokorod pipe``.

Both use the running daemon when one answers at ``--url`` and otherwise
synthesize in this process through ``kokorod.speech.local``, the same plan →
render → timeline steps the daemon's session runs, so the audio is the same either way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, TextIO

from kokorod.engine.base import SAMPLE_RATE
from kokorod.errors import InputError
from kokorod.speech.local import speak_local, warning_line
from kokorod.speech.synthesizer import check_speed
from kokorod.speech.chunk import Word


def _validate(args: argparse.Namespace) -> None:
    check_speed(args.speed)
    if args.output is not None and Path(args.output).parent and not Path(args.output).expanduser().parent.exists():
        raise InputError(f"directory {Path(args.output).parent} does not exist", "create it or pick another -o path")


def _print_words(words: Iterable[Word], out: TextIO | None = None) -> None:
    for w in words:  # sys.stdout looked up now, not when this module was imported
        print(f"{w.start / SAMPLE_RATE:8.3f} {w.end / SAMPLE_RATE:8.3f}  {w.text}", file=out or sys.stdout)


def run_say(args: argparse.Namespace) -> int:
    from kokorod.narrate.command import run_narrate, wants_narration

    text = args.text
    if getattr(args, "file", None) and text:
        raise InputError("give the text either as an argument or with -f, not both", "drop one of them")
    if wants_narration(args):  # a file in, or compressed audio, captions, chapters out
        check_speed(args.speed)
        return run_narrate(args)
    if not text or not text.strip():
        raise InputError("there is no text to speak", 'pass some text, e.g. kokorod say "Hello", or -f book.md')
    _validate(args)
    if not args.local:
        from kokorod.remote import try_remote_say

        handled = try_remote_say(args)
        if handled is not None:
            return handled
    return _say_local(args, text)


def _say_local(args: argparse.Namespace, text: str) -> int:
    from kokorod.audio.wav import write_wav
    from kokorod.runtime import EngineOptions, build_synthesizer

    synth = build_synthesizer(EngineOptions.from_args(args))
    voice = args.voice or "af_heart"
    synth.check_voice(voice)
    speech = speak_local(synth, text, voice=voice, speed=args.speed, lang=args.lang)
    for warn in speech.warnings:
        print(warning_line(warn.code, warn.text, warn.message), file=sys.stderr)
    if args.output is None:
        from kokorod.playback import play_or_none

        if play_or_none(speech.audio, SAMPLE_RATE, speech.words if args.words else None):
            return 0
        args.output = "kokorod-say.wav"
        print(f"no sound device; writing {args.output}", file=sys.stderr)
    write_wav(args.output, speech.audio, SAMPLE_RATE)
    print(f"wrote {args.output} ({speech.duration_s:.2f} s, {len(speech.words)} words)")
    _print_words(speech.words)
    return 0


def run_pipe(args: argparse.Namespace) -> int:
    _validate(args)
    from kokorod.remote import run_remote_pipe

    return run_remote_pipe(args)
