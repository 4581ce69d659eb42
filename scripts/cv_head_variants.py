"""Is there a better track head left for the train split to choose? Train-split CV only.

    python scripts/cv_head_variants.py [--data ../shared/data]

The committed head (RBF SVC C=2 on tag mean/std + MFCC mean/log variance, ``ms_mfcc``) against
variants that change one thing each: C, the kernel width, more pooling statistics of the tags
(max; 10/50/90th percentiles), the tags' logits or square roots instead of probabilities, the
cheap spectral columns of ``features_30_sec.csv`` (chroma, RMS, centroid, bandwidth, roll-off,
zero crossings; the model does not compute them at prediction), logistic regression and
gradient-boosted trees. Same 15 folds as ``train_default_head.py`` (StratifiedGroupKFold(5),
random_state 0-2, artist-proxy groups), accuracy on all 28 patches of each held-out track, and
each variant's folds better / equal / worse than the committed head's.

It reads only the train split: no test taggram and no from-audio clip is scored, so it can
say whether the train data prefers another head, and it selects nothing (docs/model_card.md,
"Selection history").
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: The table's columns that are cheap to compute from audio (no HPSS, no beat tracking).
CHEAP_PREFIXES = ("chroma_stft", "rms", "spectral", "rolloff", "zero_crossing")


def cheap_columns(table: Path, keys: list[str]) -> np.ndarray:
    """[tracks, 12] cheap spectral statistics from ``table`` (variances as logs)."""
    with open(table, newline="") as fh:
        rows = {Path(r["filename"]).stem: r for r in csv.DictReader(fh)}
    cols = [c for c in next(iter(rows.values())) if c.startswith(CHEAP_PREFIXES)]
    x = np.array([[float(rows[k.split("/")[-1].rsplit(".", 1)[0]][c]) for c in cols] for k in keys])
    return np.where(np.array(["_var" in c for c in cols]), np.log(np.maximum(x, 1e-12)), x)


def variants(tracks: list[np.ndarray], keys: list[str], table: Path) -> dict[str, tuple[np.ndarray, str, dict]]:
    """name -> (features [tracks, D], model, params); the first is the committed head."""
    from genrekit.models.default import N_TAGS, window_features

    base = np.stack([window_features(t, "ms_mfcc") for t in tracks])
    mfcc = base[:, 2 * N_TAGS :]
    tags = [t[:, :N_TAGS].astype(np.float64) for t in tracks]
    logit = [np.log(np.clip(t, 1e-4, 1 - 1e-4) / (1 - np.clip(t, 1e-4, 1 - 1e-4))) for t in tags]
    d = base.shape[1]
    feats = {
        "tags_max": np.hstack([base, np.stack([t.max(0) for t in tags])]),
        "tags_q10_50_90": np.hstack([base, np.stack([np.percentile(t, [10, 50, 90], axis=0).ravel() for t in tags])]),
        "tags as logits (mean/std)": np.hstack([np.stack([np.r_[z.mean(0), z.std(0)] for z in logit]), mfcc]),
        "tags as square roots (mean/std)": np.hstack([np.stack([np.r_[np.sqrt(t).mean(0), np.sqrt(t).std(0)] for t in tags]), mfcc]),
        "cheap_columns": np.hstack([base, cheap_columns(table, keys)]),
    }
    out = {"committed: svc C2": (base, "svc", {"C": 2.0})}
    out |= {f"svc C{c:g}": (base, "svc", {"C": c}) for c in (0.5, 1.0, 4.0)}
    out |= {f"svc C2 gamma {g:g}/D": (base, "svc", {"C": 2.0, "gamma": g / d}) for g in (0.5, 2.0)}
    out |= {f"svc C2, {k}" if k.startswith("tags as") else f"svc C2 + {k}": (v, "svc", {"C": 2.0})
            for k, v in feats.items()}
    out |= {f"logistic C{c:g}": (base, "lr", {"C": c}) for c in (0.01, 0.03, 0.1)}
    out["hist gradient boosting"] = (base, "hgb", {})
    return out


def predict(model: str, params: dict, X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if model == "hgb":
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0).fit(X[tr], y[tr]).predict(X[te])
    sc = StandardScaler().fit(X[tr])
    est = SVC(kernel="rbf", gamma=params.get("gamma", "scale"), C=params["C"]) if model == "svc" \
        else LogisticRegression(C=params["C"], max_iter=5000)
    return est.fit(sc.transform(X[tr]), y[tr]).predict(sc.transform(X[te]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "src")]
    from train_default_head import cv_folds, groups_of, load_tracks, mfcc_table_of

    data = Path(args.data)
    table = mfcc_table_of(data)
    tracks, y, keys = load_tracks(data / "gtzan-musicnn" / "msd_taggram_train.npz", table)
    groups = groups_of(keys, y)
    folds = [f for r in range(3) for f in cv_folds(y, groups, 5, r)]
    print(f"train split only: {len(y)} tracks, {len(folds)} folds (StratifiedGroupKFold(5), random_state 0-2)")
    ref = None
    t0 = time.time()
    for name, (X, model, params) in variants(tracks, keys, table).items():
        accs = np.array([np.mean(predict(model, params, X, y, np.setdiff1d(np.arange(len(y)), f), f) == y[f])
                         for f in folds])
        ref = accs if ref is None else ref
        diff = accs - ref
        print(f"  {name:38s} D={X.shape[1]:3d}  {accs.mean():.4f} +- {accs.std():.4f}   vs committed: "
              f"better {int((diff > 0).sum()):2d}, equal {int((diff == 0).sum()):2d}, worse {int((diff < 0).sum()):2d} "
              f"({diff.mean():+.4f})  [{time.time() - t0:.0f}s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
