"""The narration flags of ``kokorod say`` (kept with narration, so kokorod.cli.say stays small)."""

from __future__ import annotations

import argparse

from kokorod.narrate.writer import FORMATS


def add_narrate_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("narration (a file in, an audio file out)")
    g.add_argument("-f", "--file", default=None, metavar="PATH",
                   help="read the text (plain or Markdown, any length) from PATH; - for stdin "
                   "(default output: PATH's name with .mp3)")
    g.add_argument("--format", default=None, choices=FORMATS, help="audio format (default: from -o's extension)")
    g.add_argument("--captions", default=None, metavar="OUT.vtt|OUT.srt",
                   help="write subtitles: cues of at most 2 lines of ~42 characters and ~7 s")
    g.add_argument("--words-json", default=None, metavar="OUT.json",
                   help="write every word with its start and end (the text as written)")
    g.add_argument("--split-chapters", action="store_true",
                   help="one file per Markdown heading, numbered and named after it, in a folder named after -o")
    g.add_argument("--quiet", action="store_true", help="no progress bar (it is off anyway when stderr is not a terminal)")
