"""Narration through a running daemon: not yet (issue 20); narration runs in-process."""

from __future__ import annotations

import argparse
from typing import Any


def connect_renderer(args: argparse.Namespace) -> Any:
    return None
