"""Train the default model's heads on the stored MSD_musicnn taggrams and evaluate once on test.

    python scripts/train_default_head.py [--data ../shared/data] [--out src/genrekit/assets/default_head.safetensors]

Needs scikit-learn (a dev dependency; the committed head is plain numpy at runtime).

1. Model selection *inside the train split* (443 tracks; no validation taggrams exist):
   StratifiedGroupKFold(5, shuffle=True, random_state=r) for r = 0, 1, 2 (15 folds), stratified
   by genre, grouped by genre * 100 + file_number // 10 (GTZAN stores an artist's songs next to
   each other, so blocks of 10 file numbers stand in for artists; the test split is
   artist-filtered). Candidates (``CANDIDATES``): StandardScaler + RBF SVC / logistic regression
   on whole-track window statistics, and the earlier softmax-regression + per-patch-MLP ensemble
   (torch, trained on random sub-windows). The best CV mean is chosen.
2. The chosen track head is refitted on all 443 train tracks. For an SVC, its ovr decision
   values are turned into probabilities by softmax(ovr / T), with T fitted by minimising the
   log-loss of out-of-fold decision values (the first repeat's 5 folds); the SVC is exported to
   plain numpy (``genrekit.default_model.svm_member_from_sklearn``).
3. The segment head (timelines: windows of 1-3 patches) keeps its own configuration
   (``SEGMENT_CONFIG``: softmax regression + per-patch MLP on mean/std/mean-logit, random 1-3
   patch windows, logit noise 0.2), trained on the train split only.
4. One evaluation on the 290 fault-filtered test tracks (accuracy, macro-F1, confusion), written
   into the head file's metadata. Nothing is tuned on test.
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

#: The segment head's configuration (see CONFIGS); not re-selected here.
SEGMENT_CONFIG_NAME = "ens_lin_patchmlp"

#: Track-head candidates for the CV: name -> ("svc" | "lr", feature kind, C) for sklearn models on
#: StandardScaler'd whole-track window statistics, or ("torch", CONFIGS key) for a torch ensemble.
CANDIDATES = {
    "svc_C0.5_ms": ("svc", "ms", 0.5),
    "svc_C1_ms": ("svc", "ms", 1.0),
    "svc_C2_ms": ("svc", "ms", 2.0),
    "svc_C0.5_ms_lm": ("svc", "ms_lm", 0.5),
    "svc_C1_ms_lm": ("svc", "ms_lm", 1.0),
    "svc_C2_ms_lm": ("svc", "ms_lm", 2.0),
    "lr_C0.03_ms_lm": ("lr", "ms_lm", 0.03),
    "lr_C0.1_ms_lm": ("lr", "ms_lm", 0.1),
    "ens_lin_patchmlp": ("torch", "ens_lin_patchmlp"),
}

#: Torch head configurations: name -> (feature kind, logit noise, member kinds). A member kind is
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


def groups_of(keys: list[str], y: np.ndarray) -> np.ndarray:
    """genre * 100 + file_number // 10: a block of 10 file numbers within a genre, a proxy for
    artist (GTZAN orders files by artist)."""
    return np.array([int(g) * 100 + int(k.split(".")[-2]) // 10 for k, g in zip(keys, y, strict=True)])


def cv_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Held-out index sets of StratifiedGroupKFold(k, shuffle=True, random_state=seed)."""
    from sklearn.model_selection import StratifiedGroupKFold

    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [te for _, te in sgkf.split(np.zeros(len(y)), y, groups)]


