"""EfficientAT mn04 alone, per engine and thread count: should mn04 run on one thread?

    python benchmarks/mn04_threads.py [--windows 3] [--repeats 15] [--threads 1,2] [--rounds 2]

Times the network (``backbone_runner("efficientat_mn04").run_mel``) on ``--windows`` 10 s mel
windows (a 30 s clip's three) through ONNX Runtime and torch, for each thread count, ``--rounds``
times interleaved (a shared machine's load moves between rounds: compare within a round).
Prints the median and the fastest time per call. The mel input is random: the network's cost
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--engines", default="onnx,torch")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.backbones.runners import backbone_runner, has_module, set_threads

    mel = (0.5 * np.random.default_rng(0).standard_normal((args.windows, 128, 1000))).astype(np.float32)
    engines = [e for e in args.engines.split(",") if e != "torch" or has_module("torch")]
    print(f"mn04 on {args.windows} x 10 s windows, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for rnd in range(args.rounds):
        for n in (int(t) for t in args.threads.split(",")):
            set_threads(n)
            cells = []
            for engine in engines:
                r = backbone_runner("efficientat_mn04", engine=engine)
                r.run_mel(mel)  # warm-up
                ts = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    r.run_mel(mel)
                    ts.append(time.perf_counter() - t0)
                cells.append(f"{engine} median {np.median(ts) * 1000:.1f} ms (fastest {min(ts) * 1000:.1f})")
            print(f"round {rnd + 1}, {n} thread{'s' if n > 1 else ''}: " + "; ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
