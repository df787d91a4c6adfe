"""The daemon's plain HTTP routes, one place for every adapter on its port:
``/healthz`` (alive), ``/readyz`` (ready for traffic; 503 while loading or
draining), ``/metrics`` (token-protected) and the browser page's files.

Protocol-neutral: a :class:`PlainResponse` that the WebSocket adapter turns
into websockets' ``Response`` and the HTTP API into its own.
"""

from __future__ import annotations

import importlib.resources
from typing import Callable

from kokorod.auth import AuthPolicy
from kokorod.daemon.front_door import PlainResponse, RequestHead

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/player-worklet.js": ("player-worklet.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_TEXT = "text/plain; charset=utf-8"


def deny(auth: AuthPolicy, head: RequestHead, *, origin: bool) -> PlainResponse | None:
    """The 401/403 for a request that may not use the daemon, else None."""
    why = auth.check_token(head)  # type: ignore[arg-type]  # reads .headers only
    if why is not None:
        return PlainResponse(401, why.encode() + b"\n", headers=(("WWW-Authenticate", "Bearer"),))
    why = auth.check_host(head) or (auth.check_origin(head) if origin else None)  # type: ignore[arg-type]
    if why is not None:
        return PlainResponse(403, why.encode(errors="replace") + b"\n")
    return None


def plain_route(head: RequestHead, *, ready: bool, draining: bool, auth: AuthPolicy,
                render_metrics: Callable[[], bytes]) -> PlainResponse | None:
    """The response for one of these paths, else None (the adapter's own)."""
    path = head.path.partition("?")[0]
    if path == "/healthz":
        return PlainResponse(200, b"ok\n")
    if path == "/readyz":
        if ready:
            return PlainResponse(200, b"ready\n")
        return PlainResponse(503, b"draining\n" if draining else b"loading\n", headers=(("Retry-After", "1"),))
    if path == "/metrics":
        return deny(auth, head, origin=False) or PlainResponse(200, render_metrics(),
                                                               "text/plain; version=0.0.4; charset=utf-8")
    if path in STATIC and "upgrade" not in (head.headers.get("Connection") or "").lower():
        name, ctype = STATIC[path]
        try:
            body = importlib.resources.files("kokorod.web").joinpath(name).read_bytes()
        except (FileNotFoundError, ModuleNotFoundError):
            return PlainResponse(404, b"not found\n", _TEXT)
        return PlainResponse(200, body, ctype)
    return None
