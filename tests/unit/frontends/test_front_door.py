"""The core's front door: one connection count (total, per address, the
health reserve), the core never importing its adapters, and the WebSocket and
Wyoming adapters against a fake of the door (tests/support/fake_door.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from websockets.datastructures import Headers
from websockets.http11 import Request

from support.fake_door import FakeDoor
from kokorod.config import Limits, ServerConfig
from kokorod.daemon.connection_slots import ConnectionSlots, fds_needed

PACKAGE = Path(__file__).resolve().parents[3] / "kokorod"


def test_the_core_never_imports_its_adapters() -> None:
    for path in sorted((PACKAGE / "daemon").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("kokorod.frontends", "kokorod.app")), f"{path.name} imports {name}"


def test_connections_are_counted_in_total_and_per_address() -> None:
    refused: list[str] = []
    slots = ConnectionSlots(3, 2, reserve=2, on_refused=refused.append)
    a1, a2 = slots.acquire("10.0.0.1", "tcp"), slots.acquire("10.0.0.1", "wyoming")
    assert a1 and a2 and a1.refusal is None and a2.refusal is None
    a3 = slots.acquire("10.0.0.1", "tcp")  # third from one address: over the per-address bound
    assert a3 is not None and a3.refusal is not None and a3.refusal.status == 429
    b1 = slots.acquire("10.0.0.2", "tcp")
    assert b1 is not None and b1.refusal is None and slots.open == 3
    c1 = slots.acquire("10.0.0.3", "tcp")  # over the total
    assert c1 is not None and c1.refusal is not None and c1.refusal.status == 503
    assert "--max-connections 3" in c1.refusal.message
    assert refused == ["per_ip", "capacity"]
    a1.release()
    a1.release()  # idempotent
    assert slots.open == 2
    again = slots.acquire("10.0.0.1", "tcp")
    assert again is not None and again.refusal is None


def test_the_reserve_is_bounded_and_evicts_its_oldest() -> None:
    slots = ConnectionSlots(1, 0, reserve=2)
    assert slots.acquire("a", "tcp") is not None
    evicted: list[str] = []
    first = slots.acquire("b", "tcp")
    second = slots.acquire("c", "tcp")
    assert first is not None and second is not None
    first.on_evict = lambda: evicted.append("b")
    third = slots.acquire("d", "tcp")  # a health probe still gets in: the oldest held one goes
    assert third is not None and third.refusal is not None
    assert evicted == ["b"] and slots.reserved == 2
    assert ConnectionSlots(1, 0, reserve=0).acquire("a", "tcp") is not None
    full = ConnectionSlots(1, 0, reserve=0)
    full.acquire("a", "tcp")
    assert full.acquire("b", "tcp") is None
    assert fds_needed(64) > 64


def ws_request(path: str, **headers: str) -> Request:
    return Request(path, Headers({"Host": "127.0.0.1:8765", **headers}))


class _Conn:
    def __init__(self, slot: object = None) -> None:
        self.slot = slot


def test_websocket_adapter_routes_through_the_door() -> None:
    from kokorod.frontends.websocket import WebSocketFrontend

    door = FakeDoor(token="t", config=ServerConfig(token="t", limits=Limits(max_connections=1)))
    adapter = WebSocketFrontend(door, lambda slot: None)  # type: ignore[arg-type, return-value]
    health = adapter._route(_Conn(), ws_request("/healthz"))
    assert health is not None and health.status_code == 200 and door.plain_calls == ["/healthz"]
    missing = adapter._route(_Conn(), ws_request("/nope"))
    assert missing is not None and missing.status_code == 404
    denied = adapter._route(_Conn(), ws_request("/v1/stream"))
    assert denied is not None and denied.status_code == 401
    assert adapter._route(_Conn(), ws_request("/v1/stream", Authorization="Bearer t")) is None
    door.admit(("10.0.0.1", 1), "tcp")
    over = door.admit(("10.0.0.2", 1), "tcp")
    refused = adapter._route(_Conn(over), ws_request("/v1/stream", Authorization="Bearer t"))
    assert refused is not None and refused.status_code == 503 and b"--max-connections 1" in (refused.body or b"")
    door.draining = True
    draining = adapter._route(_Conn(), ws_request("/v1/stream", Authorization="Bearer t"))
    assert draining is not None and draining.status_code == 503 and draining.headers["Retry-After"] == "1"


def test_wyoming_adapter_refuses_through_the_door() -> None:
    from kokorod.frontends.wyoming import WyomingFrontend

    config = ServerConfig(wyoming_uri="tcp://127.0.0.1:0", limits=Limits(max_connections=1))
    door = FakeDoor(config=config, ready=False)
    frontend = WyomingFrontend(door, config)  # type: ignore[arg-type]
    assert frontend.refusal(None) == ("not_ready", "kokorod is loading its model; try again shortly")
    door.ready = True
    first = door.admit(("10.0.0.1", 1), "wyoming")
    assert frontend.refusal(first) is None
    over = door.admit(("10.0.0.2", 1), "wyoming")
    code, text = frontend.refusal(over)  # type: ignore[misc]
    assert code == "overloaded" and "--max-connections 1" in text
    door.draining = True
    assert frontend.refusal(first) == ("shutdown", "kokorod is shutting down")
