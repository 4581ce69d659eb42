"""``genrekit`` entry point: a thin argparse dispatcher over ``genrekit.cli.<command>`` modules.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int`` and keeps heavy
imports (torch, matplotlib) inside ``run`` so ``genrekit --help`` and a cold predict stay fast.
User errors (:class:`GenrekitError`) print one line on stderr and exit 1, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import GenrekitError

COMMANDS = ["predict", "demo", "train", "evaluate", "compare", "sweep", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genrekit", description="Tell what genre a song is; train and compare genre classifiers.")
    parser.add_argument("--version", action="version", version=f"genrekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"genrekit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"genrekit.cli.{name}":
                continue  # command not installed in this build
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GenrekitError as exc:
        print(f"genrekit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genrekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
