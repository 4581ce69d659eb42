"""The default model from real audio, end to end: the shared GTZAN clips of the fault-filtered
valid and test lists (60 + 14 = 74 clips) through genrekit's own decoder, resampler, log-mel
front end, PyTorch musicnn and the committed head.

    python scripts/eval_default_audio.py [--data ../shared/data] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--lists", default="valid,test")
    ap.add_argument("--model", default=None,
                    help="a musicnn head file (e.g. one written by train_default_head.py --out); default: the default model")
    ap.add_argument("--patch-hop", type=int, default=None,
                    help="patch hop in frames (default: the model's own, 183; the stored taggrams used 61)")
    ap.add_argument("--classifier", action="store_true",
                    help="go through Classifier.predict (streamed decoding and resampling, what `genrekit predict` runs)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.audio import load_audio
    from genrekit.base import load_model

    data = Path(args.data)
    model = load_model(args.model)
    if args.patch_hop:
        import dataclasses

        model.spec = dataclasses.replace(model.spec, patch_hop_frames=args.patch_hop)
    rows = []
    for lst in args.lists.split(","):
        for line in (data / "gtzan-splits" / f"{lst}_filtered.txt").read_text().split():
            stem = line.rsplit(".", 1)[0]
            for ext in (".wav", ".au"):
                p = data / "gtzan-clips" / f"{stem}{ext}"
                if p.is_file():
                    rows.append((lst, stem, p))
                    break
    results = []
    t0 = time.perf_counter()
    clf = None
    if args.classifier:
        from genrekit.prediction import Classifier

        clf = Classifier(model)
    for lst, stem, p in rows:
        if clf is not None:
            pred = clf.predict(p)
            label, conf = pred.genre, pred.confidence
        else:
            probs = model.track_probs(model.features(load_audio(p, model.spec.sample_rate)).values)
            label, conf = model.labels[int(np.argmax(probs))], float(np.max(probs))
        truth = stem.split("/")[0]
        results.append({"list": lst, "clip": stem, "truth": truth, "pred": label, "confidence": conf})
    acc = float(np.mean([r["truth"] == r["pred"] for r in results]))
    by_list = {lst: float(np.mean([r["truth"] == r["pred"] for r in results if r["list"] == lst]))
               for lst in args.lists.split(",")}
    print(f"default model from audio: {len(results)} clips, accuracy {acc:.4f} "
          + " ".join(f"{k}={v:.4f}" for k, v in by_list.items()) + f" [{time.perf_counter() - t0:.0f}s]")
    for r in results:
        if r["truth"] != r["pred"]:
            print(f"  wrong: {r['clip']} -> {r['pred']} ({r['confidence']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"accuracy": acc, "by_list": by_list, "clips": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
