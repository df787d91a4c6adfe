"""``kokorod service install|uninstall|status``: the command-line face of
kokorod.service (which renders the files and runs launchctl/systemctl)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kokorod import service


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {text!r}")
    return int(text)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Add `service install|uninstall|status`; dispatch with `args.handler(args)`."""
    parser = subparsers.add_parser(
        "service",
        help="run kokorod at login (launchd on macOS, systemd --user on Linux)",
        description="Install kokorod as a per-user service that starts at login and restarts after a crash.",
    )
    actions = parser.add_subparsers(dest="service_action", metavar="{install,uninstall,status}")
    actions.required = True
    inst = actions.add_parser("install", help="write the service file and start the daemon")
    inst.add_argument("--host", default=service.DEFAULT_HOST, help=f"listen address (default {service.DEFAULT_HOST})")
    inst.add_argument("--port", type=_port, default=service.DEFAULT_PORT, help=f"port (default {service.DEFAULT_PORT})")
    inst.add_argument("--cache-dir", type=Path, help="model and voice cache (default: as `kokorod serve`)")
    inst.add_argument("--token-file", type=Path, help="token file (default: $KOKOROD_TOKEN_FILE, if set)")
    inst.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without a token")
    uninst = actions.add_parser("uninstall", help="stop the daemon and remove the service file")
    for sub in (inst, uninst):
        sub.add_argument("--dry-run", action="store_true", help="print the steps instead of doing them")
    actions.add_parser("status", help="show whether the service is installed and running")
    # kokorod.cli dispatches on `handler`; `func` is the common argparse idiom.
    parser.set_defaults(handler=run_service, func=run_service)
    return parser


def run_service(args: argparse.Namespace) -> int:
    try:
        if args.service_action == "install":
            service.install(args.host, args.port, args.dry_run, cache_dir=args.cache_dir,
                    token_file=args.token_file, insecure=args.insecure)
            if not args.dry_run:
                print(f"kokorod service installed; ws://{args.host}:{args.port}/v1/stream starts at login")
                if sys.platform != "darwin":
                    print("to start it at boot without logging in: loginctl enable-linger $USER")
            return 0
        if args.service_action == "uninstall":
            plan = service.uninstall(args.dry_run)
            if not args.dry_run:
                print("kokorod service removed" if plan else "kokorod service is not installed")
            return 0
        state = service.status()
        summary = "running" if state.running else "installed, not running" if state.installed else "not installed"
        print(f"kokorod service: {summary} ({state.path})")
        if state.detail:
            print(state.detail)
        return 0 if state.running else 3  # 3 = not running, as in systemctl/LSB
    except service.ServiceError as exc:
        print(f"kokorod service: error: {exc}", file=sys.stderr)
        return 1
