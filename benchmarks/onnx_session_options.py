"""ONNX Runtime session options for musicnn, compared in one run, interleaved.

    python benchmarks/onnx_session_options.py [--clip rock/rock.00000] [--repeats 8] [--threads 2]

One 30 s clip's MSD pass (28 overlapping patches, shared front end) plus the MTT pass (every 4th
patch), per option set: graph optimisation level all (NCHWc layouts) / extended / basic, with and
without intra-op thread spinning. The sets run in turn, ``--repeats`` rounds, so a neighbour's
load on a shared machine hits them alike; medians are printed. The session genrekit uses
(``onnx_graphs.session``) is what this measured fastest. ``--int8`` adds ONNX Runtime's dynamic
int8 quantisation of the front-end convolutions and prints how far it moves the tags.
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
    ap.add_argument("--int8", action="store_true", help="also int8 dynamic quantisation of the front-end convolutions "
                    "(needs the onnx package), with its effect on the tags")
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
    model = load_model("musicnn")
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
    if args.int8:
        configs["int8 front end, basic, off"] = int8_sessions(blobs, args.threads)
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
        print(f"{k:>26}: median {np.median(v[1:]) * 1000:.0f} ms over {args.repeats} rounds ({args.threads} threads)")
    if args.int8:
        out = {}
        for k in ("basic, spinning off", "int8 front end, basic, off"):
            for name, r in runners.items():
                r.front, r.back = configs[k][name]["frontend"], configs[k][name]["backend"]
            out[k] = runners["MSD_musicnn"].run(patches, hop=61)["tags"]
        a, b = out.values()
        print(f"int8 front end vs float32, MSD tags of this clip: max |diff| per patch {np.abs(a - b).max():.4f}, "
              f"of the track mean {np.abs(a.mean(0) - b.mean(0)).max():.4f}")
    return 0


def int8_sessions(blobs: dict, threads: int) -> dict:
    """Sessions whose front-end convolutions are dynamically quantised to int8 (ONNX Runtime's
    ``quantize_dynamic``: ConvInteger with uint8 weights and per-run activation scales), on the
    constant-folded graph (the quantiser needs the filters as initializers)."""
    import tempfile

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from genrekit.backbones import onnx_graphs

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, parts in blobs.items():
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            so.optimized_model_filepath = f"{tmp}/{name}-folded.onnx"
            ort.InferenceSession(parts["frontend"], so, providers=["CPUExecutionProvider"])
            quantize_dynamic(f"{tmp}/{name}-folded.onnx", f"{tmp}/{name}-int8.onnx", op_types_to_quantize=["Conv"],
                             weight_type=QuantType.QUInt8)
            out[name] = {"frontend": onnx_graphs.session(Path(f"{tmp}/{name}-int8.onnx").read_bytes(), threads),
                         "backend": onnx_graphs.session(parts["backend"], threads)}
    return out


if __name__ == "__main__":
    sys.exit(main())
