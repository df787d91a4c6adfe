"""The OpenAI front-end's routing and refusals, before any session: methods,
paths, auth, origins and CORS, readiness, the plain routes on a keep-alive
connection (a fake of the core's FrontDoor, tests/support/fake_door.py: no model, no sockets)."""

from __future__ import annotations

import json
from typing import Any

from support.fake_door import FakeDoor
from kokorod.config import Limits, ServerConfig
from kokorod.frontends.http import HttpRequest
from kokorod.frontends.openai import OpenAIFrontend

TOKEN = "unit-token"


def frontend(*, token: str | None = TOKEN, ready: bool = True, draining: bool = False,
             origins: tuple[str, ...] = ()) -> tuple[OpenAIFrontend, list[str]]:
    door = FakeDoor(token=token, origins=origins, ready=ready, draining=draining)
    return OpenAIFrontend(door), door.plain_calls  # type: ignore[arg-type]


def req(method: str, target: str, token: str | None = TOKEN, **headers: str) -> HttpRequest:
    hs = [("host", "127.0.0.1:8765"), *((k.lower().replace("_", "-"), v) for k, v in headers.items())]
    if token is not None:
        hs.append(("authorization", f"Bearer {token}"))
    return HttpRequest(method, target, hs)


def error(response: Any) -> dict[str, Any]:
    return json.loads(response.body)["error"]


def test_authorised_api_requests_pass_precheck() -> None:
    app, _ = frontend()
    assert app.precheck(req("POST", "/v1/audio/speech")) is None
    assert app.precheck(req("GET", "/v1/models")) is None
    assert app.precheck(req("GET", "/v1/audio/voices")) is None


def test_missing_or_wrong_token_is_401() -> None:
    app, _ = frontend()
    for r in (req("POST", "/v1/audio/speech", token=None), req("GET", "/v1/models", token="nope")):
        response = app.precheck(r)
        assert response is not None and response.status == 401
        assert error(response)["code"] == "invalid_api_key"
        assert ("WWW-Authenticate", "Bearer") in response.headers
    assert app.door.metrics.connections_refused.labels(reason="auth")._value.get() == 2


def test_query_token_works_too() -> None:
    app, _ = frontend()
    assert app.precheck(req("POST", f"/v1/audio/speech?token={TOKEN}", token=None)) is None


def test_wrong_method_is_405_with_allow() -> None:
    app, _ = frontend()
    response = app.precheck(req("GET", "/v1/audio/speech"))
    assert response is not None and response.status == 405 and ("Allow", "POST") in response.headers
    response = app.precheck(req("POST", "/v1/models"))
    assert response is not None and response.status == 405


def test_unknown_api_path_is_404_in_openai_shape() -> None:
    app, _ = frontend()
    response = app.precheck(req("POST", "/v1/chat/completions"))
    assert response is not None and response.status == 404 and error(response)["code"] == "not_found"


def test_not_ready_and_draining_are_503_with_retry_after() -> None:
    for draining, code in ((False, "not_ready"), (True, "shutting_down")):
        app, _ = frontend(ready=False, draining=draining)
        response = app.precheck(req("POST", "/v1/audio/speech"))
        assert response is not None and response.status == 503 and error(response)["code"] == code
        assert ("Retry-After", "1") in response.headers


def test_a_connection_over_a_limit_gets_the_door_s_refusal_but_health_answers() -> None:
    door = FakeDoor(token=TOKEN, config=ServerConfig(token=TOKEN, limits=Limits(max_connections=1,
                                                                                max_connections_per_ip=1)))
    app = OpenAIFrontend(door)  # type: ignore[arg-type]
    first, second = door.admit(("10.0.0.1", 1), "tcp"), door.admit(("10.0.0.1", 2), "tcp")
    assert first is not None and first.refusal is None and second is not None
    over = req("POST", "/v1/audio/speech")
    over.slot = second
    response = app.precheck(over)
    assert response is not None and response.status == 503 and error(response)["code"] == "overloaded"
    assert "--max-connections 1" in error(response)["message"] and ("Retry-After", "1") in response.headers
    ok = req("POST", "/v1/audio/speech")
    ok.slot = first
    assert app.precheck(ok) is None
    health = req("GET", "/healthz", token=None)
    health.slot = second
    answered = app.precheck(health)
    assert answered is not None and answered.status == 200


def test_origins_cors_and_preflight() -> None:
    app, _ = frontend(origins=("https://app.example",))
    denied = app.precheck(req("POST", "/v1/audio/speech", origin="https://evil.example"))
    assert denied is not None and denied.status == 403
    assert app.precheck(req("POST", "/v1/audio/speech", origin="https://app.example")) is None
    preflight = app.precheck(req("OPTIONS", "/v1/audio/speech", token=None, origin="https://app.example",
                                 access_control_request_headers="authorization, content-type"))
    assert preflight is not None and preflight.status == 204
    headers = dict(preflight.headers)
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    refused = app.precheck(req("OPTIONS", "/v1/audio/speech", token=None, origin="https://evil.example"))
    assert refused is not None and refused.status == 403


def test_tokenless_daemon_guards_the_host() -> None:
    app, _ = frontend(token=None)
    assert app.precheck(req("GET", "/v1/models", token=None)) is None
    rebound = HttpRequest("GET", "/v1/models", [("host", "evil.example")])
    response = app.precheck(rebound)
    assert response is not None and response.status == 403


def test_other_gets_on_an_http_connection_use_the_plain_routes() -> None:
    app, calls = frontend()
    response = app.precheck(req("GET", "/healthz", token=None))
    assert response is not None and (response.status, response.body) == (200, b"ok\n")
    assert calls[-1] == "/healthz"
    assert all(k.lower() != "content-length" for k, _ in response.headers)  # the responder sets it
    upgrade = app.precheck(req("GET", "/v1/stream"))
    assert upgrade is not None and upgrade.status == 426


def test_requests_are_counted() -> None:
    app, _ = frontend()
    app.precheck(req("GET", "/v1/audio/speech"))
    assert app.metrics.requests.labels(endpoint="speech", status="405")._value.get() == 1
