"""``kokorod fetch`` and ``kokorod doctor``: prepare the assets for offline use,
and report which are found where (the work is in kokorod.assets.doctor)."""

from __future__ import annotations

import argparse

from kokorod import __version__


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("fetch", help="prepare every asset for offline use")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(handler=run_fetch)

    p = sub.add_parser("doctor", help="report which assets are found where")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(handler=run_doctor)


def run_fetch(args: argparse.Namespace) -> int:
    from kokorod.assets.doctor import fetch
    from kokorod.assets.paths import resolve_cache_dir

    fetch(resolve_cache_dir(args.cache_dir))
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from kokorod.assets.doctor import doctor
    from kokorod.assets.paths import resolve_cache_dir

    cache = resolve_cache_dir(args.cache_dir)
    print(f"kokorod {__version__}, cache {cache}")
    checks = doctor(cache)
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1
