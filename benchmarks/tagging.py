"""What the safe write costs: ``genrekit.library.tagging.write_state`` as ``genrekit tag`` calls it
(copy to a temp file in the same folder, the genre edited in the copy (ID3 frame by frame, other
formats by mutagen), read-back and audio checks, fsync, keep owner/mode/mtime, the undo record
with both SHA-256s and the byte recipe, atomic rename) versus mutagen editing the file in place,
per format, on full 30 s GTZAN clips
encoded like the test files (tests/library_files.py: title, artist, album, cover, ReplayGain,
two genres). Each timing is the median of --repeat writes of a genre value to a fresh copy.

    python benchmarks/tagging.py [--repeat 5] [--clip rock/rock.00000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--clip", default="rock/rock.00000")
    args = ap.parse_args()

    import mutagen

    from genrekit.datasets import clip_by_stem
    from genrekit.library.tagging import GenreState, _apply, _kind_of, write_state
    from tests.library_files import FORMATS, add_rich_tags, clip_samples, encode

    y, sr = clip_samples(clip_by_stem(SHARED / "gtzan-clips", args.clip), seconds=30.0)
    print(f"{'format':<9} {'size':>8}  {'in place (mutagen)':>19}  {'safe write':>10}  ratio")
    with tempfile.TemporaryDirectory(prefix="genrekit-bench-tag-") as tmp:
        for kind, (suffix, fmt, codec, rate) in FORMATS.items():
            src = Path(tmp) / f"src-{kind}{suffix}"
            encode(y, sr, src, fmt, codec, rate)
            add_rich_tags(src, kind)
            inplace, safe, records = [], [], []
            for i in range(args.repeat):
                a = Path(tmp) / f"a{i}{suffix}"
                b = Path(tmp) / f"b{i}{suffix}"
                shutil.copyfile(src, a)
                shutil.copyfile(src, b)
                state = GenreState((f"Jazz{i}",), "genre=jazz")
                t = time.perf_counter()
                f = mutagen.File(a)
                if _kind_of(f) == "id3":  # what a tagger built on mutagen does: re-render the whole tag
                    from mutagen.id3 import TCON, TXXX

                    f.tags.delall("TCON")
                    f.tags.add(TCON(encoding=3, text=list(state.genres)))
                    f.tags.add(TXXX(encoding=3, desc="GENREKIT", text=[state.marker]))
                else:
                    _apply(f, _kind_of(f), state)
                f.save(**({"v2_version": 3} if kind == "mp3-v23" else {}))
                inplace.append(time.perf_counter() - t)
                t = time.perf_counter()
                write_state(b, state, journal=records.append)  # the undo record is part of the cost
                safe.append(time.perf_counter() - t)
            mi, ms = statistics.median(inplace) * 1000, statistics.median(safe) * 1000
            print(f"{kind:<9} {src.stat().st_size / 1e6:>6.2f}MB  {mi:>17.1f}ms  {ms:>8.1f}ms  {ms / mi:5.1f}x")


if __name__ == "__main__":
    main()
