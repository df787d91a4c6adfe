"""Logging: readable text by default, one JSON object per line with --log-json.

A record may carry structured data as ``extra={"event": "utterance", "fields": {...}}``:
the text form is whatever the message says, the JSON form gets ``msg`` = the event
name and every field as a top-level key, so log pipelines need no parsing.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})


class _JsonFormatter(logging.Formatter):
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
    handler.setFormatter(_JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # library warnings go through the same formatter
    # websockets logs every failed handshake at INFO; that is our 401s, already
    # counted. At DEBUG it would also log request headers, tokens included, so
    # it stays at WARNING even with --verbose.
    logging.getLogger("websockets").setLevel(logging.WARNING)
