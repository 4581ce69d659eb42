"""Speed of the default model: warm real-time factor and cold `genrekit predict`, in one run.

    python benchmarks/default_model.py [--clip ../shared/data/gtzan-clips/rock/rock.00000.wav] [--repeats 5]

* warm: the default model already loaded in this process (backbone converted and cached); one
  prediction = decode at 22.05 kHz + MFCC statistics + resample to 16 kHz + log-mel + musicnn
  on the 3 s patches + heads; the
  real-time factor is the clip's duration over the median wall time;
* cold: ``python -m genrekit.cli.main predict CLIP`` in a fresh process, wall time from process
  start to exit (the converted backbone must already be cached; the warm step ensures that).
Both are printed and written as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(ROOT.parent / "shared/data/gtzan-clips/rock/rock.00000"),
                    help="a clip path, or a GTZAN stem under ../shared/data/gtzan-clips (any extension)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cold-runs", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import numpy as np

    from genrekit.audio import load_audio
    from genrekit.datasets import clip_by_stem
    from genrekit.models.base import load_model

    if not Path(args.clip).is_file():
        args.clip = str(clip_by_stem(Path(args.clip).parent.parent, args.clip))
    model = load_model(None)

    def once():
        y = load_audio(args.clip, model.spec.sample_rate)
        values = model.features(y).values
        probs = model.track_probs(values)
        model.segment_probs(values)
        model.tag_probs(values, top_k=5)
        return len(y) / model.spec.sample_rate, probs

    duration, probs = once()  # warm-up: converts/caches the backbone, JIT-free but allocator warm
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    warm = float(np.median(times))
    import torch

    report = {
        "clip": args.clip,
        "duration_s": duration,
        "warm_seconds_median": warm,
        "warm_seconds_all": times,
        "warm_realtime_factor": duration / warm,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "prediction": model.labels[int(np.argmax(probs))],
    }
    print(f"warm: {duration:.1f} s clip in {warm * 1000:.0f} ms (median of {args.repeats}) = "
          f"{duration / warm:.0f}x real time [{torch.get_num_threads()} threads]", flush=True)

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cold = []
    for _ in range(args.cold_runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "genrekit.cli.main", "predict", args.clip],
                              capture_output=True, text=True, env=env)
        cold.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            report["cold_error"] = proc.stderr[-500:]
            break
    report["cold_predict_seconds"] = cold
    report["cold_predict_seconds_min"] = min(cold)
    print(f"cold: genrekit predict answered in {', '.join(f'{c:.2f}' for c in cold)} s from process start")
    if proc.returncode == 0:
        print("  " + proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
