"""``kokorod say``: speak text, or narrate a file (kokorod.narrate).

It uses the running daemon when one answers at ``--url`` and otherwise
synthesizes in this process through ``kokorod.speech.local``, the same plan →
render → timeline steps the daemon's session runs, so the audio is the same either way.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, TextIO

from kokorod.cli.options import add_client_args, add_engine_args, add_speech_args, check_client_args
from kokorod.errors import InputError
from kokorod.model_facts import SAMPLE_RATE
from kokorod.speech.chunk import Word

SAY_EPILOG = """narrate a book (Markdown headings become chapters):
  kokorod say -f book.md -o book.mp3 --captions book.vtt --words-json book.json
  kokorod say -f book.md -o book.m4a --split-chapters   # book/01 Title.m4a, book/02 ...
  cat article.txt | kokorod say -f - -o article.opus --quiet
the format follows -o's extension: .wav .mp3 .opus .ogg .flac .m4a .aac (or --format).
Ctrl-C keeps a playable file of everything spoken so far and says where it stopped."""


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from kokorod.narrate.options import add_narrate_args

    p = sub.add_parser("say", help="speak text or narrate a file (through the daemon when it runs, else in-process)",
                       description="Speak text, or narrate a text or Markdown file of any length into an audio file "
                       "with captions and chapters.", epilog=SAY_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", nargs="?", default=None, help="the text to speak (or use -f)")
    add_client_args(p)
    add_narrate_args(p)
    add_speech_args(p)
    add_engine_args(p)
    p.set_defaults(handler=run_say)


def _print_words(words: Iterable[Word], out: TextIO | None = None) -> None:
    for w in words:  # sys.stdout looked up now, not when this module was imported
        print(f"{w.start / SAMPLE_RATE:8.3f} {w.end / SAMPLE_RATE:8.3f}  {w.text}", file=out or sys.stdout)


def run_say(args: argparse.Namespace) -> int:
    from kokorod.narrate.command import run_narrate, wants_narration
    from kokorod.speech.synthesizer import check_speed

    text = args.text
    if getattr(args, "file", None) and text:
        raise InputError("give the text either as an argument or with -f, not both", "drop one of them")
    if wants_narration(args):  # a file in, or compressed audio, captions, chapters out
        check_speed(args.speed)
        return run_narrate(args)
    if not text or not text.strip():
        raise InputError("there is no text to speak", 'pass some text, e.g. kokorod say "Hello", or -f book.md')
    check_client_args(args)
    if not args.local:
        from kokorod.cli.via_daemon import try_remote_say

        handled = try_remote_say(args)
        if handled is not None:
            return handled
    return _say_local(args, text)


def _say_local(args: argparse.Namespace, text: str) -> int:
    from kokorod.audio.wav import write_wav
    from kokorod.speech.build import EngineOptions, build_synthesizer
    from kokorod.speech.local import speak_local, warning_line

    synth = build_synthesizer(EngineOptions.from_args(args))
    voice = args.voice or "af_heart"
    synth.check_voice(voice)
    speech = speak_local(synth, text, voice=voice, speed=args.speed, lang=args.lang)
    for warn in speech.warnings:
        print(warning_line(warn.code, warn.text, warn.message), file=sys.stderr)
    if args.output is None:
        from kokorod.audio.playback import play_or_none

        if play_or_none(speech.audio, SAMPLE_RATE, speech.words if args.words else None):
            return 0
        args.output = "kokorod-say.wav"
        print(f"no sound device; writing {args.output}", file=sys.stderr)
    write_wav(args.output, speech.audio, SAMPLE_RATE)
    print(f"wrote {args.output} ({speech.duration_s:.2f} s, {len(speech.words)} words)")
    _print_words(speech.words)
    return 0
