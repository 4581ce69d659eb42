"""``genrekit cache info|clear``: what genrekit keeps in the user cache, and removing it.

    genrekit cache info              # each part's folder, size and file count
    genrekit cache clear             # the feature cache (what grows with every new data set)
    genrekit cache clear weights     # also: features, weights, efficientat, networks, or all
    genrekit cache clear all --dry-run

Only files genrekit itself writes are deleted (see :func:`genrekit.cache.clear_cache`); other files
under the cache folder are listed as "other" and left alone.
"""

from __future__ import annotations

import argparse
import json
import os

PARTS = ("features", "weights", "efficientat", "networks")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "cache",
        help="list or clear genrekit's cache (features, converted weights)",
        description="List (info) or delete (clear) what genrekit keeps in its cache folder "
        "(GENREKIT_CACHE_DIR, else $XDG_CACHE_HOME/genrekit or ~/.cache/genrekit): the feature cache of "
        "train/evaluate/compare, the converted musicnn weights, the downloaded EfficientAT weights and the backbone "
        "networks converted to ONNX. Only files genrekit writes are deleted.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="each part's folder, size and number of files")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    clear = sub.add_parser("clear", help="delete a part of the cache (default: the feature cache)")
    clear.add_argument("what", nargs="?", choices=(*PARTS, "all"), default="features",
                       help="features (default: rebuilt on the next train/evaluate), weights (converted again "
                       "from the musicnn wheel on the next prediction; may download it), efficientat (the "
                       "downloaded EfficientAT mn04 weights; downloaded again when needed), networks (the ONNX models "
                       "filled from those weights, converted again on the next prediction) or all")
    clear.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    p.set_defaults(func=run)
    return p


def _where() -> str:
    if os.environ.get("GENREKIT_CACHE_DIR"):
        return "GENREKIT_CACHE_DIR"
    return "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "default"


def run(args: argparse.Namespace) -> int:
    from genrekit.cache import cache_dir, cache_usage, clear_cache
    from genrekit.units import format_bytes

    root = cache_dir()
    if args.action == "info":
        parts = cache_usage(root)
        if args.json:
            print(json.dumps({"root": str(root), "parts": [
                {"name": p.name, "path": str(p.path), "files": len(p.files), "bytes": p.bytes,
                 "other_files": p.other_files, "other_bytes": p.other_bytes} for p in parts]}, indent=2))
            return 0
        print(f"cache: {root} ({_where()})" + ("" if root.is_dir() else ": does not exist yet"))
        total = 0
        for p in parts:
            n, size = (p.other_files, p.other_bytes) if p.name == "other" else (len(p.files), p.bytes)
            total += size
            line = f"  {p.name:<11} {format_bytes(size):>9} {n:>7} files  {p.description}"
            if p.name != "other" and p.other_files:
                line += f" (+{p.other_files} other files, left alone)"
            print(line)
        print(f"  {'total':<11} {format_bytes(total):>9}")
        return 0
    names = list(PARTS) if args.what == "all" else [args.what]
    files, nbytes = clear_cache(names, root, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {files} files, {format_bytes(nbytes)} ({', '.join(names)}) in {root}")
    return 0
