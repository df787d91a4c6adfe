"""Where kokorod keeps the assets it assembles (model, voices)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_ENV = "KOKOROD_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$KOKOROD_CACHE_DIR``, else the platform's per-user cache directory."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "kokorod"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "kokorod"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return path.resolve()
