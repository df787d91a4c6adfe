"""One count of open connections, whatever protocol they speak.

Every accepted socket (WebSocket, OpenAI HTTP, Wyoming) takes a slot before it
is read, and gives it back when it closes, so ``--max-connections`` bounds the
file descriptors and buffers a client can make the daemon hold (issue 18: a
slowloris of 1,000 HTTP connections was never counted), and
``--max-connections-per-ip`` bounds what one address may take of them.

Past either bound a connection is not dropped blind: it gets a *reserve* slot,
long enough (``RESERVE_HEAD_S``) to ask for ``/healthz`` or ``/readyz``, which
are answered, or to be told why it is refused (503/429 with a reason). The
reserve is small and bounded; when it is full the oldest reserve connection is
evicted for the newest, so a stream of hostile connections cannot keep a health
probe out (a probe sends its head at once; an attacker's held connection has
had its chance). Past a bound, the daemon logs once per ``LOG_INTERVAL_S``,
never per connection.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from kokorod.logs import Throttle

log = logging.getLogger("kokorod.daemon.connections")

RESERVE_SLOTS = 8          # connections past a limit held at once, to answer health or say why
RESERVE_HEAD_S = 2.0       # a reserve connection's whole request head must arrive within this
LOG_INTERVAL_S = 10.0      # at most one "at the limit" line per interval
# Descriptors the process needs besides connections (model, voices, logs,
# listeners, the language data, engine threads' files), for the fd-limit check.
BASE_FDS = 64


def address_of(peer: Any) -> str:
    """The client's address from a ``peername`` (a Unix socket has none: one shared key)."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "local"


def fds_needed(max_connections: int) -> int:
    """File descriptors a daemon with this limit may hold at once."""
    return max_connections + RESERVE_SLOTS + BASE_FDS


@dataclass(frozen=True)
class Refusal:
    """Why a connection or request is not served now, in every protocol's terms."""

    status: int           # HTTP status (503)
    code: str             # the protocol's error code: not_ready, shutting_down, overloaded
    reason: str           # kokorod_connections_refused_total{reason}
    message: str
    retry_after_s: int = 1


@dataclass(eq=False)
class Slot:
    """One open connection's place in the count; ``release`` it when it closes."""

    address: str
    protocol: str
    refusal: Refusal | None = None       # set: a reserve slot (health only, or told why)
    on_evict: Callable[[], None] = field(default=lambda: None)  # the adapter closes the connection
    _owner: "ConnectionSlots | None" = None

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._release(self)


class ConnectionSlots:
    def __init__(self, max_connections: int, max_per_ip: int = 0, *, reserve: int = RESERVE_SLOTS,
                 on_refused: Callable[[str], None] = lambda reason: None) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip  # 0: no per-address bound
        self.reserve = reserve
        self._on_refused = on_refused
        self.open = 0                                     # slots within the limits
        self._per_address: Counter[str] = Counter()
        self._reserved: OrderedDict[Slot, None] = OrderedDict()  # oldest first
        self._log_throttle = Throttle(LOG_INTERVAL_S)

    @property
    def reserved(self) -> int:
        return len(self._reserved)

    def acquire(self, address: str, protocol: str) -> Slot | None:
        """A slot for a new connection from ``address``; its ``refusal`` is set
        when it is over a bound. None only when there is no reserve (0)."""
        refusal = self._over_limit(address)
        if refusal is None:
            self.open += 1
            self._per_address[address] += 1
            return Slot(address, protocol, None, _owner=self)
        self._on_refused(refusal.reason)
        self._log_limit(refusal)
        if self.reserve <= 0:
            return None
        if len(self._reserved) >= self.reserve:
            oldest = next(iter(self._reserved))
            oldest.release()
            oldest.on_evict()
        slot = Slot(address, protocol, refusal, _owner=self)
        self._reserved[slot] = None
        return slot

    def _over_limit(self, address: str) -> Refusal | None:
        if self.open >= self.max_connections:
            return Refusal(503, "overloaded", "capacity", "kokorod is at its connection limit "
                           f"(--max-connections {self.max_connections}); try again shortly")
        if self.max_per_ip and self._per_address[address] >= self.max_per_ip:
            return Refusal(429, "overloaded", "per_ip", "too many connections from your address "
                           f"(--max-connections-per-ip {self.max_per_ip}); close one first")
        return None

    def _release(self, slot: Slot) -> None:
        if slot.refusal is not None:
            self._reserved.pop(slot, None)
            return
        self.open -= 1
        self._per_address[slot.address] -= 1
        if self._per_address[slot.address] <= 0:
            del self._per_address[slot.address]

    def _log_limit(self, refusal: Refusal) -> None:
        more = self._log_throttle.due()
        if more is None:
            return
        log.warning("connection refused: %s%s", refusal.message, more,
                    extra={"event": "connection_limit", "fields": {"reason": refusal.reason}})
