"""Run kokorod as a per-user login service: a launchd LaunchAgent on macOS, a
systemd user unit on Linux (`kokorod service install|uninstall|status`).

The plist is rendered through plistlib (any path is escaped correctly), the unit
from the packaged template with systemd quoting. Command lines come from pure
functions and every change is a plan of steps, so tests check each step without
touching launchd or systemd, and `--dry-run` prints the plan as a shell script.
"""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

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
COMMAND_TIMEOUT_S = 60


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


def _platform(platform: str | None = None) -> str:
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
    platform = _platform(platform)
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


def launchctl_commands(
    action: str, *, uid: int, plist: Path | None = None, loaded: bool = False, label: str = LABEL
) -> list[list[str]]:
    target = f"gui/{uid}/{label}"
    if action == "install" and plist is not None:
        # bootstrap refuses a label that is already loaded; `enable` clears a
        # leftover `launchctl disable`, which would also make bootstrap fail.
        reload = [["launchctl", "bootout", target]] if loaded else []
        return [*reload, ["launchctl", "enable", target], ["launchctl", "bootstrap", f"gui/{uid}", str(plist)]]
    if action == "uninstall":
        return [["launchctl", "bootout", target]] if loaded else []
    if action == "status":
        return [["launchctl", "print", target]]
    raise ValueError(f"unknown action {action!r} (install needs plist=)")


def systemctl_commands(action: str, *, active: bool = False, unit: str = UNIT_NAME) -> list[list[str]]:
    ctl = ["systemctl", "--user"]
    if action == "install":
        # enable --now leaves a running instance alone, so a reinstall (new port,
        # new path) restarts it explicitly.
        restart = [[*ctl, "restart", unit]] if active else []
        return [[*ctl, "daemon-reload"], [*ctl, "enable", "--now", unit], *restart]
    if action == "uninstall":  # the unit file is removed between these two
        return [[*ctl, "disable", "--now", unit], [*ctl, "daemon-reload"]]
    if action == "is-active":
        return [[*ctl, "is-active", "--quiet", unit]]
    if action == "status":
        return [[*ctl, "status", "--no-pager", unit]]
    raise ValueError(f"unknown action {action!r}")


@dataclass(frozen=True)
class MakeDir:
    path: Path


@dataclass(frozen=True)
class WriteFile:
    path: Path
    content: bytes


@dataclass(frozen=True)
class RemoveFile:
    path: Path


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    attempts: int = 1


Step = MakeDir | WriteFile | RemoveFile | Run
Runner = Callable[[Sequence[str], bool], "subprocess.CompletedProcess[str]"]


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _hint(tool: str, output: str = "") -> str:
    if tool == "launchctl":
        return f"see `launchctl print gui/{os.getuid()}/{LABEL}` and ~/Library/Logs/kokorod/"
    if tool == "systemctl" and ("bus" in output.lower() or "XDG_RUNTIME_DIR" in output):
        return ("no systemd user manager reachable: use a real login session (not su/sudo) "
                "or `loginctl enable-linger $USER`")
    if tool == "systemctl":
        return f"see `journalctl --user -u {UNIT_NAME}`"
    return "check that it is installed and works"


