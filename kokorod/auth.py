"""Who may connect: bearer token, browser Origin, Host, and safe binding.

Nothing here ever puts a token into a message, a log line or an exception.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request

from kokorod.errors import KokorodError

if TYPE_CHECKING:
    from kokorod.config import ServerConfig

log = logging.getLogger("kokorod.auth")
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
            mode = path.stat().st_mode
        except OSError as exc:
            raise KokorodError(f"cannot read token file {path}: {exc.strerror}", "check --token-file") from None
        if not token:
            raise KokorodError(f"token file {path} is empty", "write the token into it")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Not fatal (a container may mount it that way), but worth saying.
            log.warning("token file %s is readable by other users; chmod 600 it", path)
        return token
    return (os.environ.get(TOKEN_ENV) or "").strip() or None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(config: ServerConfig) -> None:
    if not is_loopback(config.host) and not config.token and not config.insecure:
        raise KokorodError(
            f"refusing to listen on {config.host} without a token: anyone on the network could use it",
            "pass --token-file FILE (or set KOKOROD_TOKEN), or --insecure if you really mean it",
        )


def _as_bytes(value: str) -> bytes:
    # websockets decodes header bytes with surrogateescape; a plain .encode()
    # would raise on a non-ASCII guess and turn a 401 into a 500.
    return value.encode("utf-8", "surrogateescape")


def _offered_token(request: Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
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


def _hostname(host_header: str) -> str:
    """``"[::1]:8765"`` → ``"::1"``, ``"Localhost:80"`` → ``"localhost"``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


class AuthPolicy:
    def __init__(self, token: str | None, allowed_origins: tuple[str, ...], port: int = 0, *,
                 bind_host: str = "127.0.0.1", insecure: bool = False) -> None:
        self._token = token.encode() if token else None
        self._origins = {o.rstrip("/").lower() for o in allowed_origins}
        self._port = port
        self._insecure = insecure
        # Host names a tokenless daemon answers to: its bind address, loopback
        # names, and the hosts of explicitly allowed origins (a reverse proxy).
        self._hosts = {bind_host.lower(), "localhost"}
        self._hosts |= {urlsplit(o).hostname or "" for o in self._origins} - {""}

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
        if not hmac.compare_digest(_as_bytes(offered), self._token):
            return "invalid token"
        return None

    def check_host(self, request: Request) -> str | None:
        """DNS rebinding guard. Without a token, a loopback daemon must only answer
        requests addressed to a loopback name: otherwise a web page whose domain
        was re-pointed at 127.0.0.1 would count as "same origin" and could drive
        the daemon. With a token (or --insecure) the Host is not a credential."""
        if self._token is not None or self._insecure:
            return None
        name = _hostname(request.headers.get("Host", ""))
        if name in self._hosts or name.endswith(".localhost") or is_loopback(name):
            return None
        return f"host {name or '(none)'} is not allowed (use a loopback address, --token, or --allow-origin)"

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
        return f"origin {origin[:100]} is not allowed (use --allow-origin)"
