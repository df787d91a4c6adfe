"""The one-line status ``say`` and ``pipe`` show on stderr, and how they report
text not spoken; both the same whichever side synthesizes."""

from __future__ import annotations

import sys
from typing import Any


class Console:
    """A one-line status on stderr when it is a terminal; silent otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self._err = stream or sys.stderr
        self.enabled = bool(getattr(self._err, "isatty", lambda: False)())
        self._shown = ""

    def status(self, text: str) -> None:
        if self.enabled:
            self._shown = "kokorod: " + text
            self._err.write("\r\x1b[K" + self._shown)
            self._err.flush()

    def clear(self) -> None:
        """Blank the line so other output (words on the same terminal) starts clean."""
        if self.enabled and self._shown:
            self._err.write("\r\x1b[K")
            self._err.flush()
            self._shown = ""

    def end(self) -> None:
        if self.enabled and self._shown:
            self._err.write("\n")
            self._err.flush()
            self._shown = ""


def report_warnings(console: Console, warnings: Any) -> None:
    """As ``say --local`` does: every piece of text not spoken (or a markup
    note), on stderr, from the daemon's ``warning`` events or the in-process
    pipeline's ``Warn`` steps alike."""
    from kokorod.speech.local import warning_line

    for warn in warnings:
        console.clear()
        print(warning_line(warn.code, warn.text, warn.message), file=sys.stderr)
