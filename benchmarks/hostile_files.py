"""Peak memory and time of ``genrekit predict`` on a file whose header lies about its length.

Builds a 30-minute Opus-in-Matroska file twice (``tests/hostile_media.py``): once honest, once
with its Segment Duration rewritten to claim 10 s. Each is predicted by ``genrekit predict`` in a
fresh process (the peak RSS is that child's ``ru_maxrss``), then the lying file is given to
``Classifier.predict(..., max_seconds=60)``, the limit ``genrekit serve --max-duration 60``
applies, to time how fast it is refused.

    PYTHONPATH=src python benchmarks/hostile_files.py [--minutes 30] [--model default]

Before issue 16 the lying header made predict decode the whole file in one piece (the header said
it fits one block): 2.0 GB peak against 664 MB with the honest header (default model).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.hostile_media import lying_matroska, opus_matroska  # noqa: E402


def child_peak(cmd: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of ``cmd`` run alone in a child process."""
    code = ("import resource, subprocess, sys, time, json\n"
            "t = time.perf_counter()\n"
            f"r = subprocess.run({cmd!r}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,"
            " time.perf_counter() - t, r.returncode]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    peak, wall, rc = json.loads(out)
    return float(peak), float(wall), int(rc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit-s", type=float, default=60.0)
    args = ap.parse_args()
    env_src = str(REPO / "src")
    os.environ["PYTHONPATH"] = env_src + os.pathsep + os.environ.get("PYTHONPATH", "")
    sys.path.insert(0, env_src)

    with tempfile.TemporaryDirectory(prefix="genrekit-hostile-") as tmp:
        seconds = args.minutes * 60
        t0 = time.perf_counter()
        honest = opus_matroska(Path(tmp) / "honest.mka", seconds)
        lying = lying_matroska(Path(tmp) / "lying.mka", seconds, 10.0)
        print(f"built 2 x {args.minutes:g} min Opus/Matroska ({honest.stat().st_size / 1e6:.1f} MB each) "
              f"in {time.perf_counter() - t0:.0f} s")
        rows = {}
        for name, path in (("honest header", honest), ("header claims 10 s", lying)):
            peak, wall, rc = child_peak([sys.executable, "-m", "genrekit.cli.main", "predict", "--model", args.model,
                                         "--no-progress", str(path)])
            rows[name] = (peak, wall, rc)
            print(f"predict, {name:20s}: peak RSS {peak:7.0f} MB, {wall:5.1f} s, exit {rc}")

        from genrekit.prediction import Classifier

        try:
            from genrekit.errors import AudioTooLong
        except ImportError:  # a checkout from before the limit existed: the predict rows are the comparison
            print("(this genrekit has no decode-time limit)")
            return 0

        clf = Classifier.load(args.model)
        t0 = time.perf_counter()
        try:
            clf.predict(lying, max_seconds=args.limit_s)
            print(f"max_seconds={args.limit_s:g}: NOT refused")
        except AudioTooLong as exc:
            print(f"max_seconds={args.limit_s:g}: refused in {time.perf_counter() - t0:.2f} s: {exc.reason}")
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
