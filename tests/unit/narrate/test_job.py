"""Narration jobs with a fake engine: every format decodes, chapters land
where the headings are, and Ctrl-C or a failure mid-way leaves valid files."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from kokorod.narrate.chapters import Chapter, safe_name
from kokorod.narrate.job import CHAPTER_GAP_MS, Narration
from kokorod.narrate.outputs import Outputs, Targets
from kokorod.narrate.reader import read_blocks
from kokorod.narrate.writer import EXTENSIONS, AudioWriter, format_for
from kokorod.text.languages import resolve
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment
from kokorod.speech.chunk import Word

RATE = 24000
WORD_SAMPLES = 4800  # 0.2 s a word
# A frame of the longest codec (AAC, 1024) plus its priming: the decoders' slack.
SLACK = 1024 + 1105


def decode(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return sum(f.samples for f in c.decode(stream)), stream.rate


class FakeRenderer:
    """A tone per word; raises ``fail`` at the ``fail_at``-th segment."""

    def __init__(self, fail_at: int | None = None, fail: BaseException | None = None) -> None:
        self.calls, self.fail_at, self.fail = 0, fail_at, fail

    def render(self, segment: Segment, last: bool) -> tuple[np.ndarray, list[Word], list[str]]:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise self.fail or RuntimeError("engine failed")
        texts = [w.strip("#*.,!?“”\"") for w in segment.spoken.split()]
        texts = [t for t in texts if t]
        words = [Word(t, i * WORD_SAMPLES, (i + 1) * WORD_SAMPLES) for i, t in enumerate(texts)]
        t = np.arange(len(texts) * WORD_SAMPLES) / RATE
        return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), words, []


BOOK = "".join(f"# Chapter {c}\n\n" + "".join(f"Sentence {s} of chapter {c} is here. " for s in range(6)) + "\n\n"
               for c in range(1, 4))


def run(tmp_path: Path, ext: str, renderer: FakeRenderer, *, split: bool = False, text: str = BOOK,
        captions: str | None = "vtt") -> Narration:
    def open_outputs(index: int, title: str) -> Outputs:
        name = safe_name(title, index) if split else "book"
        return Outputs(Targets(tmp_path / f"{name}.{ext}", format_for(f"x.{ext}"),
                               tmp_path / f"{name}.{captions}" if captions else None,
                               tmp_path / f"{name}.json"), RATE)

    job = Narration(read_blocks(text.encode().splitlines(keepends=True)), renderer,
                    lambda: segmenter_for(resolve("en-us")), open_outputs, sample_rate=RATE, split=split,
                    title="book", bytes_total=len(text))
    job.run()
    return job


@pytest.mark.parametrize("ext", sorted(EXTENSIONS))
def test_each_format_decodes_at_its_length(tmp_path: Path, ext: str) -> None:
    job = run(tmp_path, ext, FakeRenderer())
    n, rate = decode(tmp_path / f"book.{ext}")
    expected = job.summary.audio_samples * rate // RATE
    assert expected <= n <= expected + SLACK * rate // RATE
    assert job.summary.finished and job.summary.chapters == 3


def test_captions_and_words_agree_with_the_timeline(tmp_path: Path) -> None:
    job = run(tmp_path, "wav", FakeRenderer(), captions="srt")
    words = json.loads((tmp_path / "book.json").read_text())["words"]
    assert len(words) == job.summary.words
    assert all(a["end_sample"] <= b["start_sample"] for a, b in zip(words, words[1:]))
    assert words[-1]["end_sample"] <= job.summary.audio_samples
    srt = (tmp_path / "book.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ") and "Chapter 2" in srt and srt.count(" --> ") >= 6
    assert "is here." in srt  # punctuation from the written text


def test_chapters_in_m4a_and_mp3_else_a_list(tmp_path: Path) -> None:
    run(tmp_path, "m4a", FakeRenderer())
    with av.open(str(tmp_path / "book.m4a")) as c:
        chapters = c.chapters()
    assert [ch["metadata"]["title"] for ch in chapters] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert chapters[0]["start"] == 0 and chapters[1]["start"] > 0
    run(tmp_path, "mp3", FakeRenderer())
    mutagen = pytest.importorskip("mutagen.id3")
    tags = mutagen.ID3(str(tmp_path / "book.mp3"))
    assert sorted(k for k in tags.keys() if k.startswith("CHAP")) == ["CHAP:ch1", "CHAP:ch2", "CHAP:ch3"]
    assert decode(tmp_path / "book.mp3")[0] > 0  # the tag does not stop decoding
    run(tmp_path, "flac", FakeRenderer())
    listing = (tmp_path / "book.flac.chapters.txt").read_text().splitlines()
    assert listing[0] == "00:00:00.000 Chapter 1" and listing[1].endswith(" Chapter 2")


def test_chapter_starts_are_where_the_heading_is_spoken(tmp_path: Path) -> None:
    job = run(tmp_path, "wav", FakeRenderer())
    words = json.loads((tmp_path / "book.json").read_text())["words"]
    listing = (tmp_path / "book.wav.chapters.txt").read_text().splitlines()
    assert len(listing) == 3 and job.summary.chapters == 3
    second = next(w for w in words if w["text"] == "Chapter" and w["start"] > 0)
    gap = CHAPTER_GAP_MS * RATE // 1000
    # The chapter mark is right after the gap before the heading's first word.
    assert second["start_sample"] - gap <= int(float(listing[1].split()[0][-6:]) * RATE) + RATE


def test_split_chapters_writes_one_file_each(tmp_path: Path) -> None:
    run(tmp_path, "opus", FakeRenderer(), split=True, text="Preface text.\n\n" + BOOK)
    names = sorted(p.name for p in tmp_path.glob("*.opus"))
    assert names == ["01 book.opus", "02 Chapter 1.opus", "03 Chapter 2.opus", "04 Chapter 3.opus"]
    for name in names:
        assert decode(tmp_path / name)[0] > 0
    assert (tmp_path / "02 Chapter 1.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000")


@pytest.mark.parametrize("ext", ["mp3", "m4a", "wav", "flac", "opus"])
@pytest.mark.parametrize("fail", [KeyboardInterrupt(), RuntimeError("engine failed")], ids=["ctrl-c", "failure"])
def test_interrupted_midway_leaves_valid_files(tmp_path: Path, ext: str, fail: BaseException) -> None:
    renderer = FakeRenderer(fail_at=9, fail=fail)
    blocks = read_blocks(BOOK.encode().splitlines(keepends=True))
    job = Narration(blocks, renderer, lambda: segmenter_for(resolve("en-us")),
                    lambda i, t: Outputs(Targets(tmp_path / f"book.{ext}", format_for(f"b.{ext}"),
                                                 tmp_path / "book.vtt", tmp_path / "book.json"), RATE),
                    sample_rate=RATE)
    with pytest.raises(type(fail)):
        job.run()
    summary = job.summary
    assert not summary.finished and summary.audio_samples > 0
    n, rate = decode(tmp_path / f"book.{ext}")
    assert n >= summary.audio_samples * rate // RATE
    json.loads((tmp_path / "book.json").read_text())  # closed valid
    assert (tmp_path / "book.vtt").read_text().startswith("WEBVTT")
    # Where it stopped: the text of the segment not spoken, at its offset in the book.
    assert summary.stopped_at is not None and summary.stopped_text
    assert " ".join(BOOK[summary.stopped_at:].split()).startswith(summary.stopped_text)


def test_safe_names() -> None:
    assert safe_name("The Storm!", 3) == "03 The Storm"
    assert safe_name("../../etc/passwd", 1) == "01 etc passwd"
    assert safe_name("   ", 12) == "12"
    assert "/" not in safe_name("a/b\\c:d*e?f", 1)


def test_writer_without_chapters_writes_no_list(tmp_path: Path) -> None:
    w = AudioWriter(tmp_path / "x.flac", "flac", RATE)
    w.write(np.zeros(1000, np.float32))
    assert w.close([Chapter(1, "only", 0)]) == []
    assert w.close() == []  # idempotent


class QuickRenderer:
    """A short burst of noise per word: enough audio that holding it would show."""

    def __init__(self, samples_per_word: int) -> None:
        self.n = samples_per_word
        self.noise = (np.random.default_rng(1).random(samples_per_word * 64, np.float32) - 0.5) * 0.1

    def render(self, segment: Segment, last: bool) -> tuple[np.ndarray, list[Word], list[str]]:
        texts = [t for t in (w.strip(".,") for w in segment.spoken.split()) if t]
        words = [Word(t, i * self.n, (i + 1) * self.n) for i, t in enumerate(texts)]
        reps = -(-len(texts) * self.n // self.noise.size)
        return np.tile(self.noise, reps)[:len(texts) * self.n], words, []


@pytest.mark.slow
def test_a_100000_word_book_runs_in_flat_memory(tmp_path: Path) -> None:
    sentence = "The river ran quietly under the old stone bridge, and the birds sang. "
    chapter = "".join(sentence for _ in range(400)) + "\n\n"  # 5200 words
    book = tmp_path / "book.md"
    with book.open("w") as f:
        for c in range(20):
            f.write(f"# Chapter {c + 1}\n\n")
            for _ in range(4):
                f.write(chapter[:len(chapter) // 4] + "\n\n")
    samples_per_word = 300  # 30 M samples: 120 MB if the job held its audio
    rss: dict[int, float] = {}

    def on_progress(p) -> None:  # type: ignore[no-untyped-def]
        done = 100 * p.bytes_done / p.bytes_total
        for mark in (10, 90):
            if mark not in rss and done >= mark:
                rss[mark] = rss_mb()

    from kokorod.narrate.reader import open_source

    source = open_source(str(book))
    job = Narration(read_blocks(source.lines()), QuickRenderer(samples_per_word),
                    lambda: segmenter_for(resolve("en-us")),
                    lambda i, t: Outputs(Targets(tmp_path / "book.wav", "wav", tmp_path / "book.srt",
                                                 tmp_path / "book.json"), RATE),
                    sample_rate=RATE, bytes_total=source.size, on_progress=on_progress)
    summary = job.run()
    source.close()
    assert summary.words >= 100_000 and summary.chapters == 20
    assert summary.audio_samples >= 100_000 * samples_per_word
    assert rss[90] - rss[10] < 40, rss


def rss_mb() -> float:
    """This process's resident memory (VmRSS, Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")
