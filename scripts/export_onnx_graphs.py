"""Write the weight-free ONNX graph structures that genrekit commits (``src/genrekit/backbones/graphs``).

    python scripts/export_onnx_graphs.py [--check]

musicnn's graphs are built with ``onnx.helper`` (``genrekit.backbones.musicnn_onnx.build_structures``).
A network ported to torch can be added the same way: ``torch.onnx.export`` its eval module, then
``onnx_graphs.strip_initializers`` so that only names, shapes and types stay; its weights are
poured in on the user's machine from the published file. ``--check`` exits non-zero when a
committed structure differs from what the code builds now.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def structures() -> dict[Path, bytes]:
    """{committed path: serialized structure} of every graph built here."""
    from genrekit.backbones import musicnn_onnx

    built = musicnn_onnx.build_structures()
    return {path: built[part].SerializeToString() for part, path in musicnn_onnx.STRUCTURES.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.models.modelfile import atomic_path

    bad = 0
    for path, blob in structures().items():
        if args.check:
            same = path.is_file() and path.read_bytes() == blob
            print(f"{path.relative_to(ROOT)}: {'up to date' if same else 'DIFFERS from the code'}")
            bad += not same
            continue
        with atomic_path(path) as tmp:
            tmp.write_bytes(blob)
        print(f"wrote {path.relative_to(ROOT)} ({len(blob)} bytes, no weights)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
