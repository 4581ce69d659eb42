"""The alternatives to the shipped track head, by the same grouped cross-validation.

    python scripts/cv_real_variants.py [--data ../shared/data]

Leave one real-song ``source_repo`` out (37 folds), GTZAN always in the fit, as
``scripts/train_real_head.py``; each variant's closed-set accuracy on the 105 real songs inside
the ten. Features are whole-track statistics of each track's first 29 patches (the shipped head
averages 29-patch windows; for these songs of <= 45 s the two differ little). Variants:

* ``shipped``: logistic regression (C 0.03) on ms_lm MSD statistics, GTZAN train taggrams + the
  other GTZAN clips with audio + real songs, "other" as an 11th class;
* ``svc``: an RBF SVC (C 1, probabilities by Platt scaling) instead;
* ``real x3`` / ``real x10``: real songs weighted 3 or 10 times;
* ``domain flag``: a feature that is 1 for real songs (and at prediction), 0 for GTZAN;
* ``audio pool, +MTT``: only tracks with audio (GTZAN clips + real songs), MSD + MTT statistics;
* ``audio pool, +embeddings``: the same + both backbones' mean penultimate embeddings;
* ``zero-shot``: no training at all; each genre's score is the mean logit of its MSD/MTT tag(s)
  (``ZERO_SHOT``; reggae has no tag and gets the median of the others);
* ``+ mastered GTZAN copies`` (``--mastering``; computes MSD taggrams of 133 processed clips, about
  a minute, cached in the user cache): the shipped recipe plus a copy of every non-test GTZAN clip
  with audio processed to sound like a modern master (``master``: a high shelf above 3 kHz of
  +1..+4 dB, the level pushed to -10 dBFS RMS, a tanh soft-clip limiter with drive 1.5..3).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import audio_features as AF  # noqa: E402
from train_real_head import OTHER, WINDOW, collect  # noqa: E402

from genrekit.backbones.musicnn import MSD_LABELS, MTT_LABELS  # noqa: E402
from genrekit.models.default import GENRES, window_features  # noqa: E402

ZERO_SHOT = {"blues": [("msd", "blues")], "classical": [("mtt", "classical")], "country": [("msd", "country")],
             "disco": [("msd", "dance"), ("msd", "funk")], "hiphop": [("msd", "Hip-Hop")], "jazz": [("msd", "jazz")],
             "metal": [("msd", "metal"), ("msd", "heavy metal"), ("msd", "hard rock")], "pop": [("msd", "pop")],
             "reggae": [], "rock": [("msd", "rock"), ("msd", "classic rock"), ("msd", "punk"), ("msd", "alternative rock")]}


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def zero_shot(msd: np.ndarray, mtt: np.ndarray) -> np.ndarray:
    s = []
    for g in GENRES:
        v = [_logit((msd if b == "msd" else mtt)[:, (MSD_LABELS if b == "msd" else MTT_LABELS).index(t)]).mean()
             for b, t in ZERO_SHOT[g]]
        s.append(max(v) if v else np.nan)
    s = np.array(s)
    s[np.isnan(s)] = np.nanmedian(s)
    return s


def master(y: np.ndarray, sr: int, drive: float, shelf_db: float) -> np.ndarray:
    """Modern-mastering imitation: brighter top, louder, peaks soft-clipped (see the docstring)."""
    import scipy.signal as ss

    b, a = ss.butter(1, 3000 / (sr / 2), "high")
    y = y + (10 ** (shelf_db / 20) - 1) * ss.lfilter(b, a, y)
    y = y * (10 ** (-10 / 20) / (np.sqrt(np.mean(y**2)) + 1e-9))
    y = np.tanh(drive * y) / np.tanh(drive)
    return (y / max(1.0, np.abs(y).max() / 0.99)).astype(np.float32)


def mastered_gtzan(data: Path) -> list[tuple[np.ndarray, int]]:
    """(MSD taggram, genre) of a mastered copy of every non-test GTZAN clip with audio (cached)."""
    from genrekit.audio import load_audio
    from genrekit.backbones.musicnn import load_backbone, run_patches
    from genrekit.features import MusicnnMfccSpec

    spec, rng = MusicnnMfccSpec(), np.random.default_rng(0)
    cache = AF.cache_root().parent / "mastered-v1"
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for it in AF.gtzan_clips(data):
        if it.split == "test":
            continue
        drive, shelf = float(rng.uniform(1.5, 3.0)), float(rng.uniform(1.0, 4.0))  # drawn for every clip
        f = cache / f"{it.path.stem}.npy"
        if not f.exists():
            y = master(load_audio(it.path, spec.sample_rate), spec.sample_rate, drive, shelf)
            v = spec.extract(y).values
            tags = run_patches(load_backbone("MSD_musicnn"), v[:, : spec.patch_frames], hop=spec.patch_hop_frames)["tags"]
            np.save(f, tags.astype(np.float32))
        out.append((np.load(f), GENRES.index(it.genre)))
    return out


def loso(X, y, group, real, make, weights=None) -> np.ndarray:
    """Out-of-fold closed-set predictions (argmax over the ten) of every real song."""
    pred = np.full(len(y), -1)
    for g in sorted(set(group[real])):
        held = group == g
        mu, sd = X[~held].mean(0), X[~held].std(0) + 1e-6
        clf = make().fit((X[~held] - mu) / sd, y[~held], **({"sample_weight": weights[~held]} if weights is not None else {}))
        p = clf.predict_proba((X[held] - mu) / sd)
        full = np.zeros((held.sum(), OTHER + 1))
        full[:, clf.classes_] = p
        pred[held] = full[:, :OTHER].argmax(1)
    return pred


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=AF.DEFAULT_DATA)
    ap.add_argument("--mastering", action="store_true", help="also the mastering-augmentation variant")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    D = collect(a.data)
    y = np.array(D["y"])
    group = np.array(D["group"])
    real = np.array([k.startswith("real") for k in D["kind"]])
    rin = real & (y < OTHER)
    X = np.stack([window_features(t[:WINDOW], "ms_lm") for t in D["tags"]])
    lr = lambda: LogisticRegression(C=0.03, max_iter=5000)  # noqa: E731
    rows: list[tuple[str, np.ndarray]] = [
        ("shipped", loso(X, y, group, real, lr)),
        ("svc", loso(X, y, group, real, lambda: SVC(C=1.0, probability=True, random_state=0))),
        ("real x3", loso(X, y, group, real, lr, np.where(real, 3.0, 1.0))),
        ("real x10", loso(X, y, group, real, lr, np.where(real, 10.0, 1.0))),
        ("domain flag", loso(np.c_[X, 3.0 * real], y, group, real, lr)),
    ]
    aud = np.array([m is not None for m in D["mtt"]])
    Xm = np.stack([np.r_[window_features(D["mtt"][i][0][:WINDOW], "ms_lm"), window_features(D["mtt"][i][1][:WINDOW], "ms_lm")]
                   for i in np.where(aud)[0]])
    emb = {it.path.stem if it.kind == "gtzan" else str(it.path.relative_to(a.data / "real-songs")): f
           for it, f in AF.load_all(a.data, verbose=False)}
    Xe = np.c_[Xm, np.stack([np.r_[emb[D["name"][i] if D["kind"][i] != "gtzan" else Path(D["name"][i]).stem]["msd_emb"],
                                   emb[D["name"][i] if D["kind"][i] != "gtzan" else Path(D["name"][i]).stem]["mtt_emb"]]
                             for i in np.where(aud)[0]])]
    for name, Xa in (("audio pool, +MTT", Xm), ("audio pool, +embeddings", Xe)):
        p = np.full(len(y), -1)
        p[aud] = loso(Xa, y[aud], group[aud], real[aud], lr)
        rows.append((name, p))
    zs = np.full(len(y), -1)
    for i in np.where(real)[0]:
        zs[i] = int(np.argmax(zero_shot(*D["mtt"][i])))
    rows.append(("zero-shot", zs))
    if a.mastering:
        aug = mastered_gtzan(a.data)
        Xa = np.r_[X, np.stack([window_features(t[:WINDOW], "ms_lm") for t, _ in aug])]
        n = len(aug)
        p = loso(Xa, np.r_[y, [g for _, g in aug]], np.r_[group, ["gtzan"] * n], np.r_[real, [False] * n], lr)
        rows.append(("+ mastered GTZAN copies", p[: len(y)]))
    print(f"closed-set accuracy on the {rin.sum()} real songs inside the ten, leave one source out:")
    for name, p in rows:
        print(f"  {name:26s} {np.mean(p[rin] == y[rin]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
