"""EfficientAT mn04 alone, per engine, thread count and ONNX Runtime optimisation level.

    python benchmarks/mn04_threads.py [--windows 3] [--repeats 15] [--threads 1,2] [--levels basic,all] [--rounds 2]

Times the network on ``--windows`` 10 s mel windows (a 30 s clip's three): ONNX Runtime sessions
of the converted mn04 (``onnx_graphs.session``) at each graph optimisation level (the runner uses
the level ``efficientat_onnx`` registers), and torch (``backbone_runner(..., engine="torch")``),
for each thread count, ``--rounds`` times interleaved (a shared machine's load moves between
rounds: compare within a round). Prints the median and the fastest time per call, and the
largest logit difference of each level from torch. The mel input is random: the network's cost
does not depend on its values.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _time(fn, repeats: int) -> tuple[float, float, np.ndarray]:
    out = fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), min(ts), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--levels", default="basic,all", help="ONNX Runtime levels: basic, extended, all")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.backbones import onnx_graphs
    from genrekit.backbones.efficientat import NAME
    from genrekit.backbones.runners import backbone_runner, has_module, set_threads

    mel = (0.5 * np.random.default_rng(0).standard_normal((args.windows, 128, 1000))).astype(np.float32)
    blob = onnx_graphs.converted_models(NAME)["net"]
    print(f"mn04 on {args.windows} x 10 s windows, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"the runner uses ONNX Runtime level '{onnx_graphs.get(NAME).optimization}'")
    for rnd in range(args.rounds):
        for n in (int(t) for t in args.threads.split(",")):
            set_threads(n)
            cells, ref = [], None
            if has_module("torch"):
                r = backbone_runner(NAME, engine="torch")
                med, fast, ref = _time(lambda r=r: r.run_mel(mel)["logits"], args.repeats)
                cells.append(f"torch {med * 1000:.1f} ms ({fast * 1000:.1f})")
            for level in args.levels.split(","):
                s = onnx_graphs.session(blob, n, level)
                med, fast, out = _time(lambda s=s: s.run(["logits"], {"mel": mel})[0], args.repeats)
                diff = "" if ref is None else f", max |d logit| {np.abs(out - ref).max():.1e}"
                cells.append(f"onnx {level} {med * 1000:.1f} ms ({fast * 1000:.1f}{diff})")
            print(f"round {rnd + 1}, {n} thread{'s' if n > 1 else ''}: median (fastest): " + "; ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
