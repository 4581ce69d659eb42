"""Parity of the ONNX Runtime path with the torch path (float32) on every shared GTZAN clip.

    python scripts/onnx_parity.py [--root ../shared/data/gtzan-clips] [--limit N] [--tol 1e-4]

For each clip: the default model (mn04 alone) by each engine: its window rows, its ten genre
probabilities (largest difference printed) and its track genre; then the ``musicnn`` built-in's
features, both musicnn networks it runs (MSD_musicnn
on every patch, with the shared front end; MTT_musicnn on every 4th patch) and EfficientAT mn04
(the default model's AudioSet rows, ``audioset.window_rows``, on the clip's 10 s windows) through
each engine; prints the largest absolute difference of the per-tag outputs, of the 200-d
penultimate layer, of mn04's 527 logits and 384-d embedding, and the track genre of the default
model by each engine (its features computed by each engine when it has an AudioSet part). Exits 1
when any per-tag or mn04 logit difference exceeds ``--tol`` or any track genre differs. torch runs in float32 (the bf16 front end that
``auto`` picks on CPUs with native bf16 moves tags by ~5e-3 and is not what parity means).
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
    shared = Path(os.environ.get("GENREKIT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "gtzan-clips"
    ap.add_argument("--root", type=Path, default=shared)
    ap.add_argument("--limit", type=int, default=0, help="first N clips of each genre (0: all)")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["GENREKIT_MUSICNN_PRECISION"] = "fp32"
    from genrekit.audio import load_audio
    from genrekit.backbones.runners import backbone_runner, set_threads
    from genrekit.datasets import clips_in
    from genrekit.models import audioset as AS
    from genrekit.models.base import load_model

    set_threads(2)
    model = load_model("musicnn")
    hop = getattr(model.spec, "patch_hop_frames", None)
    genres = sorted(d.name for d in args.root.iterdir() if d.is_dir())
    clips = [c for g in genres for c in (clips_in(args.root, g)[: args.limit] if args.limit else clips_in(args.root, g))]
    worst = {"tags": 0.0, "penultimate": 0.0, "mn04_logits": 0.0, "mn04_embedding": 0.0}
    default = load_model(None)
    worst["default_probs"] = 0.0
    differ, n, t0 = [], 0, time.perf_counter()
    for clip in clips:
        y = load_audio(clip, model.spec.sample_rate)
        probs = {}
        for engine in ("onnx", "torch"):  # the runner is memoised per engine
            os.environ["GENREKIT_ENGINE"] = engine
            probs[engine] = default.track_probs(default.features(y).values)
        worst["default_probs"] = max(worst["default_probs"], float(np.abs(probs["onnx"] - probs["torch"]).max()))
        g = {e: default.labels[int(np.argmax(p))] for e, p in probs.items()}
        if g["onnx"] != g["torch"]:
            differ.append(f"{clip.parent.name}/{clip.name} (default): onnx {g['onnx']}, torch {g['torch']}")
        values = {}
        for engine in ("onnx", "torch"):  # the AudioSet rows of the features come from the engine asked
            os.environ["GENREKIT_ENGINE"] = engine
            values[engine] = model.features(y).values if engine == "onnx" or model.audioset else values["onnx"]
        patches = model.split_values(values["onnx"])[0]
        for name, picked, h in (("MSD_musicnn", patches, hop), ("MTT_musicnn", patches[:: model.inset_stride], None)):
            a = backbone_runner(name, engine="onnx").run(picked, hop=h)
            b = backbone_runner(name, engine="torch").run(picked, hop=h)
            for k in ("tags", "penultimate"):
                worst[k] = max(worst[k], float(np.abs(a[k] - b[k]).max()))
        rows = {}
        for engine in ("onnx", "torch"):
            os.environ["GENREKIT_ENGINE"] = engine
            rows[engine] = AS.window_rows(y, model.spec.sample_rate, np.arange(0.0, len(y) / model.spec.sample_rate, 10.0),
                                          window_s=10.0, stride=1)
        ran = ~np.isnan(rows["onnx"]).any(axis=1)
        d = np.abs(rows["onnx"][ran] - rows["torch"][ran])
        worst["mn04_logits"] = max(worst["mn04_logits"], float(d[:, : AS.N_LOGITS].max()))
        worst["mn04_embedding"] = max(worst["mn04_embedding"], float(d[:, AS.N_LOGITS :].max()))
        genre = {}
        for engine in ("onnx", "torch"):
            os.environ["GENREKIT_ENGINE"] = engine
            model._last = None
            genre[engine] = model.labels[int(np.argmax(model.track_probs(values[engine])))]
        if genre["onnx"] != genre["torch"]:
            differ.append(f"{clip.parent.name}/{clip.name}: onnx {genre['onnx']}, torch {genre['torch']}")
        n += 1
    print(f"{n} clips ({len(genres)} genres, {time.perf_counter() - t0:.0f} s): max |onnx - torch fp32| "
          f"tags {worst['tags']:.2e}, penultimate {worst['penultimate']:.2e}, mn04 logits {worst['mn04_logits']:.2e}, "
          f"mn04 embedding {worst['mn04_embedding']:.2e} (tolerance {args.tol:g} on tags and mn04 logits); "
          f"same track genre on {n - len(differ)}/{n}" + (" (AudioSet part on)" if model.audioset else "")
          + f"; the default model's genre probabilities {worst['default_probs']:.2e}")
    for line in differ:
        print("  differs: " + line)
    return 1 if differ or max(worst["tags"], worst["mn04_logits"], worst["default_probs"]) > args.tol or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
