"""``kokorod pipe``: speak stdin as it arrives (e.g. an LLM's output), through
the daemon when one answers, else in-process (kokorod.cli.local_pipe)."""

from __future__ import annotations

import argparse

from kokorod.cli.options import add_client_args, add_engine_args, add_speech_args, check_client_args


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("pipe", help="speak stdin as it arrives (e.g. an LLM's output)")
    add_client_args(p)
    add_speech_args(p)
    add_engine_args(p)
    p.set_defaults(handler=run_pipe)


def run_pipe(args: argparse.Namespace) -> int:
    import asyncio

    from kokorod.cli.console import Console
    from kokorod.cli.local_pipe import local_pipe
    from kokorod.cli.stdin_text import StdinText
    from kokorod.cli.via_daemon import speak_via_daemon
    from kokorod.client import DaemonUnavailable

    check_client_args(args)
    console = Console()

    async def main() -> int:
        text = StdinText()  # one reader for either path: stdin cannot be read twice
        if not args.local:
            try:
                return await speak_via_daemon(args, text, "kokorod-pipe.wav", console)
            except DaemonUnavailable:
                pass
        return await local_pipe(args, text, console)

    try:
        return asyncio.run(main())
    finally:
        console.end()
