"""The ``kokorod`` command line: serve, say, pipe, phonemize, voices, fetch, doctor, service.

One module per command family registers its subcommand and its handler; this
one builds the parser and turns errors into exit codes. The modules import
what they run inside their handlers, so ``kokorod --help`` loads no model code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from kokorod import __version__
from kokorod.cli import doctor, inspect, pipe, say, serve
from kokorod.cli import service as service_command
from kokorod.errors import KokorodError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kokorod", description="Real-time streaming speech daemon (Kokoro-82M).")
    parser.add_argument("--version", action="version", version=f"kokorod {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (serve, say, pipe, inspect, doctor, service_command):  # the order --help lists them in
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KokorodError as exc:
        print(f"kokorod: error: {exc.message}" + (f" (fix: {exc.fix})" if exc.fix else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Downstream closed (e.g. `kokorod voices | head`); not an error worth a traceback.
        return 0


if __name__ == "__main__":
    sys.exit(main())
