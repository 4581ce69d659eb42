"""Speed of the built-in models: warm real-time factor and cold `genrekit predict`, ONNX Runtime and torch.

    python benchmarks/default_model.py [--clip rock/rock.00000] [--repeats 5] [--threads 2] [--engines onnx,torch]
                                       [--model default,musicnn]

Each model of ``--model`` (built-in names or files; by default the default model, mn04 alone, and
the two-backbone ``musicnn`` built-in beside it) on each engine (``GENREKIT_ENGINE``: onnx, the
light install's path; torch, the training extra's), in the same run, on the same clip and thread
count, with the time of each stage. The default: decode at 22.05 kHz, mn04 (each 10 s window
resampled to 32 kHz, its mel, the network), heads. The musicnn model: decode, features (resample
to 16 kHz + log-mel + MFCC statistics), mn04 (its 10 s windows), the MSD network, the MTT network
when a file has one, heads. ``benchmarks/mn04_threads.py`` times mn04 alone per thread count.

* warm: the model already loaded in this process (backbones converted and cached); the real-time
  factor is the clip's duration over the median wall time of ``--repeats`` predictions;
* cold: ``python -m genrekit.cli.main predict CLIP [--model M]`` in a fresh process, wall time from
  process start to exit (the converted networks must already be cached; the warm step ensures that).
Both are printed and written as JSON with ``--json``. Timings on a shared machine are noisy:
compare models and engines within one run, never across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class _Timed:
    """Wraps ``audioset.window_rows`` (what the default model's ``features`` calls for its
    AudioSet part) to time the mn04 stage inside ``features`` without copying that method."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def _stages(model, clip: str) -> tuple[float, dict[str, float], np.ndarray]:
    """One prediction, timed stage by stage: (duration s, {stage: seconds}, track probs)."""
    from genrekit.audio import load_audio
    from genrekit.backbones.runners import backbone_runner
    from genrekit.models import audioset as AS

    t = {}
    t0 = time.perf_counter()
    y = load_audio(clip, model.spec.sample_rate)
    t["decode"] = time.perf_counter() - t0
    if not hasattr(model, "backbone_name"):  # mn04 alone (the default): windows -> network -> head
        t0 = time.perf_counter()
        rows = model.features(y).values  # per window: resample to 32 kHz, mn04's mel, the network
        t["mn04"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        probs = _heads(model, rows, rows)
        t["heads"] = time.perf_counter() - t0
        return len(y) / model.spec.sample_rate, t, probs
    timed = AS.window_rows = _Timed(getattr(AS.window_rows, "fn", AS.window_rows))
    t0 = time.perf_counter()
    values = model.features(y).values  # resample to 16 kHz + log-mel patches + MFCC statistics (+ mn04)
    t["features"] = time.perf_counter() - t0 - timed.seconds
    t["mn04"] = timed.seconds
    AS.window_rows = timed.fn
    patches = model.split_values(values)[0]
    t0 = time.perf_counter()
    out = backbone_runner(model.backbone_name, model.weights).run(patches, hop=getattr(model.spec, "patch_hop_frames", None))
    t["network_msd"] = time.perf_counter() - t0
    model._last = (values, out)  # the heads below reuse it, as prediction does
    t0 = time.perf_counter()
    inset = model.inset_tags(values) if model.inset_backbone else None
    t["network_mtt"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the rows prediction builds once (``patch_rows``), then every head on them
    stats = model.split_values(values)[1]
    rows = out["tags"] if stats is None else np.concatenate([out["tags"], stats.astype(np.float32)], axis=1)
    rows = rows if inset is None else np.concatenate([rows, inset], axis=1)
    extra = model.audioset_rows(values) if hasattr(model, "audioset_rows") else None  # mn04's, computed in features
    rows = rows if extra is None else np.concatenate([rows, extra], axis=1)
    probs = _heads(model, rows, values)
    t["heads"] = time.perf_counter() - t0
    return len(y) / model.spec.sample_rate, t, probs


def _heads(model, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """What prediction asks of a model once its rows are in hand: track and segment genres, the
    open set's scores, the style words and the tags; returns the track probabilities."""
    probs = model.track_probs_from_taggram(rows)
    model.segment_probs_from_taggram(rows)
    model.in_set_from_taggram(rows)
    model.segment_in_set_from_taggram(rows)
    model.style_from_taggram(rows)
    model.tag_probs(values, top_k=5)
    return probs


def warm(model, clip: str, repeats: int, engine: str) -> dict:
    """Warm real-time factor of one engine (model loaded, networks converted and cached)."""
    os.environ["GENREKIT_ENGINE"] = engine
    model._last = None
    duration, _, probs = _stages(model, clip)  # warm-up: sessions / modules built, allocators warm
    runs = []
    for _ in range(repeats):
        model._last = None  # the musicnn model's memo: every run computes its backbone
        runs.append(_stages(model, clip)[1])
    totals = [sum(r.values()) for r in runs]
    med = float(np.median(totals))
    stages = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    return {"engine": engine, "duration_s": duration, "warm_seconds_median": med, "warm_seconds_all": totals,
            "warm_realtime_factor": duration / med, "stages_median_s": stages,
            "prediction": model.labels[int(np.argmax(probs))]}


def cold(clip: str, runs: int, engine: str, model: str | None = None) -> dict:
    """``genrekit predict CLIP`` in a fresh process, wall time from process start to exit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["GENREKIT_ENGINE"] = engine
    times, first = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "genrekit.cli.main", "predict", clip,
                               *(["--model", model] if model else [])],
                              capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return {"cold_error": proc.stderr[-500:], "cold_predict_seconds": times}
        first = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return {"cold_predict_seconds": times, "cold_predict_seconds_min": min(times), "cold_answer": first}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="rock/rock.00000",
                    help="a clip path, or a GTZAN stem under ../shared/data/gtzan-clips (any extension)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cold-runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="inference threads of both engines")
    ap.add_argument("--engines", default="onnx,torch", help="comma-separated: onnx, torch")
    ap.add_argument("--model", default="default,musicnn",
                    help="comma-separated built-in names or model files (default: the default model, then the "
                         "two-backbone 'musicnn' built-in beside it)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))

    from genrekit.backbones.runners import has_module, set_threads
    from genrekit.datasets import clip_by_stem
    from genrekit.models.base import load_model

    if not Path(args.clip).is_file():
        shared = Path(os.environ.get("GENREKIT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "gtzan-clips"
        args.clip = str(clip_by_stem(shared, args.clip + ".wav" if "." in Path(args.clip).name else args.clip))
    set_threads(args.threads)
    os.environ["GENREKIT_THREADS"] = str(args.threads)  # the cold processes too
    report = {"clip": args.clip, "threads": args.threads, "cpu_count": os.cpu_count(), "models": {}}
    for ref in args.model.split(","):
        model = load_model(ref)
        engines = report["models"][ref] = {}
        for engine in args.engines.split(","):
            if engine == "torch" and not has_module("torch"):
                print("torch: not installed, skipped")
                continue
            r = warm(model, args.clip, args.repeats, engine)
            stages = ", ".join(f"{k} {v * 1000:.0f}" for k, v in r["stages_median_s"].items())
            print(f"{ref} {engine:>5} warm: {r['duration_s']:.1f} s clip in {r['warm_seconds_median'] * 1000:.0f} ms "
                  f"(median of {args.repeats}) = {r['warm_realtime_factor']:.0f}x real time [{args.threads} threads]; "
                  f"ms: {stages}; {r['prediction']}", flush=True)
            r.update(cold(args.clip, args.cold_runs, engine, ref))
            if "cold_error" in r:
                print(f"{ref} {engine:>5} cold: failed: {r['cold_error'].strip().splitlines()[-1:]}", file=sys.stderr)
            else:
                print(f"{ref} {engine:>5} cold: genrekit predict answered in "
                      f"{', '.join(f'{c:.2f}' for c in r['cold_predict_seconds'])} s from process start: "
                      f"{r['cold_answer'][:110]}", flush=True)
            engines[engine] = r
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
