"""Several real daemons behind Debian's HAProxy running deploy/haproxy/haproxy.cfg.

The config under test is the shipped file itself: only its listen address, its
server addresses (one line per daemon, cloned from the first) and its stats
socket path are rewritten, and each rewrite must match exactly, so a change to
the shipped file that this helper cannot follow fails loudly instead of testing
something else.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from .daemon import ROOT, DaemonProcess, free_port, stop_process

HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
TOKEN = "fleet-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_START_TIMEOUT_S = 60.0


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)


def _replace_one(pattern: str, repl: str, text: str) -> str:
    new, n = re.subn(pattern, repl, text, flags=re.MULTILINE)
    if n != 1:
        raise AssertionError(f"deploy/haproxy/haproxy.cfg: expected one match of {pattern!r}, found {n}")
    return new


def render_haproxy_config(text: str, *, listen_port: int, server_ports: list[int], stats_socket: Path) -> str:
    """The shipped config with test addresses: every other line is kept as is."""
    text = _replace_one(r"^(\s*bind\s+)\S+", rf"\g<1>127.0.0.1:{listen_port}", text)
    text = _replace_one(r"^(\s*stats socket\s+)\S+", rf"\g<1>{stats_socket}", text)
    servers = list(re.finditer(r"^(\s*server\s+)(\S+?)(\d*)(\s+)\S+(.*)$", text, flags=re.MULTILINE))
    if not servers:
        raise AssertionError("deploy/haproxy/haproxy.cfg: no server line")
    indent, name, _, gap, rest = servers[0].groups()
    lines = "\n".join(f"{indent}{name}{i + 1}{gap}127.0.0.1:{port}{rest}" for i, port in enumerate(server_ports))
    return text[:servers[0].start()] + lines + text[servers[-1].end():]


class Haproxy:
    """haproxy in the foreground (-db) on a free port, logging to a file."""

    def __init__(self, binary: str, server_ports: list[int]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kokorod-haproxy-"))
        self.port = free_port()
        self.stats_socket = self.dir / "admin.sock"
        self.config_path = self.dir / "haproxy.cfg"
        self.config_path.write_text(render_haproxy_config(
            HAPROXY_CFG.read_text(), listen_port=self.port, server_ports=server_ports, stats_socket=self.stats_socket))
        self.url = f"ws://127.0.0.1:{self.port}/v1/stream"
        self.log_path = self.dir / "haproxy.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "-db", "-f", str(self.config_path)],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self.stats_socket.exists() or not _accepts(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("haproxy did not start listening")
            time.sleep(0.1)

    def command(self, line: str) -> str:
        """One runtime API command over the stats socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.stats_socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_status(self) -> dict[str, tuple[str, str]]:
        """Server name -> (health status, last check): ("UP", "L7OK"),
        ("DOWN", "L4CON"), ("UP 1/2", "INI") while the first check is pending."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        return {r["svname"]: (r["status"], r["check_status"]) for r in rows
                if r["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_status(self, server: str, status: str, timeout_s: float = 120.0) -> None:
        """Until HAProxy's health checks have put ``server`` in ``status`` (UP or DOWN)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got, check = self.server_status().get(server, ("?", "?"))
            if got == status and check != "INI":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{server} not {status}: {self.server_status()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Fleet:
    """N daemons (each with its own extra flags, all with the same token) behind
    one HAProxy; servers are named kokorod1..N in daemon order."""

    def __init__(self, binary: str, *per_daemon_args: tuple[str, ...]) -> None:
        self.daemons: list[DaemonProcess] = []
        self.haproxy: Haproxy | None = None
        # Started side by side: each load is mostly single-threaded G2P setup.
        with concurrent.futures.ThreadPoolExecutor(len(per_daemon_args)) as pool:
            futures = [pool.submit(DaemonProcess, "--token", TOKEN, *args) for args in per_daemon_args]
        failures = [f.exception() for f in futures if f.exception() is not None]
        self.daemons = [f.result() for f in futures if f.exception() is None]
        if failures:
            self.stop()
            raise failures[0]
        try:
            self.haproxy = Haproxy(binary, [d.port for d in self.daemons])
            for i in range(len(self.daemons)):
                self.haproxy.wait_status(self.name(i), "UP")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        assert self.haproxy is not None
        return self.haproxy.url

    @staticmethod
    def name(index: int) -> str:
        return f"kokorod{index + 1}"

    def metric(self, index: int, name: str) -> float:
        """One unlabelled sample from daemon ``index``'s /metrics, read directly."""
        request = urllib.request.Request(self.daemons[index].http + "/metrics", headers=AUTH)
        body = urllib.request.urlopen(request, timeout=30).read().decode()
        match = re.search(rf"^{re.escape(name)} (\S+)$", body, flags=re.MULTILINE)
        if match is None:
            raise AssertionError(f"{name} not in daemon {index}'s metrics")
        return float(match.group(1))

    def connections(self) -> list[int]:
        """WebSocket connections each daemon has accepted so far."""
        return [int(self.metric(i, "kokorod_connections_total")) for i in range(len(self.daemons))]

    def diagnostics(self) -> str:
        parts = [f"--- daemon {i} ---\n{d.log()[-1500:]}" for i, d in enumerate(self.daemons)]
        if self.haproxy is not None:
            parts.append(f"--- haproxy ---\n{self.haproxy.log()[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for daemon in self.daemons:
            daemon.stop()
