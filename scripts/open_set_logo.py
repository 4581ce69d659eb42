"""Leave-one-genre-out open-set evaluation on the stored GTZAN taggrams.

    python scripts/open_set_logo.py [--data ../shared/data]

For each of the ten genres G: fit on the other nine genres of the fault-filtered *train* split,
then score the *test* tracks: G's test tracks are "unknown", the other nine's are "known". The
AUROC tells how well a score ranks unknown music above known music (0.5 = chance). Scores:

* ``max_prob``: 1 - the largest probability of a nine-genre logistic regression (the baseline of
  Hendrycks & Gimpel 2017);
* ``energy``: -logsumexp of the same model's logits (Liu et al. 2020);
* ``knn``: mean distance to the 10 nearest training tracks in the standardised feature space;
* ``shipped``: what genrekit ships, 1 - p(other) of a logistic regression over the nine genres +
  "other", where "other" is learnt from the 64 real songs outside GTZAN's ten
  (``real-songs/other.csv``) and the real songs of the nine genres join their classes (the
  shipped model's recipe, ``scripts/train_real_head.py``, on MSD tags only: stored taggrams have
  no MTT tags).

Features: ``ms_lm`` statistics (mean, std, mean logit of the 50 MSD tags) over each track's
patches; C as the shipped head. No validation taggrams exist, so nothing is tuned here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import audio_features as AF  # noqa: E402
from train_default_head import load_tracks  # noqa: E402
from train_real_head import KIND, C  # noqa: E402

from genrekit.models.default import GENRES, window_features  # noqa: E402

SCORES = ("max_prob", "energy", "knn", "shipped")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=AF.DEFAULT_DATA)
    ap.add_argument("--json", type=Path, help="also write the table here")
    a = ap.parse_args(argv)
    from scipy.special import logsumexp
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    tr, ytr, _ = load_tracks(a.data / "gtzan-musicnn" / "msd_taggram_train.npz")
    te, yte, _ = load_tracks(a.data / "gtzan-musicnn" / "msd_taggram_test.npz")
    Xtr = np.stack([window_features(t[:, :50], KIND) for t in tr])
    Xte = np.stack([window_features(t[:, :50], KIND) for t in te])
    real = [(it, f) for it, f in AF.load_all(a.data, kinds=("real",), verbose=False)]
    Xr = np.stack([window_features(f["msd"][:29], KIND) for _, f in real])
    yr = np.array([GENRES.index(it.genre) if it.in_ten else -1 for it, _ in real])

    table: dict[str, dict[str, float]] = {}
    for g in range(len(GENRES)):
        keep = ytr != g
        mu, sd = Xtr[keep].mean(0), Xtr[keep].std(0) + 1e-6
        z_tr, z_te = (Xtr[keep] - mu) / sd, (Xte - mu) / sd
        nine = LogisticRegression(C=C, max_iter=5000).fit(z_tr, ytr[keep])
        logits = nine.decision_function(z_te)
        p = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
        d2 = ((z_te[:, None, :] - z_tr[None]) ** 2).sum(-1)
        # shipped recipe: the nine genres (GTZAN train + real songs of those genres) + "other" (real songs outside)
        rk = (yr != g)  # a real song of the held-out genre is neither known nor "other": left out
        X11 = np.concatenate([Xtr[keep], Xr[rk]])
        y11 = np.concatenate([ytr[keep], np.where(yr[rk] < 0, 99, yr[rk])])
        mu11, sd11 = X11.mean(0), X11.std(0) + 1e-6
        eleven = LogisticRegression(C=C, max_iter=5000).fit((X11 - mu11) / sd11, y11)
        p_other = eleven.predict_proba((Xte - mu11) / sd11)[:, list(eleven.classes_).index(99)]
        scores = {"max_prob": 1 - p.max(1), "energy": -logsumexp(logits, axis=1),
                  "knn": np.sqrt(np.sort(d2, axis=1)[:, :10]).mean(1), "shipped": p_other}
        unknown = (yte == g).astype(int)
        table[GENRES[g]] = {k: float(roc_auc_score(unknown, v)) for k, v in scores.items()}
    mean = {k: float(np.mean([table[g][k] for g in GENRES])) for k in SCORES}
    print("leave-one-genre-out AUROC on the GTZAN test split (held-out genre's test tracks vs the other nine's):")
    print(f"  {'held out':10s} " + " ".join(f"{k:>9s}" for k in SCORES))
    for g in GENRES:
        print(f"  {g:10s} " + " ".join(f"{table[g][k]:9.3f}" for k in SCORES))
    print(f"  {'mean':10s} " + " ".join(f"{mean[k]:9.3f}" for k in SCORES))
    if a.json:
        a.json.write_text(json.dumps({"per_genre": table, "mean": mean}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
