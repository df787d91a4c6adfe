"""``kokorod say -f book.md -o book.mp3 --captions book.vtt``: the command-line
side of a narration job. Picks the renderer (the daemon when one answers, else
the model in this process), the output names, the progress bar, and turns
Ctrl-C into a clean stop that says where the audio ends in the text.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from kokorod.model_facts import SAMPLE_RATE
from kokorod.errors import InputError
from kokorod.narrate.chapters import safe_name
from kokorod.narrate.job import Narration, Renderer, Summary
from kokorod.narrate.outputs import Outputs, Targets
from kokorod.narrate.progress import ProgressBar
from kokorod.narrate.reader import Block, open_source, read_blocks
from kokorod.narrate.writer import format_for

T = TypeVar("T")
_WORKER_JOIN_S = 30  # after Ctrl-C, how long the synthesis thread may take to notice its cancel token


def wants_narration(args: argparse.Namespace) -> bool:
    """Whether ``say`` runs as a narration job: a file in, or an output that
    is more than a WAV of one text (another format, captions, chapters)."""
    out = args.output
    return bool(getattr(args, "file", None) or getattr(args, "captions", None) or getattr(args, "words_json", None)
                or getattr(args, "split_chapters", False) or getattr(args, "format", None)
                or (out and Path(out).suffix.lower() not in ("", ".wav")))


def _targets(args: argparse.Namespace, fmt: str) -> Callable[[int, str], Targets]:
    audio = Path(args.output).expanduser()
    captions = Path(args.captions).expanduser() if args.captions else None
    words = Path(args.words_json).expanduser() if args.words_json else None
    if captions is not None and captions.suffix.lower() not in (".vtt", ".srt"):
        raise InputError(f"captions must be a .vtt or .srt file, not {captions.name}", "e.g. --captions book.vtt")
    for p in (audio, captions, words):
        if p is not None and not p.parent.exists():
            raise InputError(f"directory {p.parent} does not exist", "create it or pick another path")
    if not args.split_chapters:
        return lambda _index, _title: Targets(audio, fmt, captions, words)
    folder = audio.with_suffix("")  # book.mp3 -> book/01 Title.mp3, book/02 ....mp3
    folder.mkdir(exist_ok=True)

    def per_chapter(index: int, title: str) -> Targets:
        name = safe_name(title, index)
        return Targets(folder / (name + audio.suffix), fmt,
                       folder / (name + captions.suffix) if captions else None,
                       folder / (name + ".words.json") if words else None)

    return per_chapter


def _text_blocks(text: str) -> Iterator[Block]:
    """A text given as an argument, through the same reader as a file."""
    data = text.encode("utf-8")
    return read_blocks(line + b"\n" for line in data.split(b"\n"))


def run_narrate(args: argparse.Namespace) -> int:
    if not args.file and not (args.text or "").strip():
        raise InputError("there is no text to speak", "pass some text, or a file with -f")
    if args.output is None:
        stem = Path(args.file).stem if args.file and args.file != "-" else "narration"
        args.output = stem + ".mp3"
    fmt = format_for(args.output, args.format)
    targets = _targets(args, fmt)
    source = open_source(args.file) if args.file else None
    blocks = read_blocks(source.lines()) if source else _text_blocks(args.text)
    title = Path(source.name).stem if source and source.name != "stdin" else ""
    renderer = _renderer(args)
    bar = ProgressBar(quiet=args.quiet, sample_rate=SAMPLE_RATE)
    job = Narration(blocks, renderer, renderer.segmenter, lambda i, t: Outputs(targets(i, t), SAMPLE_RATE),
                    sample_rate=SAMPLE_RATE, split=args.split_chapters, title=title,
                    bytes_total=source.size if source else None, report=bar.message, on_progress=bar.update)
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kokorod-narrate")
    try:
        with bar:
            summary = job.run(_off_thread(pool, renderer))
    except KeyboardInterrupt:
        _stopped(job.summary, "interrupted")
        raise
    except BaseException:
        _stopped(job.summary, "failed")
        raise
    finally:
        pool.shutdown(wait=True)  # a cancelled render returns within one model call: no thread left behind
        renderer.close()
        if source:
            source.close()
    if not summary.files:  # no audio was made, so no file was opened
        raise InputError("nothing in this text can be spoken", "check the text, or pick its language with --lang")
    _wrote(summary)
    return 0


def _off_thread(pool: concurrent.futures.ThreadPoolExecutor, renderer: Any) -> Callable[[Callable[[], T]], T]:
    """Run each render on the worker thread and wait for it in small steps, so
    Ctrl-C interrupts the wait at once; then cancel the render in flight."""

    def call(fn: Callable[[], T]) -> T:
        future = pool.submit(fn)
        try:
            while True:
                try:
                    return future.result(timeout=0.25)
                except concurrent.futures.TimeoutError:
                    continue
        except BaseException:
            renderer.cancel()
            try:
                future.result(timeout=_WORKER_JOIN_S)
            except BaseException:  # the cancelled render's own error is not news
                pass
            raise

    return call


def _wrote(summary: Summary) -> None:
    seconds = summary.audio_samples / SAMPLE_RATE
    chapters = f", {summary.chapters} chapters" if summary.chapters else ""
    print(f"wrote {', '.join(str(f) for f in summary.files)} ({seconds:.2f} s, {summary.words} words{chapters})")


def _stopped(summary: Summary, how: str) -> None:
    seconds = summary.audio_samples / SAMPLE_RATE
    where = ""
    if summary.stopped_at is not None:
        where = f" at character {summary.stopped_at}"
        if summary.stopped_text:
            where += f' ("{summary.stopped_text}")'
    files = ", ".join(str(f) for f in summary.files) or "nothing"
    print(f"\nkokorod: {how}{where}; kept {files} ({seconds:.2f} s of audio, everything before that point)",
          file=sys.stderr)


def _renderer(args: argparse.Namespace) -> Any:
    if not args.local:
        from kokorod.narrate.remote_renderer import connect_renderer

        remote = connect_renderer(args)
        if remote is not None:
            return remote
    from kokorod.narrate.local_renderer import LocalRenderer

    return LocalRenderer.load(args)


__all__ = ["Renderer", "run_narrate", "wants_narration"]
