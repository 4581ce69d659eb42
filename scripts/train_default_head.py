"""Train the default model's head on the stored MSD_musicnn taggrams and evaluate it once.

    python scripts/train_default_head.py [--data ../shared/data] [--out src/genrekit/assets/default_head.safetensors]

1. Model selection by 5-fold cross-validation *inside the train split* (443 tracks; no validation
   taggrams exist). Folds are grouped by blocks of 10 consecutive file numbers within a genre,
   because GTZAN stores an artist's songs next to each other: random folds would leak artists
   and flatter every configuration (the test split is artist-filtered).
2. The chosen configuration is refitted on all 443 train tracks (an ensemble of members with
   different seeds), then evaluated once on the 290 fault-filtered test tracks: accuracy,
   macro-F1, confusion matrix; these metrics go into the head file's metadata.

Augmentation (why): the head must answer for whole tracks (all patches, 1 s hop in the stored
data; 3 s hop at prediction for speed) and for a few patches (timeline segments), and be robust
to small front-end differences (resampler, padding) -- so each training example is a random
window of a track's patches, optionally with Gaussian noise on the patch logits. Two heads are
fitted with the chosen configuration: the track head on whole tracks / every 3rd patch, the
segment head on 1-3 patch windows (timelines).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from genrekit.default_model import FORMAT, GENRES, window_features  # noqa: E402

#: Candidate heads: name -> (feature kind, logit noise, member kinds). A member kind is
#: "mlp64" (MLP, 64 hidden), "linear" (softmax regression) or "rbf" (RBF-kernel logistic
#: regression, anchors = the training tracks). Ensembles average their members' probabilities.
CONFIGS = {
    "linear": ("ms_lm", 0.0, ["linear"]),
    "mlp64": ("ms_lm", 0.2, ["mlp64"]),
    "rbf": ("ms_lm", 0.0, ["rbf"]),
    "mlp64_ms": ("ms", 0.2, ["mlp64"]),
    "rbf_ms": ("ms", 0.0, ["rbf"]),
    "ens_lin_mlp_rbf": ("ms_lm", 0.2, ["linear", "mlp64", "rbf"]),
    "ens_lin_mlp_rbf_ms": ("ms", 0.2, ["linear", "mlp64", "rbf"]),
    "patch_mlp64": ("ms_lm", 0.2, ["patch_mlp64"]),
    "ens_lin_patchmlp": ("ms_lm", 0.2, ["linear", "patch_mlp64"]),
}


def load_tracks(path: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    d = np.load(path)
    ids = np.array([str(i) for i in d["IDS"]])
    keys = list(dict.fromkeys(ids))
    tracks = [d["X"][ids == k].astype(np.float32) for k in keys]
    y = np.array([int(d["Y"][ids == k][0]) for k in keys])
    return tracks, y, keys


def groups_of(keys: list[str]) -> np.ndarray:
    """Genre + block of 10 file numbers, a proxy for artist (GTZAN orders files by artist)."""
    return np.array([f"{k.split('/')[0]}-{int(k.split('.')[-2]) // 10}" for k in keys])


def grouped_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Assign whole groups to folds, roughly balancing each genre across folds."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for g in np.unique(y):
        gs = np.unique(groups[y == g])
        rng.shuffle(gs)
        for i, grp in enumerate(gs):
            fold[(groups == grp) & (y == g)] = (i + rng.integers(k)) % k
    return [np.flatnonzero(fold == i) for i in range(k)]


def _logit_noise(t: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    if sigma <= 0:
        return t
    p = np.clip(t, 1e-4, 1 - 1e-4)
    z = np.log(p / (1 - p)) + rng.normal(0, sigma, size=t.shape)
    return (1 / (1 + np.exp(-z))).astype(np.float32)


def augmented(tracks, y, kind, noise, n_per_track, rng, mode="track"):
    """Random windows of each track's patches -> features. ``track``: the whole track or every
    3rd patch from a random offset (the 3 s prediction hop); ``segment``: 1-3 patches, spaced
    1 s or 3 s apart (what a timeline segment sees)."""
    feats, labels = [], []
    for t, lab in zip(tracks, y, strict=False):
        for j in range(n_per_track):
            if mode == "track":
                w = t if j % 3 == 0 else t[rng.integers(3) :: 3]
            else:
                step = 3 if j % 2 else 1
                n = int(rng.integers(1, 4))
                s = int(rng.integers(0, max(1, len(t) - step * (n - 1))))
                w = t[s : s + step * (n - 1) + 1 : step]
            feats.append(window_features(_logit_noise(w, noise, rng), kind))
            labels.append(lab)
    return np.stack(feats), np.array(labels)


def fit_member(F, Y, member, seed, anchors=None, epochs=30):
    import torch

    torch.manual_seed(seed)
    d = F.shape[1]
    Xt, Yt = torch.from_numpy(F), torch.from_numpy(Y).long()
    if member.startswith("rbf"):
        A = torch.from_numpy(anchors)
        gamma = 1.0 / d
        K = torch.exp(-gamma * torch.cdist(Xt, A).pow(2))
        Kaa = torch.exp(-gamma * torch.cdist(A, A).pow(2))
        alpha = torch.zeros(len(A), len(GENRES), requires_grad=True)
        bias = torch.zeros(len(GENRES), requires_grad=True)
        opt = torch.optim.LBFGS([alpha, bias], max_iter=200, line_search_fn="strong_wolfe")
        lam = 1e-3

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(K @ alpha + bias, Yt) + lam * (alpha * (Kaa @ alpha)).sum() / 2
            loss.backward()
            return loss

        opt.step(closure)
        return {"anchors": anchors.copy(), "alpha": alpha.detach().numpy().copy(),
                "bias": bias.detach().numpy().copy(), "gamma": np.array([gamma], np.float32)}
    hidden = 64 if member == "mlp64" else 0
    if hidden:
        net = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(d, hidden), torch.nn.ReLU(),
                                  torch.nn.Dropout(0.3), torch.nn.Linear(hidden, len(GENRES)))
    else:
        net = torch.nn.Sequential(torch.nn.Linear(d, len(GENRES)))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-2 if hidden else 1e-1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=g)
        for i in range(0, len(perm), 256):
            b = perm[i : i + 256]
            loss = torch.nn.functional.cross_entropy(net(Xt[b]), Yt[b], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    out = {"w1": lin[0].weight, "b1": lin[0].bias}
    if hidden:
        out.update({"w2": lin[1].weight, "b2": lin[1].bias})
    return {k: v.detach().numpy().copy() for k, v in out.items()}


def fit_head(tracks, y, cfg, n_members, seed, n_per_track=6, mode="track"):
    """Tensors for TaggramHead: ``n_members`` seeds of every member kind in ``cfg``."""
    kind, noise, kinds = cfg
    base = np.stack([window_features(t, kind) for t in tracks])
    mu, sigma = base.mean(0), base.std(0) + 1e-6
    tensors = {"mu": mu.astype(np.float32), "sigma": sigma.astype(np.float32)}
    anchors = ((base - mu) / sigma).astype(np.float32)
    i = 0
    for m in range(n_members):
        rng = np.random.default_rng(seed * 1000 + m)
        F, Y = augmented(tracks, y, kind, noise, n_per_track, rng, mode)
        for member in kinds:
            if member.startswith("rbf") and m > 0:
                continue  # deterministic given the data; one is enough
            if member.startswith("patch_"):  # every patch on its own (a window of one)
                Fp = np.concatenate([window_features(_logit_noise(t, noise, rng)[:, None, :], kind) for t in tracks])
                Yp = np.concatenate([np.full(len(t), lab) for t, lab in zip(tracks, y, strict=True)])
                fitted = fit_member((Fp - mu) / sigma, Yp, member[6:], seed * 1000 + m, anchors, epochs=10)
                fitted["per_patch"] = np.ones(1, np.float32)
            else:
                fitted = fit_member((F - mu) / sigma, Y, member, seed * 1000 + m, anchors)
            for k, v in fitted.items():
                tensors[f"m{i}.{k}"] = v.astype(np.float32)
            i += 1
    return tensors


def predict(tensors, kind, tracks, every_third=False):
    from genrekit.default_model import TaggramHead

    head = TaggramHead(tensors, kind)
    if every_third:  # the prediction path's 3 s patch hop: average over the three offsets
        return np.stack([np.mean([head.probs(t[o::3]) for o in range(3)], axis=0) for t in tracks])
    return np.stack([head.probs(t) for t in tracks])


def metrics(y, pred, n=10):
    cm = np.zeros((n, n), dtype=int)
    for a, b in zip(y, pred, strict=False):
        cm[a, b] += 1
    tp = np.diag(cm).astype(float)
    prec = tp / np.maximum(cm.sum(0), 1)
    rec = tp / np.maximum(cm.sum(1), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0)
    return {"accuracy": float(tp.sum() / cm.sum()), "macro_f1": float(f1.mean()), "n": int(cm.sum()),
            "confusion": cm.tolist(), "per_class_f1": dict(zip(GENRES, map(float, f1), strict=False))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="train the default musicnn head")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "src" / "genrekit" / "assets" / "default_head.safetensors"))
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cv-repeats", type=int, default=3, help="fold assignments averaged (less selection noise)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cv-only", action="store_true", help="stop after model selection (no test look)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    data = Path(args.data) / "gtzan-musicnn"
    tracks, y, keys = load_tracks(data / "msd_taggram_train.npz")
    fold_sets = [grouped_folds(y, groups_of(keys), args.folds, args.seed + r) for r in range(args.cv_repeats)]
    print(f"train: {len(tracks)} tracks; {args.cv_repeats} x {args.folds} grouped folds")
    cv = {}
    t0 = time.time()
    for name, cfg in CONFIGS.items():
        accs = []
        for f in (f for folds in fold_sets for f in folds):
            tr = np.setdiff1d(np.arange(len(y)), f)
            ten = fit_head([tracks[i] for i in tr], y[tr], cfg, n_members=1, seed=args.seed)
            p = predict(ten, cfg[0], [tracks[i] for i in f])
            accs.append(float((p.argmax(1) == y[f]).mean()))
        cv[name] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "config": list(cfg)}
        print(f"CV {name:16s} {cfg}: {np.mean(accs):.4f} +- {np.std(accs):.4f}  [{time.time() - t0:.0f}s]", flush=True)
    best_name = max(CONFIGS, key=lambda c: cv[c]["mean"])
    best = CONFIGS[best_name]
    print(f"chosen by CV: {best_name} {best}")
    if args.cv_only:
        return 0

    tensors = fit_head(tracks, y, best, n_members=args.members, seed=args.seed)
    seg = fit_head(tracks, y, best, n_members=args.members, seed=args.seed, n_per_track=12, mode="segment")
    test_tracks, y_test, _ = load_tracks(data / "msd_taggram_test.npz")
    m_all = metrics(y_test, predict(tensors, best[0], test_tracks).argmax(1))
    m_3 = metrics(y_test, predict(tensors, best[0], test_tracks, every_third=True).argmax(1))
    print(f"TEST (290 fault-filtered tracks, all 1 s patches): accuracy {m_all['accuracy']:.4f} "
          f"macro-F1 {m_all['macro_f1']:.4f}")
    print(f"TEST (every 3rd patch, the 3 s prediction hop):     accuracy {m_3['accuracy']:.4f} "
          f"macro-F1 {m_3['macro_f1']:.4f}")
    print("confusion (rows true, cols predicted; " + " ".join(GENRES) + "):")
    for g, row in zip(GENRES, m_all["confusion"], strict=False):
        print(f"  {g:10s} " + " ".join(f"{v:3d}" for v in row))

    from genrekit.features import MusicnnSpec
    from genrekit.modelfile import save_model_file

    spec = MusicnnSpec(patch_hop_frames=183)
    meta = {
        "format": FORMAT,
        "name": "default",
        "description": "musicnn MSD_musicnn (Pons & Serra 2019, weights from musicnn 0.1.0, ISC) taggrams "
                       "-> MLP-ensemble head trained on the fault-filtered GTZAN train split",
        "backbone": "MSD_musicnn",
        "labels": GENRES,
        "feature_spec": spec.to_dict(),
        "feature_kind": best[0],
        "segment_half_window": 1,
        "training": {"data": "gtzan-musicnn/msd_taggram_train.npz (443 tracks)", "config": {
            "name": best_name, "features": best[0], "logit_noise": best[1], "member_kinds": best[2],
            "seeds": args.members, "seed": args.seed}, "cv": cv, "cv_folds": f"{args.cv_repeats} x {args.folds} folds grouped by genre + file-number block of 10"},
        "metrics": {"test_track": {k: m_all[k] for k in ("accuracy", "macro_f1", "n", "confusion")},
                    "test_track_3s_hop": {k: m_3[k] for k in ("accuracy", "macro_f1", "n")},
                    "cv_accuracy": cv[best_name]["mean"]},
    }
    both = {f"track.{k}": v for k, v in tensors.items()} | {f"segment.{k}": v for k, v in seg.items()}
    save_model_file(args.out, {k: torch.from_numpy(v) for k, v in both.items()}, meta)
    print(f"wrote {args.out}")
    print(json.dumps({"cv_accuracy": cv[best_name]["mean"], "test_accuracy": m_all["accuracy"],
                      "test_macro_f1": m_all["macro_f1"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
