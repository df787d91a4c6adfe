"""`kokorod service`: rendered plist and unit, command lines, install/uninstall
plans. Everything runs against a temporary HOME with a fake command runner; no
launchctl/systemctl command is ever executed for real."""

from __future__ import annotations

import argparse
import configparser
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import pytest

from kokorod import service
from kokorod.cli import service as service_command
from kokorod.service import steps, unit_files
from kokorod.service import LABEL, ServiceError

REPO = Path(__file__).resolve().parents[3]
REQUIRED_PLIST_KEYS = {
    "Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "ThrottleInterval", "ProcessType",
    "WorkingDirectory", "EnvironmentVariables", "StandardOutPath", "StandardErrorPath",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("KOKOROD_CACHE_DIR", "XDG_CACHE_HOME", "KOKOROD_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    return home


class FakeRunner:
    """Records commands; `fail` and `probe_ok` decide what they return."""

    def __init__(self, probe_ok: bool = False, fail: str | None = None) -> None:
        self.calls: list[tuple[list[str], bool]] = []
        self.probe_ok, self.fail = probe_ok, fail

    def __call__(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append((argv, check))
        if self.fail and self.fail in argv:
            raise ServiceError(f"`{shlex.join(argv)}` failed (exit 5): boom; hint")
        rc = 0 if check or self.probe_ok else 3
        return subprocess.CompletedProcess(argv, rc, stdout="\tstate = running\n\tpid = 42\n", stderr="")

    @property
    def actions(self) -> list[list[str]]:
        """The commands that change something (probes run with check=False)."""
        return [argv for argv, check in self.calls if check]


def spec_for(home: Path, platform: str, **kw: object) -> service.ServiceSpec:
    return service.build_spec(platform=platform, home=home, env={"PATH": "/usr/bin:/bin"}, **kw)  # type: ignore[arg-type]


# --- program resolution ------------------------------------------------------------


def test_program_is_the_installed_console_script() -> None:
    program = service.resolve_program()
    assert len(program) == 1, program
    path = Path(program[0])
    assert path.is_absolute() and path.is_file() and os.access(path, os.X_OK)
    assert path.name == "kokorod"


def test_program_falls_back_to_python_m(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unit_files.shutil, "which", lambda *a, **k: None)
    monkeypatch.setattr(unit_files.sys, "executable", str(tmp_path / "python3"))
    assert service.resolve_program() == (str(tmp_path / "python3"), "-m", "kokorod")
    (tmp_path / "kokorod").write_text("#!/bin/sh\n")
    assert service.resolve_program() == (str(tmp_path / "kokorod"),)


# --- cache dir ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("darwin", {}, "Library/Caches/kokorod"),
        ("linux", {}, ".cache/kokorod"),
        ("linux", {"XDG_CACHE_HOME": "/xdg"}, "/xdg/kokorod"),
        ("linux", {"XDG_CACHE_HOME": "relative"}, ".cache/kokorod"),  # ignored, per XDG spec
        ("darwin", {"KOKOROD_CACHE_DIR": "~/models"}, "models"),
        ("linux", {"KOKOROD_CACHE_DIR": "/srv/k", "XDG_CACHE_HOME": "/xdg"}, "/srv/k"),
    ],
)
def test_cache_dir(home: Path, platform: str, env: dict[str, str], expected: str) -> None:
    got = unit_files.default_cache_dir(platform, home, env)
    assert got.is_absolute()
    assert got == home / expected  # an absolute `expected` replaces home


def test_relative_cache_dir_override_is_made_absolute(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(home)
    spec = spec_for(home, "linux", cache_dir="rel/cache")
    assert spec.cache_dir == home / "rel" / "cache"


# --- plist ----------------------------------------------------------------------


def test_plist_parses_with_required_keys(home: Path) -> None:
    spec = spec_for(home, "darwin", host="::1", port=9000)
    plist = plistlib.loads(service.render_plist(spec))
    assert REQUIRED_PLIST_KEYS <= plist.keys()
    assert plist["Label"] == LABEL == "dev.kokorod.daemon"
    program = Path(plist["ProgramArguments"][0])
    assert program.is_absolute() and program.exists()
    assert plist["ProgramArguments"][1:] == ["serve", "--host", "::1", "--port", "9000"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert isinstance(plist["ThrottleInterval"], int) and plist["ThrottleInterval"] >= 5
    assert plist["ExitTimeOut"] > 5  # longer than the daemon's drain bound
    assert plist["ProcessType"] == "Interactive"
    env = plist["EnvironmentVariables"]
    cache = Path(env["KOKOROD_CACHE_DIR"])
    assert cache.is_absolute() and cache == home / "Library" / "Caches" / "kokorod"
    assert plist["WorkingDirectory"] == str(cache)
    path = env["PATH"].split(":")
    assert path[0] == str(program.parent)
    assert {"/usr/local/bin", "/opt/homebrew/bin", "/usr/bin", "/bin"} <= set(path)
    assert "KOKOROD_TOKEN_FILE" not in env
    logs = home / "Library" / "Logs" / "kokorod"
    assert Path(plist["StandardOutPath"]).parent == logs == Path(plist["StandardErrorPath"]).parent


def test_plist_escapes_awkward_paths(home: Path) -> None:
    cache = home / "A & B <c> \"q\" 'é' %d $X"
    spec = spec_for(home, "darwin", cache_dir=cache, token_file=home / "t&k")
    plist = plistlib.loads(service.render_plist(spec))
    assert plist["EnvironmentVariables"]["KOKOROD_CACHE_DIR"] == str(cache)
    assert plist["EnvironmentVariables"]["KOKOROD_TOKEN_FILE"] == str(home / "t&k")


def test_token_file_from_environment(home: Path) -> None:
    spec = service.build_spec(platform="darwin", home=home, env={"KOKOROD_TOKEN_FILE": "~/tok"})
    assert service.plist_dict(spec)["EnvironmentVariables"]["KOKOROD_TOKEN_FILE"] == str(home / "tok")


def test_network_bind_needs_token_or_insecure(home: Path) -> None:
    with pytest.raises(ServiceError, match="needs a token") as info:
        spec_for(home, "linux", host="0.0.0.0")
    assert "--token-file" in (info.value.fix or "")
    assert spec_for(home, "linux", host="0.0.0.0", token_file="/etc/tok").argv[-1] == "8765"
    assert spec_for(home, "linux", host="0.0.0.0", insecure=True).argv[-1] == "--insecure"


def test_control_characters_are_refused(home: Path) -> None:
    with pytest.raises(ServiceError, match="control characters"):
        spec_for(home, "darwin", cache_dir=home / "bad\nname")


def fill_plist_template(text: str, spec: service.ServiceSpec) -> str:
    fields = {
        "@KOKOROD@": spec.program[0], "@HOST@": spec.host, "@PORT@": str(spec.port),
        "@CACHE_DIR@": str(spec.cache_dir), "@LOG_DIR@": str(spec.log_dir), "@PATH@": spec.path,
    }
    for key, value in fields.items():
        text = text.replace(key, escape(value))
    assert "@" not in text.split("<plist", 1)[1], "unfilled field in the template"
    return text


def test_plist_template_matches_rendered_plist(home: Path) -> None:
    packaged = service.template_text(service.PLIST_TEMPLATE)  # via importlib.resources
    spec = spec_for(home, "darwin", cache_dir=home / "a & b")
    from_template = plistlib.loads(fill_plist_template(packaged, spec).encode())
    assert from_template == service.plist_dict(spec)
    # The human copy in launchd/ is the packaged one.
    assert (REPO / "launchd" / service.PLIST_TEMPLATE).read_text() == packaged


# --- systemd unit ------------------------------------------------------------------


def parse_unit(text: str) -> configparser.ConfigParser:
    # Environment= appears once per variable: collect repeated keys as a list.
    lines, seen = [], {}
    for line in text.splitlines():
        key = line.split("=", 1)[0]
        if line.startswith("Environment="):
            seen[key] = seen.get(key, 0) + 1
            line = f"Environment{seen[key]}={line.split('=', 1)[1]}"
        lines.append(line)
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string("\n".join(lines))
    return parser


def unit_environment(unit: configparser.ConfigParser) -> dict[str, str]:
    words = [w for k, v in unit["Service"].items() if k.startswith("Environment") for w in shlex.split(v)]
    return dict(w.replace("%%", "%").split("=", 1) for w in words)


def test_unit_renders(home: Path) -> None:
    spec = spec_for(home, "linux", port=9001)
    unit = parse_unit(service.render_unit(spec))
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    svc = unit["Service"]
    exec_start = shlex.split(svc["ExecStart"])
    assert Path(exec_start[0]).is_absolute() and Path(exec_start[0]).exists()
    assert exec_start[1:] == ["serve", "--host", "127.0.0.1", "--port", "9001"]
    assert svc["Restart"] == "on-failure"
    assert int(svc["RestartSec"]) > 0
    assert svc["KillSignal"] == "SIGTERM"
    assert 5 < int(svc["TimeoutStopSec"]) == service.STOP_TIMEOUT_S
    assert unit["Install"]["WantedBy"] == "default.target"
    env = unit_environment(unit)
    assert env["KOKOROD_CACHE_DIR"] == str(home / ".cache" / "kokorod") == svc["WorkingDirectory"]
    assert env["PATH"].split(":")[0] == str(Path(exec_start[0]).parent)


def test_unit_quotes_spaces_percent_and_dollar(home: Path, tmp_path: Path) -> None:
    cache = home / "my cache 100%"
    program = tmp_path / "bin dir $HOME" / "kokorod"
    spec = spec_for(home, "linux", cache_dir=cache, program=[str(program)])
    unit = parse_unit(service.render_unit(spec))
    exec_start = shlex.split(unit["Service"]["ExecStart"])
    assert exec_start[0] == str(program).replace("%", "%%").replace("$", "$$")
    assert unit["Service"]["WorkingDirectory"] == str(cache).replace("%", "%%")  # never quoted
    assert unit_environment(unit)["KOKOROD_CACHE_DIR"] == str(cache)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("cache_name", ["kokorod", "cache with spaces %h"])
def test_unit_passes_systemd_analyze_verify(home: Path, tmp_path: Path, cache_name: str) -> None:
    spec = spec_for(home, "linux", cache_dir=home / cache_name)
    unit_file = tmp_path / "units" / service.UNIT_NAME
    unit_file.parent.mkdir()
    unit_file.write_text(service.render_unit(spec))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # --user needs a runtime directory; a private one keeps the check offline.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    proc = subprocess.run(["systemd-analyze", "--user", "verify", "--man=no", str(unit_file)],
                          capture_output=True, text=True, env=env, timeout=60)
    complaints = [ln for ln in proc.stderr.splitlines() if service.UNIT_NAME in ln or str(unit_file) in ln]
    assert proc.returncode == 0 and not complaints, proc.stderr


# --- command lines ------------------------------------------------------------------


def test_launchctl_commands() -> None:
    plist = Path("/Users/me/Library/LaunchAgents/dev.kokorod.daemon.plist")
    target = "gui/501/dev.kokorod.daemon"
    assert service.launchctl_commands("install", uid=501, plist=plist) == [
        ["launchctl", "enable", target],
        ["launchctl", "bootstrap", "gui/501", str(plist)],
    ]
    assert service.launchctl_commands("install", uid=501, plist=plist, loaded=True)[0] == [
        "launchctl", "bootout", target]
    assert service.launchctl_commands("uninstall", uid=501, loaded=True) == [["launchctl", "bootout", target]]
    assert service.launchctl_commands("uninstall", uid=501, loaded=False) == []
    assert service.launchctl_commands("status", uid=501) == [["launchctl", "print", target]]
    with pytest.raises(ValueError):
        service.launchctl_commands("install", uid=501)  # no plist


def test_systemctl_commands() -> None:
    ctl = ["systemctl", "--user"]
    assert service.systemctl_commands("install") == [
        [*ctl, "daemon-reload"], [*ctl, "enable", "--now", "kokorod.service"]]
    assert service.systemctl_commands("install", active=True)[-1] == [*ctl, "restart", "kokorod.service"]
    assert service.systemctl_commands("uninstall") == [
        [*ctl, "disable", "--now", "kokorod.service"], [*ctl, "daemon-reload"]]
    assert service.systemctl_commands("status") == [[*ctl, "status", "--no-pager", "kokorod.service"]]


# --- install / uninstall ---------------------------------------------------------------


def test_install_dry_run_changes_nothing(home: Path) -> None:
    runner, printed = FakeRunner(), []
    plan = service.install("127.0.0.1", 8765, dry_run=True, platform="darwin", runner=runner, out=printed.append)
    assert runner.actions == []  # only read-only probes ran
    assert list(home.iterdir()) == []
    script = printed[0]
    target = home / "Library" / "LaunchAgents" / "dev.kokorod.daemon.plist"
    assert f"cat > {target} <<'EOF'" in script and "<key>ProgramArguments</key>" in script
    assert f"launchctl bootstrap gui/{os.getuid()} {target}" in script
    assert any(isinstance(step, service.WriteFile) for step in plan)


def test_install_darwin(home: Path) -> None:
    runner = FakeRunner(probe_ok=False)
    service.install("127.0.0.1", 8765, platform="darwin", runner=runner, out=lambda _: None)
    plist_file = home / "Library" / "LaunchAgents" / "dev.kokorod.daemon.plist"
    plist = plistlib.loads(plist_file.read_bytes())
    assert plist["Label"] == LABEL
    assert (home / "Library" / "Logs" / "kokorod").is_dir()
    assert Path(plist["WorkingDirectory"]).is_dir()
    uid = os.getuid()
    assert runner.actions == [["launchctl", "enable", f"gui/{uid}/{LABEL}"],
                              ["launchctl", "bootstrap", f"gui/{uid}", str(plist_file)]]


def test_reinstall_darwin_boots_out_first(home: Path) -> None:
    runner = FakeRunner(probe_ok=True)  # `launchctl print` succeeds: already loaded
    service.install("127.0.0.1", 9000, platform="darwin", runner=runner)
    assert [argv[1] for argv in runner.actions] == ["bootout", "enable", "bootstrap"]


def test_install_and_uninstall_linux(home: Path) -> None:
    runner = FakeRunner()
    service.install("127.0.0.1", 8765, platform="linux", runner=runner)
    unit_file = home / ".config" / "systemd" / "user" / "kokorod.service"
    assert "ExecStart=" in unit_file.read_text()
    assert (home / ".cache" / "kokorod").is_dir()
    assert runner.actions == service.systemctl_commands("install")

    runner = FakeRunner()
    service.uninstall(platform="linux", runner=runner)
    assert not unit_file.exists()
    assert runner.actions == service.systemctl_commands("uninstall")
    # Nothing left: a second uninstall does nothing.
    assert service.uninstall(platform="linux", runner=FakeRunner()) == []


def test_reinstall_linux_restarts_running_service(home: Path) -> None:
    runner = FakeRunner(probe_ok=True)
    service.install(platform="linux", runner=runner)
    assert runner.actions[-1] == ["systemctl", "--user", "restart", "kokorod.service"]


def test_uninstall_darwin(home: Path) -> None:
    service.install(platform="darwin", runner=FakeRunner())
    runner = FakeRunner(probe_ok=True)
    service.uninstall(platform="darwin", runner=runner)
    assert runner.actions == [["launchctl", "bootout", f"gui/{os.getuid()}/{LABEL}"]]
    assert not (home / "Library" / "LaunchAgents" / "dev.kokorod.daemon.plist").exists()


def test_uninstall_dry_run_keeps_the_unit(home: Path) -> None:
    service.install(platform="linux", runner=FakeRunner())
    printed: list[str] = []
    runner = FakeRunner()
    service.uninstall(dry_run=True, platform="linux", runner=runner, out=printed.append)
    assert runner.actions == []
    assert (home / ".config" / "systemd" / "user" / "kokorod.service").exists()
    assert "systemctl --user disable --now kokorod.service" in printed[0]


def test_monkeypatched_module_runner_is_used(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    monkeypatch.setattr(service, "run_command", runner)
    service.install(platform="linux")
    assert runner.actions == service.systemctl_commands("install")


def test_status(home: Path) -> None:
    state = service.status(platform="darwin", runner=FakeRunner(probe_ok=True))
    assert state.running and not state.installed
    assert "pid = 42" in state.detail
    state = service.status(platform="linux", runner=FakeRunner(probe_ok=False))
    assert not state.running


def test_unsupported_platform(home: Path) -> None:
    with pytest.raises(ServiceError, match="macOS"):
        service.install(platform="win32", runner=FakeRunner())


# --- errors ---------------------------------------------------------------------


def test_missing_tool_is_one_clear_line() -> None:
    with pytest.raises(ServiceError) as info:
        service.run_command(["kokorod-no-such-tool-xyz", "x"])
    assert "not found" in str(info.value) and "\n" not in str(info.value)


def test_failing_command_is_one_line_with_its_error() -> None:
    script = "import sys; sys.stderr.write('first\\nthe real problem\\n'); sys.exit(3)"
    with pytest.raises(ServiceError) as info:
        service.run_command([sys.executable, "-c", script])
    message = str(info.value)
    assert "exit 3" in message and "the real problem" in message and "\n" not in message
    assert service.run_command([sys.executable, "-c", script], check=False).returncode == 3


def test_systemctl_without_user_bus_hints_at_linger() -> None:
    assert "enable-linger" in steps.fix_hint("systemctl", "Failed to connect to bus: No medium found")


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kokorod")
    service_command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_dry_run(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "run_command", FakeRunner())
    args = cli(["service", "install", "--port", "9100", "--dry-run"])
    assert args.handler is args.func  # kokorod.cli dispatches on `handler`
    assert args.handler(args) == 0
    assert "--port 9100" in capsys.readouterr().out
    assert list(home.iterdir()) == []


def test_cli_reports_failure_in_one_line(home: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "run_command", FakeRunner(fail="daemon-reload"))
    monkeypatch.setattr(unit_files.sys, "platform", "linux")
    args = cli(["service", "install"])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("kokorod service: error: ") and err.count("\n") == 1


def test_cli_rejects_bad_port() -> None:
    with pytest.raises(SystemExit):
        cli(["service", "install", "--port", "70000"])
