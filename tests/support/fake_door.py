"""A fake of the core's FrontDoor (kokorod.daemon.front_door), for adapter
unit tests: no model, no sessions, the core's real refusal and route rules
over settable state."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from kokorod.auth import AuthPolicy
from kokorod.config import Limits, ServerConfig
from kokorod.daemon.connection_slots import ConnectionSlots, Slot, address_of
from kokorod.daemon.front_door import PlainResponse, Refusal, RequestHead
from kokorod.metrics import Metrics
from kokorod.protocol.messages import CapacityInfo, LanguageInfo

VOICES = ("af_heart", "bf_emma")


class FakeDoor:
    def __init__(self, *, token: str | None = None, origins: tuple[str, ...] = (), ready: bool = True,
                 draining: bool = False, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig(token=token, allowed_origins=origins)
        self.metrics = Metrics()
        self.auth = AuthPolicy(self.config.token, self.config.allowed_origins, 8765)
        self.ready, self.draining = ready, draining
        self.services: Any = object() if ready else None
        self.voices = VOICES
        self.languages = (LanguageInfo("en-us", "American English", ("af_heart",), True, None),
                          LanguageInfo("en-gb", "British English", ("bf_emma",), True, None))
        self.slots = ConnectionSlots(self.config.limits.max_connections, self.config.limits.max_connections_per_ip)
        self.plain_calls: list[str] = []
        self.peers_opened = 0

    @property
    def limits(self) -> Limits:
        return self.config.limits

    def admit(self, peer: Any, protocol: str) -> Slot | None:
        return self.slots.acquire(address_of(peer), protocol)

    def refusal(self, slot: Slot | None = None) -> Refusal | None:
        if self.draining:
            return Refusal(503, "shutting_down", "not_ready", "kokorod is shutting down")
        if not self.ready:
            return Refusal(503, "not_ready", "not_ready", "kokorod is loading its model; try again shortly")
        return slot.refusal if slot is not None else None

    def plain_route(self, method: str, head: RequestHead) -> PlainResponse | None:
        self.plain_calls.append(head.path)
        if head.path == "/healthz":
            return PlainResponse(200, b"ok\n")
        return None

    def capacity_info(self) -> CapacityInfo:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def session(self, codec: Any, transport: Any, session_id: str) -> AsyncIterator[Any]:
        raise NotImplementedError
        yield

    @contextlib.asynccontextmanager
    async def local_peer(self) -> AsyncIterator[Any]:
        self.peers_opened += 1
        raise NotImplementedError("FakeDoor opens no session")
        yield
