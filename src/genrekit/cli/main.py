"""``genrekit`` entry point: a thin argparse dispatcher over ``genrekit.cli.<command>`` modules.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int`` and keeps heavy
imports (torch, matplotlib) inside ``run`` so ``genrekit --help`` and a cold predict stay fast.
User errors (:class:`GenrekitError`) print one line on stderr and exit 1, never a traceback.
SIGTERM (what ``kill``, systemd and container runtimes send) is turned into :class:`Terminated`, a
KeyboardInterrupt, so it unwinds like Ctrl-C: temporary downloads (``genrekit-url-*``) and partial
files are removed by the same ``finally`` blocks, and the exit code is 143.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from pathlib import Path

from genrekit import __version__
from genrekit.errors import GenrekitError, printable

COMMANDS = ["predict", "batch", "demo", "train", "evaluate", "compare", "sweep", "serve", "info", "cache", "tag", "sort"]
WEIGHTS_COMMANDS = ["predict", "batch", "demo", "evaluate", "serve", "tag", "sort"]
WEIGHTS_ENV = "GENREKIT_MUSICNN_WHEEL"
EFFICIENTAT_ENV = "GENREKIT_EFFICIENTAT_WEIGHTS"  # = genrekit.backbones.efficientat.ENV_WEIGHTS (not imported: cold start)
#: (argparse dest, environment variable the weights lookup reads): each flag is passed on that way
WEIGHT_FLAGS = (("musicnn_weights", WEIGHTS_ENV), ("efficientat_weights", EFFICIENTAT_ENV))
#: Commands that train (torch: ``pip install 'genrekit[train]'``); every other runs without torch.
TORCH_COMMANDS = ("train", "compare", "sweep")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that cleanup runs as it does for Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


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
    for name in WEIGHTS_COMMANDS:  # commands that may load the pretrained default model
        if name in sub.choices:
            sub.choices[name].add_argument(
                "--musicnn-weights", metavar="PATH", default=None,
                help="musicnn 0.1.0 wheel, a folder holding it, or an unpacked musicnn package, for "
                "machines that cannot download it (same as GENREKIT_MUSICNN_WHEEL)")
            sub.choices[name].add_argument(
                "--efficientat-weights", metavar="PATH", default=None,
                help="EfficientAT mn04_as_mAP_432.pt (or a folder holding it), for machines that cannot "
                "download it; its SHA-256 is checked (same as GENREKIT_EFFICIENTAT_WEIGHTS)")
    return parser


def _refuse_unknown(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]) -> None:
    """Unknown arguments, answered by the command's own parser (its usage line, not the top
    level's) with the closest option it has: ``predict --fromat json`` -> "did you mean --format?"."""
    import difflib

    command = getattr(args, "command", None)
    sub = None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            sub = action.choices[command]
    target = sub or parser
    options = [o for a in target._actions for o in a.option_strings if o.startswith("--")]
    hints = []
    for word in extras:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], options, n=1, cutoff=0.6)
            if close:
                hints.append(f"did you mean {close[0]} (not {word.split('=', 1)[0]})?")
    target.error(f"unrecognized arguments: {' '.join(extras)}" + ("; " + " ".join(hints) if hints else ""))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _refuse_unknown(parser, args, extras)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    saved = {env: os.environ.get(env) for _, env in WEIGHT_FLAGS}
    for dest, env in WEIGHT_FLAGS:
        if getattr(args, dest, None):
            # the weights lookups read these first (after an explicit path): find_weights in
            # genrekit.backbones.musicnn and genrekit.backbones.efficientat
            os.environ[env] = str(Path(getattr(args, dest)).expanduser().resolve())
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)  # `genrekit serve`: uvicorn installs its own
    try:
        if args.command in TORCH_COMMANDS:  # before any data is read: the light install has no torch
            from genrekit.errors import require

            require("torch", f"genrekit {args.command}")
        return int(args.func(args) or 0)
    except GenrekitError as exc:
        print(printable(f"genrekit: error: {exc}"), file=sys.stderr)  # names in it may hold control characters
        return 1
    except ModuleNotFoundError as exc:  # an optional package (torch for training, ...): one line, the extra
        from genrekit.errors import missing_extra

        err = missing_extra(exc, f"genrekit {args.command}")
        if err is None:
            raise
        print(f"genrekit: error: {err}", file=sys.stderr)
        return 1
    except Terminated:
        print("genrekit: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("genrekit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `genrekit info --json | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python would complain again when flushing stdout at exit
        return 141
    finally:  # main() may run inside another program (tests, notebooks): leave its environment as found
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for env, value in saved.items():
            if value is None:
                os.environ.pop(env, None)
            else:
                os.environ[env] = value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
