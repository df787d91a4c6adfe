"""Loading the text pipeline without torch: ``torch_blocked``.

A leaf of its own because the English G2P (text) needs it while spaCy is
imported, and the engines re-export it; text must not import the engines.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator


@contextlib.contextmanager
def torch_blocked() -> Iterator[None]:
    """Inside the block ``import torch`` raises ImportError, unless torch is
    already imported (then nothing changes: the torch engine is unaffected).

    The mechanism is the import system's documented one: a ``None`` entry in
    ``sys.modules`` makes an import of that name raise ModuleNotFoundError.
    Libraries that treat torch as optional (thinc: ``thinc/compat.py`` tries
    ``import torch`` and sets ``has_torch = False`` on ImportError; thinc has no
    environment variable or setting for this) then take their torch-free path,
    and keep it: they decide once, at their own import. The entry is removed on
    exit, so a torch engine loaded later in the same process imports torch as usual.
    """
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
