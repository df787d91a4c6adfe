"""Logging: readable text by default, one JSON object per line with --log-json.

A record may carry structured data as ``extra={"event": "utterance", "fields": {...}}``:
the text form is whatever the message says, the JSON form gets ``msg`` = the event
name and every field as a top-level key, so log pipelines need no parsing.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})


# Messages that carry no user text: system errors (a path, an errno).
_MESSAGE_KEPT = (OSError,)
_WITHHELD = "(message withheld: it may quote the text being spoken)"


def redacted_traceback(exc: BaseException) -> str:
    """A traceback with every exception's message withheld (but ``_MESSAGE_KEPT``)."""
    te = traceback.TracebackException.from_exception(exc)
    part: traceback.TracebackException | None = te
    cur: BaseException | None = exc
    while part is not None and cur is not None:  # the exception, its causes and contexts
        if not isinstance(cur, _MESSAGE_KEPT):
            part._str = _WITHHELD  # what format() prints after the type (private, stable since 3.10)
        if part.__cause__ is not None:
            part, cur = part.__cause__, cur.__cause__
        elif not part.__suppress_context__:
            part, cur = part.__context__, cur.__context__
        else:
            break
    return "".join(te.format()).rstrip("\n")


class _RedactingFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        if not isinstance(exc, BaseException):
            return super().formatException(ei)
        return redacted_traceback(exc)


class _JsonFormatter(_RedactingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        event = getattr(record, "event", None)
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": event if isinstance(fields, dict) and event else record.getMessage(),
        }
        if isinstance(fields, dict):
            for key, value in fields.items():
                # Never let data overwrite the envelope.
                entry[key if key not in _RESERVED else f"field_{key}"] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def kv(fields: dict[str, Any]) -> str:
    """``{"a": 1, "b": None}`` → ``"a=1 b=None"`` (the text form of a field set)."""
    return " ".join(f"{k}={v}" for k, v in fields.items())


def setup_logging(*, json_lines: bool, verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter() if json_lines else _RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # library warnings go through the same formatter
    # websockets logs every failed handshake at INFO; that is our 401s, already
    # counted. At DEBUG it would also log request headers, tokens included, so
    # it stays at WARNING even with --verbose.
    logging.getLogger("websockets").setLevel(logging.WARNING)


class Throttle:
    """At most one log line per ``interval_s`` for a condition that can repeat
    thousands of times a second (a flood at the connection limit, accept
    failures at the fd limit): ``due()`` answers None while the line is held
    back, else the suffix that says how many were held since the last one."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = float("-inf")
        self._held = 0

    def due(self) -> str | None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            self._held += 1
            return None
        more = f" ({self._held} more since the last report)" if self._held else ""
        self._last, self._held = now, 0
        return more