def run_command(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one service-manager command; failures become a one-line ServiceError."""
    cmd = shlex.join(argv)
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        need = {"launchctl": "it ships with macOS", "systemctl": "`kokorod service` needs systemd"}
        raise ServiceError(f"`{argv[0]}` not found on PATH", need.get(argv[0], "install it")) from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"`{cmd}` hung for {COMMAND_TIMEOUT_S} s", _hint(argv[0])) from None
    if check and proc.returncode != 0:
        out = proc.stderr or proc.stdout
        raise ServiceError(f"`{cmd}` failed (exit {proc.returncode}): {_one_line(out)}", _hint(argv[0], out))
    return proc


def _probe(argv: Sequence[str], run: Runner) -> bool:
    """Whether a read-only query succeeds; a missing tool counts as no."""
    try:
        return run(argv, False).returncode == 0
    except ServiceError:
        return False


def execute(plan: Sequence[Step], runner: Runner | None = None) -> None:
    run = runner or run_command  # looked up per call so tests can monkeypatch it
    for step in plan:
        try:
            if isinstance(step, MakeDir):
                step.path.mkdir(parents=True, exist_ok=True)
            elif isinstance(step, WriteFile):
                step.path.parent.mkdir(parents=True, exist_ok=True)
                # Write, then rename: launchd/systemd never see a half-written file.
                tmp = step.path.with_name(step.path.name + ".tmp")
                tmp.write_bytes(step.content)
                tmp.chmod(0o644)
                os.replace(tmp, step.path)
            elif isinstance(step, RemoveFile):
                step.path.unlink(missing_ok=True)
            else:
                for attempt in range(1, step.attempts + 1):
                    try:
                        run(step.argv, True)
                        break
                    except ServiceError:
                        if attempt == step.attempts:
                            raise
                        time.sleep(1.0)  # launchd may still be tearing down the old job
        except OSError as exc:
            where = getattr(step, "path", "")
            raise ServiceError(f"cannot change {where}: {exc.strerror or exc}", "check its permissions") from None


def format_plan(plan: Sequence[Step]) -> str:
    """The plan as a shell script, to review or run by hand."""
    lines: list[str] = []
    for step in plan:
        if isinstance(step, MakeDir):
            lines.append(f"mkdir -p {shlex.quote(str(step.path))}")
        elif isinstance(step, WriteFile):
            body = step.content.decode().rstrip("\n")
            lines += [f"cat > {shlex.quote(str(step.path))} <<'EOF'", body, "EOF"]
        elif isinstance(step, RemoveFile):
            lines.append(f"rm -f {shlex.quote(str(step.path))}")
        else:
            lines.append(shlex.join(step.argv))
    return "\n".join(lines)


def plist_path(home: Path) -> Path:
    return home / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def unit_path(home: Path) -> Path:
    return home / ".config" / "systemd" / "user" / UNIT_NAME


def _carry_out(plan: list[Step], dry_run: bool, run: Runner, out: Callable[[str], None]) -> list[Step]:
    if dry_run:
        out(format_plan(plan) if plan else "# kokorod service is not installed; nothing to do")
    else:
        execute(plan, run)
    return plan


def install(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    dry_run: bool = False,
    *,
    cache_dir: Path | str | None = None,
    token_file: Path | str | None = None,
    insecure: bool = False,
    platform: str | None = None,
    runner: Runner | None = None,
    out: Callable[[str], None] = print,
) -> list[Step]:
    """Write the service file and (re)start the service; returns the plan."""
    platform, home, run = _platform(platform), Path.home(), runner or run_command
    spec = build_spec(host, port, platform=platform, home=home, cache_dir=cache_dir,
                      token_file=token_file, insecure=insecure)
    plan: list[Step] = [MakeDir(spec.cache_dir)]  # the working directory must exist
    if platform == "darwin":
        uid, path = os.getuid(), plist_path(home)
        loaded = _probe(launchctl_commands("status", uid=uid)[0], run)
        plan += [MakeDir(spec.log_dir), WriteFile(path, render_plist(spec))]
        for argv in launchctl_commands("install", uid=uid, plist=path, loaded=loaded):
            plan.append(Run(tuple(argv), attempts=3 if loaded and argv[1] == "bootstrap" else 1))
    else:
        active = _probe(systemctl_commands("is-active")[0], run)
        plan.append(WriteFile(unit_path(home), render_unit(spec).encode()))
        plan += [Run(tuple(argv)) for argv in systemctl_commands("install", active=active)]
    return _carry_out(plan, dry_run, run, out)


def uninstall(
    dry_run: bool = False,
    *,
    platform: str | None = None,
    runner: Runner | None = None,
    out: Callable[[str], None] = print,
) -> list[Step]:
    """Stop the service and remove its file; an empty plan means nothing was installed."""
    platform, home, run = _platform(platform), Path.home(), runner or run_command
    plan: list[Step] = []
    if platform == "darwin":
        uid, path = os.getuid(), plist_path(home)
        loaded = _probe(launchctl_commands("status", uid=uid)[0], run)
        plan += [Run(tuple(argv)) for argv in launchctl_commands("uninstall", uid=uid, loaded=loaded)]
        plan += [RemoveFile(path)] if path.exists() else []
    elif unit_path(home).exists():
        disable, reload = systemctl_commands("uninstall")
        plan += [Run(tuple(disable)), RemoveFile(unit_path(home)), Run(tuple(reload))]
    return _carry_out(plan, dry_run, run, out)


@dataclass(frozen=True)
class ServiceStatus:
    installed: bool  # the service file exists
    running: bool
    path: Path
    detail: str  # the service manager's own report, trimmed


def status(*, platform: str | None = None, runner: Runner | None = None) -> ServiceStatus:
    platform, home, run = _platform(platform), Path.home(), runner or run_command
    if platform == "darwin":
        path = plist_path(home)
        proc = run(launchctl_commands("status", uid=os.getuid())[0], False)
        # `launchctl print` is long; keep the lines that answer "is it up?".
        keep = [ln.strip() for ln in proc.stdout.splitlines()
                if re.match(r"\s*(state|pid|last exit code|program) = ", ln)]
        running = proc.returncode == 0 and "state = running" in keep
        detail = "\n".join(dict.fromkeys(keep)) if proc.returncode == 0 else f"{LABEL} is not loaded"
    else:
        path = unit_path(home)
        proc = run(systemctl_commands("status")[0], False)
        if proc.returncode not in (0, 3, 4):  # 3: inactive or failed, 4: no such unit
            raise ServiceError(f"`systemctl --user status` failed: {_one_line(proc.stderr)}",
                               _hint("systemctl", proc.stderr))
        running = proc.returncode == 0
        detail = (proc.stdout or proc.stderr).rstrip()
    return ServiceStatus(installed=path.exists(), running=running, path=path, detail=detail)
