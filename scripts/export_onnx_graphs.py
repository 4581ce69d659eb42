"""Write the weight-free ONNX graph structures that genrekit commits (``src/genrekit/backbones/graphs``).

    python scripts/export_onnx_graphs.py [--check]

musicnn's graphs are built with ``onnx.helper`` (``genrekit.backbones.musicnn_onnx.build_structures``).
EfficientAT mn04, ported to torch, is exported from its eval module with ``torch.onnx.export``
(``genrekit.backbones.efficientat_onnx.build_structure``), then ``onnx_graphs.strip_initializers``
keeps only names, shapes and types; its weights are poured in on the user's machine from the
published file. ``--check`` exits non-zero when a committed structure differs from what the code
builds now (mn04's needs torch: without it that structure is reported as not checked).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def structures() -> dict[Path, bytes]:
    """{committed path: serialized structure} of every graph built here."""
    from genrekit.backbones import musicnn_onnx

    built = musicnn_onnx.build_structures()
    out = {path: built[part].SerializeToString() for part, path in musicnn_onnx.STRUCTURES.items()}
    if importlib.util.find_spec("torch") is not None:  # the mn04 export runs the torch port
        from genrekit.backbones import efficientat_onnx

        out[efficientat_onnx.STRUCTURE] = efficientat_onnx.build_structure().SerializeToString()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.models.modelfile import atomic_path

    bad = 0
    built = structures()
    for path in sorted(set((ROOT / "src" / "genrekit" / "backbones" / "graphs").glob("*.onnx")) - set(built)):
        print(f"{path.relative_to(ROOT)}: not checked (exporting it needs torch: pip install 'genrekit[train]')")
    for path, blob in built.items():
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