def fit_sklearn(kind: str, c: float, X: np.ndarray, y: np.ndarray):
    """StandardScaler + (RBF SVC | logistic regression), fitted on whole-track features X."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    scaler = StandardScaler().fit(X)
    est = SVC(C=c, kernel="rbf", gamma="scale") if kind == "svc" else LogisticRegression(C=c, max_iter=5000)
    return scaler, est.fit(scaler.transform(X), y)


def fit_temperature(dec: np.ndarray, y: np.ndarray) -> float:
    """T minimising the mean log-loss of softmax(dec / T) (golden-section search on log T)."""
    def nll(log_t):
        h = dec / np.exp(log_t)
        h = h - h.max(1, keepdims=True)
        return float(-(h[np.arange(len(y)), y] - np.log(np.exp(h).sum(1))).mean())

    a, b = np.log(0.01), np.log(100.0)
    g = (np.sqrt(5) - 1) / 2
    for _ in range(100):
        c, d = b - g * (b - a), a + g * (b - a)
        a, b = (a, d) if nll(c) < nll(d) else (c, b)
    return float(np.exp((a + b) / 2))


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
    ap.add_argument("--members", type=int, default=5, help="seeds per torch ensemble")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cv-repeats", type=int, default=3, help="shuffled fold assignments (random_state 0..R-1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-torch-cv", action="store_true", help="skip the (slower) torch ensemble candidate")
    ap.add_argument("--cv-only", action="store_true", help="stop after model selection (no test look)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    data = Path(args.data) / "gtzan-musicnn"
    tracks, y, keys = load_tracks(data / "msd_taggram_train.npz")
    groups = groups_of(keys, y)
    fold_sets = [cv_folds(y, groups, args.folds, r) for r in range(args.cv_repeats)]
    feats = {k: np.stack([window_features(t, k) for t in tracks]) for k in ("ms", "ms_lm")}
    print(f"train: {len(tracks)} tracks, {len(np.unique(groups))} groups; {args.cv_repeats} x {args.folds} "
          "StratifiedGroupKFold folds")
    cv = {}
    t0 = time.time()
    for name, cand in CANDIDATES.items():
        if cand[0] == "torch" and args.no_torch_cv:
            continue
        accs = []
        for f in (f for folds in fold_sets for f in folds):
            tr = np.setdiff1d(np.arange(len(y)), f)
            if cand[0] == "torch":
                cfg = CONFIGS[cand[1]]
                ten = fit_head([tracks[i] for i in tr], y[tr], cfg, n_members=1, seed=args.seed)
                pred = predict(ten, cfg[0], [tracks[i] for i in f]).argmax(1)
            else:
                X = feats[cand[1]]
                scaler, est = fit_sklearn(cand[0], cand[2], X[tr], y[tr])
                pred = est.predict(scaler.transform(X[f]))
            accs.append(float((pred == y[f]).mean()))
        cv[name] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "candidate": list(cand)}
        print(f"CV {name:18s} {np.mean(accs):.4f} +- {np.std(accs):.4f}  [{time.time() - t0:.0f}s]", flush=True)
    ranked = sorted(cv, key=lambda c: -cv[c]["mean"])
    print("CV table (best first):")
    for name in ranked:
        print(f"  {name:18s} {cv[name]['mean']:.4f} +- {cv[name]['std']:.4f}")
    best_name = ranked[0]
    best = CANDIDATES[best_name]
    print(f"chosen by CV: {best_name} {best}")
    if args.cv_only:
        return 0

    # -- the track head, refitted on all train tracks ------------------------------------------
    extra: dict = {}
    if best[0] == "torch":
        track_kind = CONFIGS[best[1]][0]
        tensors = fit_head(tracks, y, CONFIGS[best[1]], n_members=args.members, seed=args.seed)
        extra = {"logit_noise": CONFIGS[best[1]][1], "member_kinds": CONFIGS[best[1]][2], "seeds": args.members}
    else:
        from genrekit.default_model import svm_member_from_sklearn

        track_kind, X = best[1], feats[best[1]]
        scaler, est = fit_sklearn(best[0], best[2], X, y)
        tensors = {"mu": scaler.mean_.astype(np.float32), "sigma": scaler.scale_.astype(np.float32)}
        if best[0] == "svc":
            from genrekit.default_model import svm_ovr_decision

            oof = np.zeros((len(y), len(GENRES)))
            for f in fold_sets[0]:
                tr = np.setdiff1d(np.arange(len(y)), f)
                sc_f, est_f = fit_sklearn("svc", best[2], X[tr], y[tr])
                oof[f] = est_f.decision_function(sc_f.transform(X[f]))
            temperature = fit_temperature(oof, y)
            member = svm_member_from_sklearn(est, temperature)
            z = scaler.transform(X)
            gap = float(np.abs(svm_ovr_decision(member, z) - est.decision_function(z)).max())
            agree = float((svm_ovr_decision(member, z).argmax(1) == est.predict(z)).mean())
            print(f"SVC: {len(member['sv'])} support vectors, temperature {temperature:.4f} (out-of-fold log-loss); "
                  f"numpy vs sklearn on train: max |decision diff| {gap:.2e}, argmax == predict {agree:.4f}")
            extra = {"C": best[2], "gamma": "scale", "gamma_value": float(est._gamma), "kernel": "rbf",
                     "n_support_vectors": len(member["sv"]), "temperature": temperature,
                     "temperature_fit": "min log-loss of out-of-fold ovr decisions, repeat 0's 5 folds"}
        else:
            member = {"w1": est.coef_.astype(np.float32), "b1": est.intercept_.astype(np.float32)}
            extra = {"C": best[2]}
        tensors.update({f"m0.{k}": v for k, v in member.items()})

    # -- the segment head (timelines) ----------------------------------------------------------
    seg_cfg = CONFIGS[SEGMENT_CONFIG_NAME]
    seg = fit_head(tracks, y, seg_cfg, n_members=args.members, seed=args.seed, n_per_track=12, mode="segment")

    # -- one look at the test split ------------------------------------------------------------
    test_tracks, y_test, _ = load_tracks(data / "msd_taggram_test.npz")
    m_all = metrics(y_test, predict(tensors, track_kind, test_tracks).argmax(1))
    m_3 = metrics(y_test, predict(tensors, track_kind, test_tracks, every_third=True).argmax(1))
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
    desc = {"svc": "StandardScaler + RBF SVC", "lr": "StandardScaler + logistic regression",
            "torch": "softmax-regression + MLP ensemble"}[best[0]]
    meta = {
        "format": FORMAT,
        "name": "default",
        "description": "musicnn MSD_musicnn (Pons & Serra 2019, weights from musicnn 0.1.0, ISC) taggrams "
                       f"-> {desc} track head ({track_kind} window statistics) + softmax-regression/MLP "
                       "segment head, trained on the fault-filtered GTZAN train split",
        "backbone": "MSD_musicnn",
        "labels": GENRES,
        "feature_spec": spec.to_dict(),
        "track_feature_kind": track_kind,
        "segment_feature_kind": seg_cfg[0],
        "segment_half_window": 1,
        "training": {
            "data": "gtzan-musicnn/msd_taggram_train.npz (443 tracks)",
            "config": {"name": best_name, "features": track_kind, **extra, "seed": args.seed},
            "segment_config": {"name": SEGMENT_CONFIG_NAME, "features": seg_cfg[0], "logit_noise": seg_cfg[1],
                               "member_kinds": seg_cfg[2], "seeds": args.members, "windows": "1-3 patches"},
            "cv": cv,
            "cv_folds": f"StratifiedGroupKFold({args.folds}, shuffle=True, random_state=r), r < {args.cv_repeats}; "
                        "groups genre*100 + file_number//10",
        },
        "metrics": {"test_track": {k: m_all[k] for k in ("accuracy", "macro_f1", "n", "confusion")},
                    "test_track_3s_hop": {k: m_3[k] for k in ("accuracy", "macro_f1", "n")},
                    "cv_accuracy": cv[best_name]["mean"]},
    }
    both = {f"track.{k}": v for k, v in tensors.items()} | {f"segment.{k}": v for k, v in seg.items()}
    save_model_file(args.out, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in both.items()}, meta)
    print(f"wrote {args.out}")
    print(json.dumps({"chosen": best_name, "cv_accuracy": cv[best_name]["mean"], "test_accuracy": m_all["accuracy"],
                      "test_macro_f1": m_all["macro_f1"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
