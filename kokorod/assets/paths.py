"""Where kokorod keeps the assets it assembles (model, voices)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

CACHE_ENV = "KOKOROD_CACHE_DIR"


def expand_home(value: str, home: Path) -> Path:
    # Expand ~ against the given home (the service installer and tests pass one).
    if value == "~" or value.startswith("~/"):
        value = str(home) + value[1:]
    return Path(os.path.abspath(value))


def default_cache_dir(
    platform: str | None = None, home: Path | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """``$KOKOROD_CACHE_DIR``, else the platform's per-user cache directory.

    Parameters default to this process's; the service installer passes them so
    the path it pins for launchd/systemd (which do not see the shell's
    environment) is resolved the same way.
    """
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return expand_home(env[CACHE_ENV], home)
    if platform == "darwin":
        return home / "Library" / "Caches" / "kokorod"
    xdg = env.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec says to ignore relative values
        return Path(xdg) / "kokorod"
    return home / ".cache" / "kokorod"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return path.resolve()
