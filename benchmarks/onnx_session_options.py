"""ONNX Runtime session options for musicnn, compared in one run, interleaved.

    python benchmarks/onnx_session_options.py [--clip rock/rock.00000] [--repeats 8] [--threads 2]

One 30 s clip's MSD pass (28 overlapping patches, shared front end) plus the MTT pass (every 4th
patch), per option set: graph optimisation level all (NCHWc layouts) / extended / basic, with and
without intra-op thread spinning. The sets run in turn, ``--repeats`` rounds, so a neighbour's
load on a shared machine hits them alike; medians are printed. The session genrekit uses
(``onnx_graphs.session``) is what this measured fastest.
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
    ap.add_argument("--clip", default="rock/rock.00000")
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import onnxruntime as ort

    from genrekit.audio import load_audio
    from genrekit.backbones import onnx_graphs
    from genrekit.backbones.musicnn_onnx import OrtMusicnnRunner
    from genrekit.datasets import clip_by_stem
    from genrekit.models.base import load_model

    shared = Path(os.environ.get("GENREKIT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "gtzan-clips"
    clip = args.clip if Path(args.clip).is_file() else clip_by_stem(shared, args.clip + ".wav")
    model = load_model(None)
    patches = model.split_values(model.features(load_audio(clip, model.spec.sample_rate)).values)[0]
    runners = {name: OrtMusicnnRunner(name, threads=args.threads) for name in ("MSD_musicnn", "MTT_musicnn")}
    blobs = {name: onnx_graphs.converted_models(name) for name in runners}
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}

    def sessions(level: str, spin: bool) -> dict:
        so = ort.SessionOptions()
        so.graph_optimization_level = levels[level]
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        return {n: {p: ort.InferenceSession(b, so, providers=["CPUExecutionProvider"]) for p, b in parts.items()}
                for n, parts in blobs.items()}

    configs = {f"{lvl}, spinning {'on' if spin else 'off'}": sessions(lvl, spin) for lvl in levels for spin in (True, False)}
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(args.repeats + 1):  # the first round warms up and is dropped
        for k, sess in configs.items():
            for name, r in runners.items():
                r.front, r.back = sess[name]["frontend"], sess[name]["backend"]
            t0 = time.perf_counter()
            runners["MSD_musicnn"].run(patches, hop=61)
            runners["MTT_musicnn"].run(patches[::4])
            times[k].append(time.perf_counter() - t0)
    for k, v in sorted(times.items(), key=lambda kv: np.median(kv[1][1:])):
        print(f"{k:>24}: median {np.median(v[1:]) * 1000:.0f} ms over {args.repeats} rounds ({args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
