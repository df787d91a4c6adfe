"""Logs never carry the text being spoken, tracebacks included."""

from __future__ import annotations

import io
import json
import logging

import pytest

from kokorod import logs

SECRET = "1" * 400  # num2words quotes the number it cannot read


def _failure() -> BaseException:
    try:
        try:
            raise OverflowError(f"abs({SECRET}) must be less than 10**66")
        except OverflowError as exc:
            raise RuntimeError(f"while reading {SECRET}") from exc
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_logged_traceback_withholds_exception_messages(json_lines: bool) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        logs.setup_logging(json_lines=json_lines, verbose=False)
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        exc = _failure()
        logging.getLogger("kokorod.test").error("utterance %s failed", "u1", exc_info=exc)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    out = stream.getvalue()
    text = json.loads(out)["exc"] if json_lines else out
    assert SECRET[:20] not in out
    assert "OverflowError" in text and "RuntimeError" in text and "_failure" in text  # types, frames, chain kept
    assert "utterance u1 failed" in out


def test_a_system_error_keeps_its_message() -> None:
    try:
        open("/nonexistent-kokorod-dir/file")
    except OSError as exc:
        assert "/nonexistent-kokorod-dir/file" in logs.redacted_traceback(exc)


def test_throttle_lets_one_line_through_per_interval_and_counts_the_rest(monkeypatch) -> None:
    from kokorod import logs

    clock = [100.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    throttle = logs.Throttle(10.0)
    assert throttle.due() == ""
    assert [throttle.due() for _ in range(3)] == [None, None, None]
    clock[0] += 10.0
    assert throttle.due() == " (3 more since the last report)"
    assert throttle.due() is None
