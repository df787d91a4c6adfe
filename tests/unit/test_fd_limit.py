"""The open-file limit: raised at start-up, accept failures counted and logged once per interval."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource

import pytest

from kokorod.fd_limit import AcceptErrors, raise_fd_limit


def test_soft_limit_is_raised_to_the_hard_one_and_a_low_one_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        limits = raise_fd_limit(100)
        assert limits is not None and limits[0] == hard
        assert not [r for r in caplog.records if "open-file limit" in r.getMessage()]
        if hard != resource.RLIM_INFINITY:
            raise_fd_limit(hard + 1)
            assert any("below the" in r.getMessage() for r in caplog.records)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_accept_failures_are_counted_each_and_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    counted: list[str] = []
    errors = AcceptErrors(counted.append)
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="kokorod.fd_limit"):
            for _ in range(5):
                errors.exception_handler(loop, {"message": "socket.accept() out of system resource",
                                                "exception": OSError(errno.EMFILE, "Too many open files")})
    finally:
        loop.close()
    assert counted == ["EMFILE"] * 5
    assert len([r for r in caplog.records if "cannot accept" in r.getMessage()]) == 1
