"""Giving freed heap back to the OS (a leaf: the daemon's warm-up and the engine
measurement both use it)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def release_free_heap() -> None:
    """Hand the heap that loading freed back to the OS (glibc only).

    Parsing misaki's JSON lexicons and spaCy's pipeline leaves megabytes of
    freed but still resident heap (13 MB measured on the reference box), which
    glibc only returns on malloc_trim. Elsewhere this is a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # musl and others: nothing to trim with
        pass
