"""The process's file-descriptor limit: raised at start-up, watched while serving.

Every connection is a descriptor. systemd's default soft limit is 1,024; a
daemon that reaches it cannot accept, and under uvloop that is silent (libuv
accepts and closes the excess itself), so /healthz and speech died with
nothing logged (issue 18). So at start-up the soft limit is raised to the hard
limit, with a warning when even that is below what ``--max-connections``
needs; while serving, accept failures (asyncio reports them to the loop's
exception handler) and a descriptor table at its limit (uvloop's silent case,
sampled) are logged once per interval and counted in /metrics.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import Any, Callable

from kokorod.logs import Throttle

log = logging.getLogger("kokorod.fd_limit")

LOG_INTERVAL_S = 10.0
SAMPLE_INTERVAL_S = 2.0
_FD_DIR = "/proc/self/fd"


def raise_fd_limit(needed: int) -> tuple[int, int] | None:
    """Raise RLIMIT_NOFILE's soft limit to the hard one; warn if below
    ``needed``. The (soft, hard) limits after, or None where there are none."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("the open-file limit is %d, below the %d that --max-connections needs; raise it "
                    "(systemd: LimitNOFILE=, shell: ulimit -n) or lower --max-connections", soft, needed,
                    extra={"event": "fd_limit_low", "fields": {"limit": soft, "needed": needed}})
    return int(soft), int(hard)


class AcceptErrors:
    """Counts and logs (once per interval) connections the OS could not accept."""

    def __init__(self, count: Callable[[str], None]) -> None:
        self._count = count
        self._log_throttle = Throttle(LOG_INTERVAL_S)

    def report(self, code: int, where: str) -> None:
        name = errno.errorcode.get(code, str(code))
        self._count(name)
        more = self._log_throttle.due()
        if more is None:
            return
        log.error("cannot accept connections (%s, %s)%s: the open-file limit is reached; raise it or lower "
                  "--max-connections (docs/operations.md, Limits)", name, where, more,
                  extra={"event": "accept_failed", "fields": {"errno": name}})

    def exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's accept loop reports EMFILE/ENFILE here (then retries after a second)."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM) \
                and "accept" in str(context.get("message", "")):
            self.report(exc.errno, "accept")
            return
        loop.default_exception_handler(context)

    async def watch(self) -> None:
        """uvloop's case: sample the descriptor table; at its limit, accepts fail."""
        try:
            import resource
        except ImportError:
            return
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            try:
                used = len(os.listdir(_FD_DIR))
            except OSError:  # no /proc (macOS): asyncio's handler is all there is
                return
            if soft != resource.RLIM_INFINITY and used >= soft - 2:
                self.report(errno.EMFILE, f"{used} of {soft} descriptors open")
