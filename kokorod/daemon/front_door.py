"""What the daemon offers its front-ends: the one interface adapters depend on.

WebSocket, OpenAI HTTP and Wyoming are adapters (``kokorod.frontends``); each
takes a :class:`FrontDoor` at construction and never the daemon itself, so the
core never imports them (``kokorod.app`` wires the two). The rules every
adapter must apply the same way live behind it, written once:

- ``admit``: one count of connections, whatever protocol they speak, with a
  per-address bound (kokorod.daemon.connection_slots);
- ``refusal``: not ready, draining, over a connection limit;
- ``plain_route``: ``/healthz``, ``/readyz``, ``/metrics`` and the page;
- ``auth``, ``metrics``, ``voices``/``languages``, ``limits``;
- ``session``/``local_peer``: a session on the shared engine, counted and
  drained like any other (kokorod.daemon.idle holds the idle rule).

Responses are protocol-neutral (:class:`PlainResponse`); each adapter turns
them into its own wire form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncContextManager, Iterable, Protocol

# Refusal is defined with the connection count that makes most of them.
from kokorod.daemon.connection_slots import Refusal, Slot  # noqa: F401  (part of this interface)

if TYPE_CHECKING:
    from kokorod.auth import AuthPolicy
    from kokorod.config import ServerConfig, ServerLimits
    from kokorod.daemon.local_peer import LocalPeer
    from kokorod.daemon.session import Services, Session
    from kokorod.metrics import Metrics
    from kokorod.protocol.messages import CapacityInfo, LanguageInfo

# Paths every adapter on the daemon's port answers the same way.
HEALTH_PATHS = ("/healthz", "/readyz")


@dataclass(frozen=True)
class PlainResponse:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class HeaderLookup(Protocol):
    """Request headers, case-insensitive (websockets' ``Headers`` is one)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def get_all(self, key: str) -> list[str]: ...


class RequestHead(Protocol):
    """What the core reads of an HTTP request: its target and headers."""

    path: str
    headers: HeaderLookup


class SimpleHeaders:
    """A ``HeaderLookup`` over (name, value) pairs, for adapters that parse their own heads."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = [(k.lower(), v) for k, v in pairs]

    def get(self, key: str, default: Any = None) -> Any:
        key = key.lower()
        return next((v for k, v in self._pairs if k == key), default)

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self._pairs if k == key]


@dataclass
class Head:
    """A ``RequestHead`` built from a path and headers."""

    path: str
    headers: HeaderLookup


class FrontDoor(Protocol):
    """The daemon as its adapters see it (implemented by kokorod.daemon.core.Daemon)."""

    config: ServerConfig
    metrics: Metrics
    auth: AuthPolicy

    @property
    def limits(self) -> ServerLimits: ...
    @property
    def ready(self) -> bool: ...
    @property
    def draining(self) -> bool: ...
    @property
    def services(self) -> Services | None: ...
    @property
    def voices(self) -> tuple[str, ...]: ...
    @property
    def languages(self) -> tuple[LanguageInfo, ...]: ...

    def admit(self, peer: Any, protocol: str) -> Slot | None:
        """Count a new connection (``peer``: its ``peername``). None: close it
        at once (over every limit and the health reserve); a slot whose
        ``refusal`` is set may only ask for health."""
    def refusal(self, slot: Slot | None = None) -> Refusal | None:
        """Why a session cannot be served now, else None: one rule for all."""
    def plain_route(self, method: str, head: RequestHead) -> PlainResponse | None:
        """/healthz, /readyz, /metrics and the page; None for any other path."""
    def capacity_info(self) -> CapacityInfo: ...
    def session(self, codec: Any, transport: Any, session_id: str) -> AsyncContextManager[Session]:
        """A session for a connection, counted and drained with the others."""
    def local_peer(self) -> AsyncContextManager[LocalPeer]:
        """An in-process session (OpenAI HTTP, Wyoming), counted and drained."""
