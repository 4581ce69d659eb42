"""Long inputs: should the track head see one set of statistics over the whole input, or average
its answers over 30 s windows (the length of every track it was trained on)?

    python scripts/cv_long_inputs.py [--data ../shared/data] [--lengths 1,2,4,8]

The track head learnt the mean and std of 28 patch taggrams (30 s GTZAN clips). A whole song is
minutes long and its sections differ, so its std over all patches lies outside anything the head
saw. There are no labelled full-length songs here, so this builds stand-ins inside the train
split's cross-validation (3 x 5 stratified grouped folds, as scripts/train_default_head.py; no
test data is read): for every held-out track, an input of L tracks of the same genre (the track
and L - 1 other held-out tracks of that genre, in random order), scored by the committed
configuration (read from the head file: StandardScaler + RBF SVC C=2 on tag mean/std + MFCC
mean/log variance) fitted on the other folds, (a) on all
patches at once and (b) as the mean of its probabilities over windows of 29 patches (the longest train track) every
14 (``default_model.long_input_windows``), which is what the default model does with long inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "src"))

from train_default_head import committed_cv_heads  # noqa: E402

from genrekit.models.default import long_input_windows  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--lengths", default="1,2,4,8")
    ap.add_argument("--window", type=int, default=29, help="patches per window (default: the longest train track)")
    ap.add_argument("--hop", type=int, default=14)
    args = ap.parse_args(argv)
    tracks, y, folds = committed_cv_heads(Path(args.data))
    lengths = [int(s) for s in args.lengths.split(",")]
    rng = np.random.default_rng(0)
    right = {(L, way): [] for L in lengths for way in ("all", "windows")}
    n_folds = 0
    for f, head in folds:
        n_folds += 1
        for i in f:
            same = [j for j in f if y[j] == y[i] and j != i]
            for L in lengths:
                if len(same) < L - 1:
                    continue
                parts = [i, *rng.choice(same, L - 1, replace=False)] if L > 1 else [i]
                rng.shuffle(parts)
                t = np.concatenate([tracks[j] for j in parts])
                right[(L, "all")].append(np.argmax(head.probs(t)) == y[i])
                windows = long_input_windows(len(t), args.window, args.hop)
                right[(L, "windows")].append(np.argmax(head.probs_windows(t, windows).mean(0)) == y[i])
    print(f"CV accuracy on inputs of L same-genre tracks (28-29 patches each), {n_folds} folds:")
    for L in lengths:
        a, w = np.array(right[(L, "all")]), np.array(right[(L, "windows")])
        print(f"  L={L}: all patches at once {a.mean():.4f}   mean over {args.window}-patch windows {w.mean():.4f}"
              f"   (n={len(a)}; windows right where all-at-once is wrong: {int((w & ~a).sum())}, the reverse: {int((a & ~w).sum())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
