"""How well the default track head's probabilities are calibrated, with its per-input
temperature T = exp(a + b * s_top) and with the constant temperature it had before.

    python scripts/calibration.py [--data ../shared/data] [--skip-cv]

1. Train CV (3 x 5 stratified grouped folds of the train split, as scripts/train_default_head.py
   splits them; a, b and the constant T of each fold's head fitted on that fold's inner
   out-of-fold decisions): the held-out tracks' probabilities.
2. The 290 fault-filtered test tracks, committed head.
For each: mean log-loss, expected calibration error (10 equal-width bins of the top
probability), the top probability's 10/50/90% quantiles, its mean on right and on wrong answers,
and the AUROC of the top probability for telling right from wrong. The two temperatures never
change which genre wins, so accuracy is the same for both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "src"))

from train_default_head import committed_cv_heads, load_tracks, mfcc_table_of  # noqa: E402

from genrekit.models.default import TaggramHead  # noqa: E402


def constant_temperature(head: TaggramHead) -> TaggramHead:
    """The same head with each SVC member's constant temperature instead of exp(a + b s_top)."""
    out = TaggramHead({}, head.kind)
    out.mu, out.sigma = head.mu, head.sigma
    out.members = [{k: v for k, v in m.items() if k != "temperature_coef"} for m in head.members]
    return out


def auroc(score: np.ndarray, right: np.ndarray) -> float:
    """P(score of a right answer > score of a wrong one), ties half (Mann-Whitney)."""
    pos, neg = score[right], score[~right]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def report(name: str, probs: np.ndarray, y: np.ndarray) -> None:
    top, pred = probs.max(1), probs.argmax(1)
    right = pred == y
    nll = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    edges = np.linspace(0, 1, 11)
    ece = sum(abs(top[m].mean() - right[m].mean()) * m.mean()
              for lo, hi in zip(edges[:-1], edges[1:], strict=True) if (m := (top >= lo) & (top < hi)).any())
    q = np.quantile(top, [0.1, 0.5, 0.9])
    print(f"  {name:28s} acc {right.mean():.3f}  log-loss {nll:.3f}  ECE {ece:.3f}  top p 10/50/90% "
          f"{q[0]:.3f}/{q[1]:.3f}/{q[2]:.3f}  mean top right {top[right].mean():.3f} wrong {top[~right].mean():.3f}"
          f"  AUROC {auroc(top, right):.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--skip-cv", action="store_true")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not args.skip_cv:
        tracks, y, folds = committed_cv_heads(data)
        idx, p_coef, p_const = [], [], []
        for f, head in folds:
            const = constant_temperature(head)
            idx.extend(f)
            p_coef.extend(head.probs(tracks[i]) for i in f)
            p_const.extend(const.probs(tracks[i]) for i in f)
        yy = y[np.array(idx)]
        print(f"train CV, held-out tracks ({len(yy)} = 443 x 3 repeats):")
        report("T = exp(a + b s_top)", np.array(p_coef), yy)
        report("constant T", np.array(p_const), yy)
    from genrekit.models.base import load_model

    model = load_model(None)
    tracks, y, _ = load_tracks(data / "gtzan-musicnn" / "msd_taggram_test.npz", mfcc_table_of(data))
    print(f"test split ({len(y)} tracks), committed head:")
    report("T = exp(a + b s_top)", np.array([model.head.probs(t) for t in tracks]), y)
    report("constant T", np.array([constant_temperature(model.head).probs(t) for t in tracks]), y)
    return 0


if __name__ == "__main__":
    sys.exit(main())
