"""Chapters: their marks on the audio timeline, and where they are written.

m4a carries chapters in the container (PyAV's ``set_chapters``, written by
the writer). mp3 gets an ID3v2 tag with CHAP frames and a CTOC (the ID3v2
Chapter addendum, read by podcast and audiobook players), added with mutagen
once the audio is complete. Every other format gets a ``.chapters.txt`` next
to it: one ``HH:MM:SS.mmm Title`` line per chapter, the form video sites and
players take as a chapter list.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

_UNSAFE = re.compile(r"[^\w\- .,'()&]+")
MAX_NAME_CHARS = 80


@dataclass
class Chapter:
    index: int  # 1, 2, 3...
    title: str
    start: int  # samples, on the output timeline
    end: int = -1  # samples; -1 while the chapter is being spoken


def safe_name(title: str, index: int, width: int = 2) -> str:
    """``"03 The Storm"`` for chapter 3 titled "The Storm!": numbered, and only
    characters every filesystem takes (no path separators, no control
    characters, no leading dot)."""
    text = unicodedata.normalize("NFKC", title)
    text = _UNSAFE.sub(" ", text)
    text = " ".join(text.split()).strip(" .")[:MAX_NAME_CHARS].rstrip(" .")
    number = f"{index:0{width}d}"
    return f"{number} {text}" if text else number


def clock(samples: int, sample_rate: int) -> str:
    ms = samples * 1000 // sample_rate
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def chapters_file(audio_path: Path) -> Path:
    return audio_path.with_name(audio_path.name + ".chapters.txt")


def write_chapter_list(path: Path, chapters: list[Chapter], sample_rate: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for ch in chapters:
            out.write(f"{clock(ch.start, sample_rate)} {ch.title}\n")


def tag_mp3(path: Path, chapters: list[Chapter], sample_rate: int, lead_samples: int = 0,
            title: str | None = None) -> bool:
    """Add ID3v2 CHAP/CTOC frames (times in ms, shifted by the encoder's
    priming, which mp3 decoders play before the audio). False when mutagen
    is not installed (the caller then writes a chapter list instead)."""
    try:
        from mutagen.id3 import CHAP, CTOC, ID3, TIT2, CTOCFlags
    except ImportError:
        return False
    tags = ID3()
    ids = [f"ch{ch.index}" for ch in chapters]
    tags.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                  sub_frames=[TIT2(text=[title or "Chapters"])]))
    for ch, eid in zip(chapters, ids):
        start_ms = (ch.start + lead_samples) * 1000 // sample_rate
        end_ms = (max(ch.end, ch.start) + lead_samples) * 1000 // sample_rate
        tags.add(CHAP(element_id=eid, start_time=start_ms, end_time=end_ms,
                      sub_frames=[TIT2(text=[ch.title])]))
    tags.save(str(path))  # mutagen inserts the tag at the file's start
    return True
