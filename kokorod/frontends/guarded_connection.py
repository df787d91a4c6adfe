"""A WebSocket connection that cannot make the daemon hold more than its budget.

Two holes websockets leaves to its user, both found by a hostile client that
sends pings and never reads (issue 18):

- websockets answers every ping with a pong written straight to the transport,
  outside ``write_limit``'s flow control: the write buffer grows as fast as the
  client sends. We check what the connection holds after every read (the
  transport's write buffer plus the session's queued events) against
  ``--max-connection-buffer-bytes``, and cut the connection past it.
- websockets' keepalive ``ping()`` first waits for the write buffer to drain, so
  for a client that does not read its ``ping_timeout`` never starts. A transport
  whose writing stays paused (above ``write_limit``) for ``ping_interval +
  ping_timeout`` is a client that did not read for as long as keepalive allows:
  we cut it then, whatever its buffer holds.

Cut means ``transport.abort()``: a close frame would wait behind the bytes the
client does not read. The reason goes to the log and to
``kokorod_connections_closed_total{reason}``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from websockets.asyncio.server import ServerConnection

from kokorod.frontends.http_sniff import Admit, MakeProtocol, SniffingConnection

log = logging.getLogger("kokorod.frontends.guarded_connection")

REASON_BUFFER = "buffer_bytes"  # held more than --max-connection-buffer-bytes
REASON_NOT_READING = "not_reading"  # writing paused for the whole keepalive allowance


@dataclass
class ConnectionBudget:
    max_buffer_bytes: int
    stall_s: float | None  # ping_interval + ping_timeout; None: keepalive off, no stall rule
    on_cut: Callable[[str], None] = field(default=lambda reason: None)  # counts the cut (metrics)


def guarded_connection(make_protocol: MakeProtocol, budget: ConnectionBudget,
                       admit: Admit | None = None) -> Callable[..., ServerConnection]:
    """A ``create_connection`` factory for ``websockets.asyncio.server.serve``."""

    def create(protocol: Any, server: Any, **kwargs: Any) -> ServerConnection:
        return GuardedConnection(protocol, server, make_protocol=make_protocol, budget=budget, admit=admit, **kwargs)

    return create


class GuardedConnection(SniffingConnection):
    def __init__(self, protocol: Any, server: Any, *, budget: ConnectionBudget, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self.budget = budget
        # What the session holds for this client beyond the socket (its outbox), set by the handler.
        self.held_elsewhere_bytes: Callable[[], int] = lambda: 0
        self._stall_timer: asyncio.TimerHandle | None = None
        self.cut_reason: str | None = None

    def held_bytes(self) -> int:
        # No transport of ours while sniffing, nor ever for a connection handed
        # to the HTTP API (websockets never saw it; http.py bounds its own).
        transport = getattr(self, "transport", None) if not self._sniffing else None
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return buffered + self.held_elsewhere_bytes()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # After websockets answered what it read (pongs land in the write buffer here).
        if not self._sniffing and self.cut_reason is None and self.held_bytes() > self.budget.max_buffer_bytes:
            self.cut(REASON_BUFFER, f"holds {self.held_bytes()} bytes it has not read "
                                    f"(--max-connection-buffer-bytes {self.budget.max_buffer_bytes})")

    def pause_writing(self) -> None:
        super().pause_writing()
        if not self._sniffing and self.budget.stall_s is not None and self._stall_timer is None:
            self._stall_timer = self.loop.call_later(
                self.budget.stall_s, self.cut, REASON_NOT_READING,
                f"read nothing for {self.budget.stall_s:g} s (keepalive: --ping-interval-s + --ping-timeout-s)")

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stall_timer()
        super().connection_lost(exc)

    def _cancel_stall_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def cut(self, reason: str, why: str) -> None:
        """Drop the connection now: nothing it has not read is kept."""
        transport = getattr(self, "transport", None)  # set once the connection turned out to be websockets'
        if self.cut_reason is not None or transport is None:
            return
        self.cut_reason = reason
        self._cancel_stall_timer()
        peer = transport.get_extra_info("peername")
        log.warning("connection from %s %s: closing", peer[0] if isinstance(peer, tuple) else "?", why,
                    extra={"event": "connection_cut", "fields": {"reason": reason}})
        self.budget.on_cut(reason)
        transport.abort()
