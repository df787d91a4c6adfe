"""Who may connect: bearer token, browser Origin, and safe binding."""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request

from kokorod.errors import KokorodError

TOKEN_ENV = "KOKOROD_TOKEN"
TOKEN_SUBPROTOCOL_PREFIX = "kokorod.token."


def load_token(flag: str | None, token_file: str | None) -> str | None:
    """``--token``, else ``--token-file``/``$KOKOROD_TOKEN_FILE``, else ``$KOKOROD_TOKEN``."""
    if flag:
        return flag
    if token_file:
        path = Path(token_file).expanduser()
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise KokorodError(f"cannot read token file {path}: {exc.strerror}", "check --token-file") from None
        if not token:
            raise KokorodError(f"token file {path} is empty", "write the token into it")
        return token
    return os.environ.get(TOKEN_ENV) or None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(config: "ServerConfig") -> None:  # type: ignore[name-defined]  # noqa: F821
    if not is_loopback(config.host) and not config.token and not config.insecure:
        raise KokorodError(
            f"refusing to listen on {config.host} without a token: anyone on the network could use it",
            "pass --token (or set KOKOROD_TOKEN), or --insecure if you really mean it",
        )


def _offered_token(request: Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    query = parse_qs(urlsplit(request.path).query)
    if "token" in query:
        return query["token"][0]
    for header in request.headers.get_all("Sec-WebSocket-Protocol"):
        for item in header.split(","):
            item = item.strip()
            if item.startswith(TOKEN_SUBPROTOCOL_PREFIX):
                return item[len(TOKEN_SUBPROTOCOL_PREFIX):]
    return None


class AuthPolicy:
    def __init__(self, token: str | None, allowed_origins: tuple[str, ...], port: int) -> None:
        self._token = token.encode() if token else None
        self._origins = {o.rstrip("/").lower() for o in allowed_origins}
        self._port = port

    @property
    def required(self) -> bool:
        return self._token is not None

    def check_token(self, request: Request) -> str | None:
        """None when allowed, else the reason (never containing the token)."""
        if self._token is None:
            return None
        offered = _offered_token(request)
        if offered is None:
            return "missing token: send Authorization: Bearer <token>"
        # Constant-time, so response timing does not leak how much of a guess matched.
        if not hmac.compare_digest(offered.encode(), self._token):
            return "invalid token"
        return None

    def check_origin(self, request: Request) -> str | None:
        """Browsers always send Origin; other clients usually don't. A page served by
        this daemon is allowed; any other origin must be on the allowlist."""
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        normalized = origin.rstrip("/").lower()
        if normalized in self._origins or "*" in self._origins:
            return None
        host = request.headers.get("Host", "")
        parts = urlsplit(normalized)
        if parts.netloc and parts.netloc == host.lower():
            return None  # same origin: our own page
        return f"origin {origin} is not allowed (use --allow-origin)"
