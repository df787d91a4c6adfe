"""Token loading, bind safety, and the per-request checks (token, Host, Origin)."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from kokorod import auth
from kokorod.auth import AuthPolicy, check_bind, is_loopback, load_token
from kokorod.config import ServerConfig
from kokorod.errors import KokorodError

TOKEN = "s3cret-Token_42"


def request(path: str = "/v1/stream", **headers: str) -> Request:
    h = Headers()
    h["Host"] = headers.pop("Host", "127.0.0.1:8765")
    for key, value in headers.items():
        h[key.replace("_", "-")] = value
    return Request(path, h)


# -- load_token ---------------------------------------------------------------

def test_flag_wins_over_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "t"
    f.write_text("from-file\n")
    monkeypatch.setenv("KOKOROD_TOKEN", "from-env")
    assert load_token("from-flag", str(f)) == "from-flag"
    assert load_token(None, str(f)) == "from-file"  # stripped
    assert load_token(None, None) == "from-env"


def test_env_token_is_stripped_and_empty_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOKOROD_TOKEN", "  tok\n")
    assert load_token(None, None) == "tok"
    monkeypatch.setenv("KOKOROD_TOKEN", " ")
    assert load_token(None, None) is None
    monkeypatch.delenv("KOKOROD_TOKEN")
    assert load_token(None, None) is None


def test_token_file_problems_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(KokorodError, match="cannot read token file"):
        load_token(None, str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(KokorodError, match="is empty"):
        load_token(None, str(empty))


def test_readable_token_file_warns_without_the_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "t"
    f.write_text(TOKEN)
    f.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="kokorod.auth"):
        assert load_token(None, str(f)) == TOKEN
    assert "readable by other users" in caplog.text and TOKEN not in caplog.text
    caplog.clear()
    f.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="kokorod.auth"):
        load_token(None, str(f))
    assert not caplog.records


# -- binding ------------------------------------------------------------------

@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.5", False), ("example.com", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_bind_needs_a_token_or_insecure() -> None:
    check_bind(ServerConfig(host="127.0.0.1"))
    with pytest.raises(KokorodError, match="refusing to listen on 0.0.0.0"):
        check_bind(ServerConfig(host="0.0.0.0"))
    with pytest.raises(KokorodError):
        check_bind(ServerConfig(host=""))  # "" = every interface
    check_bind(ServerConfig(host="0.0.0.0", token=TOKEN))
    check_bind(ServerConfig(host="0.0.0.0", insecure=True))


# -- token --------------------------------------------------------------------

def test_no_token_configured_allows_everything() -> None:
    assert AuthPolicy(None, ()).check_token(request()) is None


@pytest.mark.parametrize("req", [
    request(Authorization=f"Bearer {TOKEN}"),
    request(Authorization=f"bearer   {TOKEN}"),
    request(f"/v1/stream?token={TOKEN}"),
    request(f"/v1/stream?x=1&token={TOKEN}"),
    request(Sec_WebSocket_Protocol=f"kokorod.v1.json, kokorod.token.{TOKEN}"),
], ids=["bearer", "bearer-lowercase", "query", "query-second", "subprotocol"])
def test_token_accepted_in_every_documented_place(req: Request) -> None:
    assert AuthPolicy(TOKEN, ()).check_token(req) is None


@pytest.mark.parametrize("req", [
    request(),
    request(Authorization="Basic dXNlcjpwYXNz"),
    request(Sec_WebSocket_Protocol="kokorod.v1.json"),
], ids=["nothing", "basic-auth", "no-token-entry"])
def test_missing_token(req: Request) -> None:
    assert AuthPolicy(TOKEN, ()).check_token(req) == "missing token: send Authorization: Bearer <token>"


@pytest.mark.parametrize("guess", ["", "s3cret", TOKEN + "x", TOKEN.upper(), "caf\u00e9"])
def test_wrong_token_reason_never_echoes_anything(guess: str) -> None:
    reason = AuthPolicy(TOKEN, ()).check_token(request(Authorization=f"Bearer {guess}"))
    assert reason == "invalid token"


def test_undecodable_guess_is_a_401_not_a_crash() -> None:
    # websockets decodes raw request bytes with surrogateescape; such a guess
    # must not make the comparison raise (that would be an HTTP 500).
    assert AuthPolicy(TOKEN, ()).check_token(request("/v1/stream?token=s3cr\udcffet")) == "invalid token"


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    policy = AuthPolicy(TOKEN, ())
    assert policy.check_token(request(Authorization="Bearer nope")) == "invalid token"
    assert policy.check_token(request(Authorization=f"Bearer {TOKEN}")) is None
    assert calls == [(b"nope", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


# -- Origin -------------------------------------------------------------------

@pytest.mark.parametrize("origin,allowed", [
    (None, True),                                # not a browser
    ("http://127.0.0.1:8765", True),             # our own page
    ("HTTP://127.0.0.1:8765/", True),
    ("http://127.0.0.1:9999", False),            # another local app
    ("https://evil.example", False),
    ("null", False),                             # sandboxed iframe, file://
    ("https://app.example", True),               # --allow-origin
    ("https://app.example/", True),
    ("https://app.example:444", False),
])
def test_origin_allowlist(origin: str | None, allowed: bool) -> None:
    policy = AuthPolicy(None, ("https://App.example/",))
    req = request(Origin=origin) if origin is not None else request()
    reason = policy.check_origin(req)
    assert (reason is None) is allowed, reason
    if not allowed:
        assert "--allow-origin" in reason  # type: ignore[operator]


def test_wildcard_origin() -> None:
    assert AuthPolicy(None, ("*",)).check_origin(request(Origin="https://anything.example")) is None


# -- Host (DNS rebinding) -----------------------------------------------------

@pytest.mark.parametrize("host,allowed", [
    ("127.0.0.1:8765", True), ("localhost:8765", True), ("LOCALHOST", True), ("[::1]:8765", True),
    ("app.localhost:8765", True), ("127.0.0.2", True),
    ("evil.example:8765", False), ("192.168.1.5:8765", False), ("", False),
    ("app.example", True),  # the host of an --allow-origin entry (a reverse proxy)
])
def test_tokenless_daemon_only_answers_local_host_names(host: str, allowed: bool) -> None:
    policy = AuthPolicy(None, ("https://app.example",))
    reason = policy.check_host(request(Host=host))
    assert (reason is None) is allowed, reason


def test_rebound_page_is_same_origin_but_refused_by_host() -> None:
    policy = AuthPolicy(None, ())
    rebound = request(Host="evil.example:8765", Origin="http://evil.example:8765")
    assert policy.check_origin(rebound) is None  # looks like our own page...
    assert policy.check_host(rebound) is not None  # ...but is not addressed to us


def test_host_is_not_checked_with_a_token_or_insecure() -> None:
    req = request(Host="tts.lan:8765")
    assert AuthPolicy(TOKEN, (), bind_host="0.0.0.0").check_host(req) is None
    assert AuthPolicy(None, (), bind_host="0.0.0.0", insecure=True).check_host(req) is None
    assert AuthPolicy(None, (), bind_host="tts.lan").check_host(req) is None
