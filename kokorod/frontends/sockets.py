"""Socket options every adapter sets on its client sockets."""

from __future__ import annotations

import socket
from typing import Any

# Kernel send buffer per client socket. Left alone, Linux grows it up to
# tcp_wmem's maximum (4 MiB here) even for a client that never reads: a minute
# of audio out of reach of --max-send-buffer-s. A fixed size keeps that bound
# honest (and kernel memory per stuck client small) while leaving room for far
# more than real-time audio over any sane link. Linux doubles the value given.
SOCKET_SEND_BUFFER_BYTES = 128 * 1024


def bound_send_buffer(sock: Any) -> None:
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER_BYTES)
    except OSError:  # not fatal: only the slow-consumer bound gets looser
        pass
