"""Run kokorod as a per-user login service: a launchd LaunchAgent on macOS, a
systemd user unit on Linux (`kokorod service install|uninstall|status`).

What gets written is in ``unit_files`` and how a change is carried out in
``steps``; here, which steps install, uninstall or query the service. Command
lines come from pure functions and every change is a plan of steps, so tests
check each step without touching launchd or systemd, and `--dry-run` prints the
plan as a shell script.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kokorod.service.steps import (COMMAND_TIMEOUT_S, MakeDir, RemoveFile, Run, Runner, Step, WriteFile, execute,
                                   fix_hint, format_plan, last_line, probe, run_command)
from kokorod.service.unit_files import (DEFAULT_HOST, DEFAULT_PORT, LABEL, PLIST_TEMPLATE, STOP_TIMEOUT_S,
                                        SYSTEM_PATH, THROTTLE_INTERVAL_S, UNIT_NAME, UNIT_TEMPLATE, ServiceError,
                                        ServiceSpec, build_spec, plist_dict, render_plist, render_unit,
                                        resolve_program, service_path, service_platform, systemd_quote,
                                        template_text)

__all__ = ["COMMAND_TIMEOUT_S", "DEFAULT_HOST", "DEFAULT_PORT", "LABEL", "PLIST_TEMPLATE", "STOP_TIMEOUT_S",
           "SYSTEM_PATH", "THROTTLE_INTERVAL_S", "UNIT_NAME", "UNIT_TEMPLATE", "MakeDir", "RemoveFile", "Run",
           "Runner", "ServiceError", "ServiceSpec", "ServiceStatus", "Step", "WriteFile", "build_spec",
           "execute", "format_plan", "install", "launchctl_commands", "plist_dict",
           "plist_path", "render_plist", "render_unit", "resolve_program", "run_command", "service_path",
           "status", "systemctl_commands", "systemd_quote", "template_text", "uninstall", "unit_path"]


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
    platform, home, run = service_platform(platform), Path.home(), runner or run_command
    spec = build_spec(host, port, platform=platform, home=home, cache_dir=cache_dir,
                      token_file=token_file, insecure=insecure)
    plan: list[Step] = [MakeDir(spec.cache_dir)]  # the working directory must exist
    if platform == "darwin":
        uid, path = os.getuid(), plist_path(home)
        loaded = probe(launchctl_commands("status", uid=uid)[0], run)
        plan += [MakeDir(spec.log_dir), WriteFile(path, render_plist(spec))]
        for argv in launchctl_commands("install", uid=uid, plist=path, loaded=loaded):
            plan.append(Run(tuple(argv), attempts=3 if loaded and argv[1] == "bootstrap" else 1))
    else:
        active = probe(systemctl_commands("is-active")[0], run)
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
    platform, home, run = service_platform(platform), Path.home(), runner or run_command
    plan: list[Step] = []
    if platform == "darwin":
        uid, path = os.getuid(), plist_path(home)
        loaded = probe(launchctl_commands("status", uid=uid)[0], run)
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
    platform, home, run = service_platform(platform), Path.home(), runner or run_command
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
            raise ServiceError(f"`systemctl --user status` failed: {last_line(proc.stderr)}",
                               fix_hint("systemctl", proc.stderr))
        running = proc.returncode == 0
        detail = (proc.stdout or proc.stderr).rstrip()
    return ServiceStatus(installed=path.exists(), running=running, path=path, detail=detail)
