"""The language detector's model, kept memory-mapped in the asset cache.

py3langid decompresses its model (``model.npz.xz``) at every load (~1 s) into
process memory; restricted to Kokoro's languages, what stays is ~46 MB, 39 MB
of which is the byte-level automaton (``tk_nextmove``) that walks the text.
Written once, uncompressed, into ``$KOKOROD_CACHE_DIR/langid/`` and mapped
read-only, the same arrays cost only the pages a text's walk touches, and those
pages are file-backed (the kernel can drop and re-read them), and a start-up
loads them in milliseconds.

py3langid's scoring code is used unchanged: the identifier is built with its
own constructor from views of the mapped file (``memoryview`` casts index
exactly as the ``array.array`` and lists it loads).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import mmap
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
CACHE_SUBDIR = "langid"
FORMAT = b"kokorod-langid-1\n"
# (field, typecode for memoryview.cast or numpy dtype, kind)
_ARRAYS = (("nextmove", "I"), ("output", "i"), ("row", "H"), ("ptc", "float16"), ("pc", "float32"))


def _read_packaged(candidates: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(candidates))
    # set_languages keeps the whole 97-language model to allow another
    # set_languages later; we never call it again, and dropping it frees
    # ~28 MB. A private attribute: if a release renames it, nothing breaks.
    if getattr(ident, "_full_model", None) is not None:
        with contextlib.suppress(AttributeError, TypeError):
            ident._full_model = None
    return ident


def _digest(candidates: tuple[str, ...]) -> str:
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    h = hashlib.sha256((MODEL_DIR / MODEL_FILE).read_bytes())
    try:
        version = importlib.metadata.version("py3langid")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    h.update(json.dumps([version, list(candidates), sys.byteorder]).encode())
    return h.hexdigest()[:20]


def _encode(ident: Any) -> bytes:
    arrays = {
        "nextmove": np.asarray(ident.tk_nextmove, dtype=np.uint32),
        "output": np.asarray(ident.tk_output, dtype=np.int32),
        "row": np.asarray(ident.tk_row, dtype=np.uint16),
        "ptc": np.ascontiguousarray(ident.nb_ptc, dtype=np.float16),
        "pc": np.ascontiguousarray(ident.nb_pc, dtype=np.float32),
    }
    header = {"classes": list(ident.nb_classes), "shapes": {k: list(a.shape) for k, a in arrays.items()}}
    head = FORMAT + json.dumps(header).encode() + b"\n"
    parts = [head + b" " * (-len(head) % 8)]
    for name, _ in _ARRAYS:
        data = arrays[name].tobytes()
        parts.append(data + b"\0" * (-len(data) % 8))  # every array 8-byte aligned
    return b"".join(parts)


def _decode(buffer: mmap.mmap) -> Any:
    from py3langid.langid import LanguageIdentifier

    if buffer[:len(FORMAT)] != FORMAT:
        raise ValueError("not a kokorod langid model")
    end = buffer.find(b"\n", len(FORMAT))
    header = json.loads(bytes(buffer[len(FORMAT):end]))
    offset = end + 1
    offset += -offset % 8
    views: dict[str, Any] = {}
    whole = memoryview(buffer)
    for name, code in _ARRAYS:
        shape = header["shapes"][name]
        count = int(np.prod(shape)) if shape else 1
        size = count * np.dtype(code if len(code) > 1 else code).itemsize
        if offset + size > len(buffer):
            raise ValueError("truncated langid model")
        if len(code) == 1:  # indexed one item at a time by py3langid's walk
            views[name] = whole[offset:offset + size].cast(code)
        else:
            views[name] = np.frombuffer(buffer, dtype=code, count=count, offset=offset).reshape(shape)
        offset += size + (-size % 8)
    return LanguageIdentifier(views["ptc"], views["pc"], header["classes"], views["nextmove"], views["output"],
                              norm_probs=True, tk_row=views["row"])


def _open(path: Path) -> Any:
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return _decode(mapped)


def load_identifier(candidates: tuple[str, ...], cache_dir: Path | None) -> Any:
    """py3langid restricted to ``candidates`` (its codes); mapped from the cache
    when there is one, written there on first use. Without a cache, or when it
    cannot be written, py3langid's own in-memory load."""
    if cache_dir is None:
        return _read_packaged(candidates)
    path = cache_dir / CACHE_SUBDIR / f"py3langid-{_digest(candidates)}.model"
    if path.is_file():
        try:
            return _open(path)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("cached language model %s unusable (%s); rebuilding it", path.name, type(exc).__name__)
    ident = _read_packaged(candidates)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".langid-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_encode(ident))
            os.replace(tmp, path)  # atomic: a concurrent start sees all of it or nothing
        finally:
            Path(tmp).unlink(missing_ok=True)
        return _open(path)
    except (OSError, ValueError) as exc:  # read-only or full cache: memory, not failure
        log.warning("cannot keep the language model in %s: %s", path.parent, exc)
        return ident
