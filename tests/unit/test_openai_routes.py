"""The OpenAI front-end's routing and refusals, before any session: methods,
paths, auth, origins and CORS, readiness, the plain routes on a keep-alive
connection (a fake daemon: no model, no sockets)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response as WsResponse

from kokorod.auth import AuthPolicy
from kokorod.config import ServerConfig
from kokorod.frontends.http import HttpRequest
from kokorod.frontends.openai import OpenAIFrontend
from kokorod.metrics import Metrics

TOKEN = "unit-token"


def frontend(*, token: str | None = TOKEN, ready: bool = True, draining: bool = False,
             origins: tuple[str, ...] = ()) -> tuple[OpenAIFrontend, list[Any]]:
    config = ServerConfig(token=token, allowed_origins=origins)
    daemon = SimpleNamespace(config=config, metrics=Metrics(), ready=ready, draining=draining,
                             services=object() if ready else None,
                             auth=AuthPolicy(token, origins, 8765))
    plain_calls: list[Any] = []

    def plain(request: Any) -> WsResponse | None:
        plain_calls.append(request)
        if request.path == "/v1/stream":
            return None
        return WsResponse(200, "OK", Headers({"Content-Type": "text/plain", "Content-Length": "3"}), b"ok\n")

    return OpenAIFrontend(daemon, plain), plain_calls  # type: ignore[arg-type]


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
    assert app.daemon.metrics.connections_refused.labels(reason="auth")._value.get() == 2


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


def test_concurrent_speech_requests_are_bounded() -> None:
    app, _ = frontend()
    app.active = app.daemon.config.limits.max_connections
    response = app.precheck(req("POST", "/v1/audio/speech"))
    assert response is not None and response.status == 503 and error(response)["code"] == "overloaded"
    assert app.precheck(req("GET", "/v1/models")) is None  # listing is not speaking


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
    assert calls[-1].path == "/healthz"
    assert all(k.lower() != "content-length" for k, _ in response.headers)  # the responder sets it
    upgrade = app.precheck(req("GET", "/v1/stream"))
    assert upgrade is not None and upgrade.status == 426


def test_requests_are_counted() -> None:
    app, _ = frontend()
    app.precheck(req("GET", "/v1/audio/speech"))
    assert app.metrics.requests.labels(endpoint="speech", status="405")._value.get() == 1
