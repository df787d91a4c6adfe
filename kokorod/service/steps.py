"""A change to the login service as a plan of steps (make a directory, write or
remove a file, run launchctl/systemctl), carried out one by one or printed as a
shell script for ``--dry-run``; a failed command becomes a one-line ServiceError."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from kokorod.service.unit_files import LABEL, UNIT_NAME, ServiceError

COMMAND_TIMEOUT_S = 60


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


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def fix_hint(tool: str, output: str = "") -> str:
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
        raise ServiceError(f"`{cmd}` hung for {COMMAND_TIMEOUT_S} s", fix_hint(argv[0])) from None
    if check and proc.returncode != 0:
        out = proc.stderr or proc.stdout
        raise ServiceError(f"`{cmd}` failed (exit {proc.returncode}): {last_line(out)}", fix_hint(argv[0], out))
    return proc


def probe(argv: Sequence[str], run: Runner) -> bool:
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
