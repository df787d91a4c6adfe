"""misaki's English lexicon, with its dicts packed and memory-mapped.

misaki's ``Lexicon.__init__`` reads ``{us,gb}_{gold,silver}.json`` into Python
dicts (after ``grow_dictionary`` adds capitalised forms). We build the same
mappings once, pack them (``packed_dict``) into the asset cache, keyed by the
JSON files' bytes and misaki's version, and map them on every later start. The
lexicon's code (its rules for stems, numbers, stress) is misaki's, untouched:
only where the words are kept changes.

With a cache that cannot be written, the mappings are packed in memory: the
packed form is about a quarter of the dicts' size, for ~0.7 s of start-up per
accent. With no cache directory at all (a bare ``G2PBank()``, as unit tests
build it) misaki's own dicts are used.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
from pathlib import Path
from typing import Any

from kokorod.text.g2p.packed_dict import PackedDict

log = logging.getLogger(__name__)
PACKED_DIR = "lexicon"
PACK_VERSION = 1


def _misaki_version() -> str:
    try:
        return importlib.metadata.version("misaki")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _packed(name: str, cache_dir: Path | None) -> PackedDict:
    from misaki import data, en

    raw = importlib.resources.files(data).joinpath(name).read_bytes()
    digest = hashlib.sha256(raw + f"|{_misaki_version()}|{PACK_VERSION}".encode()).hexdigest()[:20]
    path = cache_dir / PACKED_DIR / f"misaki-{Path(name).stem}-{digest}.packed" if cache_dir else None
    if path is not None and path.is_file():
        try:
            return PackedDict.open(path)
        except (OSError, ValueError) as exc:  # damaged: build it again
            log.warning("packed lexicon %s unusable (%s); rebuilding it", path.name, type(exc).__name__)
    packed = PackedDict.pack(en.Lexicon.grow_dictionary(json.loads(raw)))
    if path is not None:
        try:
            packed.save(path)
            return PackedDict.open(path)
        except OSError as exc:  # a read-only or full cache only costs memory
            log.warning("cannot keep the packed lexicon in %s: %s", path.parent, exc)
    return packed


def misaki_lexicon(british: bool, cache_dir: Path | None) -> Any:
    """A ``misaki.en.Lexicon`` for the accent whose gold and silver words are packed."""
    from misaki import en

    if cache_dir is None:
        return en.Lexicon(british)

    class _PackedLexicon(en.Lexicon):  # type: ignore[misc]
        def __init__(self) -> None:  # what misaki's __init__ sets, from the packed words
            self.british = british
            self.cap_stresses = (0.5, 2)
            prefix = "gb" if british else "us"
            self.golds = _packed(f"{prefix}_gold.json", cache_dir)
            self.silvers = _packed(f"{prefix}_silver.json", cache_dir)

    return _PackedLexicon()
