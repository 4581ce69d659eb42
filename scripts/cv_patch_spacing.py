"""How much the committed track head's CV accuracy depends on the spacing of the patches it sees.

    python scripts/cv_patch_spacing.py [--data ../shared/data]

The stored taggrams have a patch every 1 s (61 frames), and so has prediction (it used every 3rd,
183 frames, until the shared front end made every patch affordable). For the committed
configuration (read from the head file: StandardScaler + RBF SVC C=2 on tag mean/std + MFCC
mean/log variance), fitted per fold exactly as scripts/train_default_head.py fits it, this scores every k-th patch from each
of the k offsets of the held-out tracks, on the same 3 x 5 stratified grouped folds of the train
split (no test data is read).
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--steps", default="1,2,3,4")
    args = ap.parse_args(argv)
    tracks, y, folds = committed_cv_heads(Path(args.data))
    steps = [int(s) for s in args.steps.split(",")]
    acc: dict[int, list[float]] = {k: [] for k in steps}
    for f, head in folds:
        for k in steps:
            acc[k].append(float(np.mean([np.argmax(head.probs(tracks[i][o::k])) == y[i] for i in f for o in range(k)])))
    for k in steps:
        print(f"every {k} patch(es) ({k * 61 * 256 / 16000:.2f} s apart): CV accuracy "
              f"{np.mean(acc[k]):.4f} +- {np.std(acc[k]):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
