"""Speed of the EfficientAT mn04 port on CPU: front end and network per 10 s window.

Prints medians (ms) over ``--repeats`` runs for 1 and 2 torch threads, wall-clock and process CPU
time (all threads summed):

* ``front end``: :func:`mel_frontend` of 10 s at 32 kHz (numpy, float64);
* ``net 1x10s``: one forward of a [1, 1, 128, 1000] input;
* ``net 3x10s``: the three windows of a 30 s track in one forward (what ``run_windows`` does);
* ``track 30s``: ``run_windows`` on 30 s, front ends included.

Needs the weights (``GENREKIT_EFFICIENTAT_WEIGHTS`` or ``--weights``); random audio is used (speed
does not depend on content)::

    python benchmarks/efficientat_forward.py [--weights PT] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def median_ms(fn, repeats: int) -> float:
    """Median wall-clock ms; the process CPU ms of the same calls go to ``CPU`` (on a loaded
    machine wall time measures the neighbours, CPU time the work)."""
    fn()  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU.append(1000 * statistics.median(cpu))
    return 1000 * statistics.median(times)


CPU: list[float] = []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    import torch

    from genrekit.backbones.efficientat import SR, load_efficientat, mel_frontend, run_mel, run_windows

    net = load_efficientat(args.weights, allow_download=False)
    rng = np.random.default_rng(0)
    y10 = (0.1 * rng.standard_normal(10 * SR)).astype(np.float32)
    y30 = (0.1 * rng.standard_normal(30 * SR)).astype(np.float32)
    mel1 = mel_frontend(y10)[None]
    mel3 = np.repeat(mel1, 3, axis=0)
    print(f"torch {torch.__version__}, median of {args.repeats} (ms)")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fe = median_ms(lambda: mel_frontend(y10), args.repeats)
        n1 = median_ms(lambda: run_mel(net, mel1), args.repeats)
        n3 = median_ms(lambda: run_mel(net, mel3), args.repeats)
        tr = median_ms(lambda: run_windows(net, y30), args.repeats)
        print(f"{threads} thread(s), wall: front end {fe:.1f} | net 1x10s {n1:.1f} | net 3x10s {n3:.1f} "
              f"({n3 / 3:.1f} per window) | track 30s {tr:.1f} ({30_000 / tr:.0f}x real time)")
        c = CPU[-4:]
        print(f"{threads} thread(s), CPU:  front end {c[0]:.1f} | net 1x10s {c[1]:.1f} | net 3x10s {c[2]:.1f} "
              f"| track 30s {c[3]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
