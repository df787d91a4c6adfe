"""What a login service is made of: its settings (``ServiceSpec``), the launchd
plist and the systemd user unit they render to.

The plist is rendered through plistlib (any path is escaped correctly), the unit
from the packaged template with systemd quoting; all pure, so tests read the
files without launchd or systemd.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from kokorod.auth import is_loopback
from kokorod.assets.paths import expand_home, default_cache_dir
from kokorod.errors import KokorodError

LABEL = "dev.kokorod.daemon"
UNIT_NAME = "kokorod.service"
PLIST_TEMPLATE = f"{LABEL}.plist.template"
UNIT_TEMPLATE = "kokorod.service.template"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# The daemon drains for at most 5 s after SIGTERM; the service manager waits a
# bit longer before SIGKILL. Mirrors TimeoutStopSec= in the unit template.
STOP_TIMEOUT_S = 10
# launchd respawns a crashed job no sooner than this, so a crash loop cannot spin.
THROTTLE_INTERVAL_S = 10
# Appended to the daemon's PATH: service managers start jobs with a bare PATH,
# and the first-run voice fetch needs npm (Homebrew, node installers).
SYSTEM_PATH = ("/usr/local/bin", "/opt/homebrew/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")


class ServiceError(KokorodError):
    """A one-line, user-facing failure; `fix` says what to do about it."""


@dataclass(frozen=True)
class ServiceSpec:
    """Everything that varies between installations."""

    program: tuple[str, ...]  # argv prefix that runs kokorod
    host: str
    port: int
    cache_dir: Path
    log_dir: Path  # launchd only; systemd logs to the journal
    path: str
    token_file: Path | None = None
    insecure: bool = False  # pass --insecure: a non-loopback bind without a token

    @property
    def argv(self) -> list[str]:
        extra = ["--insecure"] if self.insecure else []
        return [*self.program, "serve", "--host", self.host, "--port", str(self.port), *extra]

    def environment(self) -> dict[str, str]:
        # PYTHONUNBUFFERED: log lines reach the log file / journal as they happen.
        env = {"KOKOROD_CACHE_DIR": str(self.cache_dir), "PATH": self.path, "PYTHONUNBUFFERED": "1"}
        if self.token_file is not None:
            env["KOKOROD_TOKEN_FILE"] = str(self.token_file)
        return env


def resolve_program() -> tuple[str, ...]:
    """The command that starts this kokorod, with an absolute path."""
    found = shutil.which("kokorod")
    if found:
        return (str(Path(found).absolute()),)
    beside = Path(sys.executable).parent / "kokorod"
    if beside.is_file():
        return (str(beside.absolute()),)
    return (str(Path(sys.executable).absolute()), "-m", "kokorod")


def service_path(program: Sequence[str], env: dict[str, str]) -> str:
    dirs = [str(Path(program[0]).parent)]
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm:  # e.g. nvm puts it under ~/.nvm, which no default PATH has
        dirs.append(str(Path(npm).absolute().parent))
    # A ':' inside a directory name cannot be represented in PATH.
    return ":".join(dict.fromkeys(d for d in [*dirs, *SYSTEM_PATH] if ":" not in d))


def service_platform(platform: str | None = None) -> str:
    platform = platform or sys.platform
    if platform == "darwin":
        return "darwin"
    if platform.startswith("linux"):
        return "linux"
    raise ServiceError(f"`kokorod service` supports macOS (launchd) and Linux (systemd), not {platform}",
                       "run `kokorod serve` from your own service manager instead")


def build_spec(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    platform: str | None = None,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    cache_dir: Path | str | None = None,
    token_file: Path | str | None = None,
    insecure: bool = False,
    program: Sequence[str] | None = None,
) -> ServiceSpec:
    platform = service_platform(platform)
    home = Path(home) if home is not None else Path.home()
    env = dict(os.environ) if env is None else env
    program = tuple(program) if program is not None else resolve_program()
    if not 0 < port < 65536:
        raise ServiceError(f"port {port} is out of range", "use a port from 1 to 65535")
    token = token_file or env.get("KOKOROD_TOKEN_FILE")
    if not token and not insecure and not is_loopback(host):
        # The daemon would refuse to start, and the service manager would keep
        # respawning it. A token itself never goes into the world-readable file.
        raise ServiceError(f"a service listening on {host} needs a token",
                           "pass --token-file FILE, or --insecure if anyone on the network may use it")
    spec = ServiceSpec(
        program=program,
        host=host,
        port=port,
        cache_dir=expand_home(str(cache_dir), home) if cache_dir else default_cache_dir(platform, home, env),
        log_dir=home / "Library" / "Logs" / "kokorod",
        path=service_path(program, env),
        token_file=expand_home(str(token), home) if token else None,
        insecure=insecure,
    )
    # Neither plists (XML 1.0) nor unit files can carry control characters.
    paths = [spec.cache_dir, spec.log_dir, *([spec.token_file] if spec.token_file else [])]
    for value in [host, *program, *map(str, paths)]:
        if not value or any(ord(c) < 0x20 or c == "\x7f" for c in value):
            raise ServiceError(f"{value!r} is empty or has control characters", "choose another host or path")
    return spec


def template_text(name: str) -> str:
    """A packaged template, found through importlib.resources so wheels work too."""
    return resources.files("kokorod").joinpath("service_templates").joinpath(name).read_text("utf-8")


def plist_dict(spec: ServiceSpec) -> dict[str, object]:
    """The LaunchAgent; launchd/dev.kokorod.daemon.plist.template is its hand-written twin."""
    return {
        "Label": LABEL,
        "ProgramArguments": spec.argv,
        "RunAtLoad": True,
        # Respawn after a crash, a kill or an error exit (throttled); a clean
        # exit, such as a drained SIGTERM, stays down.
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": THROTTLE_INTERVAL_S,
        "ExitTimeOut": STOP_TIMEOUT_S,
        # No background-QoS throttling, which would add audio latency.
        "ProcessType": "Interactive",
        "WorkingDirectory": str(spec.cache_dir),
        "EnvironmentVariables": spec.environment(),
        "StandardOutPath": str(spec.log_dir / "kokorod.out.log"),
        "StandardErrorPath": str(spec.log_dir / "kokorod.err.log"),
    }


def render_plist(spec: ServiceSpec) -> bytes:
    return plistlib.dumps(plist_dict(spec), sort_keys=False)


_SAFE_WORD = re.compile(r"[\w./:,+=@-]+")


def systemd_quote(word: str, *, exec_line: bool = False) -> str:
    """One word for ExecStart= / Environment=: systemd expands %-specifiers in
    both (and $VAR in ExecStart=), then splits on whitespace, honouring double
    quotes with C-style backslash escapes."""
    word = word.replace("%", "%%")
    if exec_line:
        word = word.replace("$", "$$")
    if _SAFE_WORD.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(spec: ServiceSpec) -> str:
    fields = {
        "EXEC_START": " ".join(systemd_quote(w, exec_line=True) for w in spec.argv),
        # WorkingDirectory= is taken verbatim (quotes would become part of the
        # path); only specifiers are expanded.
        "WORKING_DIRECTORY": str(spec.cache_dir).replace("%", "%%"),
        # One assignment per Environment= line, for readability.
        "ENVIRONMENT": "\nEnvironment=".join(systemd_quote(f"{k}={v}") for k, v in spec.environment().items()),
    }
    return re.sub(r"@([A-Z_]+)@", lambda m: fields[m.group(1)], template_text(UNIT_TEMPLATE))
