"""Build and measure the default model's heads over both backbones (musicnn MSD + EfficientAT mn04).

    python scripts/train_default_model.py [--data ../shared/data] [--cv-only]

Cross-validation: leave one real-song ``source_repo`` out; GTZAN is always in the fit and never
scored here. Reads per-patch musicnn outputs through ``scripts/audio_features.py`` and mn04 outputs
through ``genrekit.models.audioset.window_rows`` (the extraction prediction uses), both cached in the
user cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import audio_features as AF  # noqa: E402
from train_default_head import load_tracks  # noqa: E402

from genrekit.heads import logistic as LR  # noqa: E402
from genrekit.heads.openset import pick_threshold  # noqa: E402
from genrekit.heads.validation import auroc, bootstrap_interval, grouped_k_folds, leave_one_group_out, scores  # noqa: E402
from genrekit.models import audioset as AS  # noqa: E402
from genrekit.models.default import GENRES, N_TAGS, long_input_windows, window_features  # noqa: E402

#: The EfficientAT weights beside the shared data (what tests and CI use); a user's own copy wins.
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "efficientat" / "mn04_as_mAP_432.pt"
if SHARED_WEIGHTS.is_file():
    os.environ.setdefault("GENREKIT_EFFICIENTAT_WEIGHTS", str(SHARED_WEIGHTS))

OTHER = len(GENRES)
WINDOW = 29
MAX_FALSE_OTHER = 0.15


def mn04_rows(it: AF.Item, n_patches: int) -> np.ndarray:
    from genrekit.audio import load_audio
    from genrekit.features import MusicnnMfccSpec

    spec = MusicnnMfccSpec()
    root = AF.cache_root()
    f = root / f"mn04-{AF._key(it.path)}.npy"
    if f.exists():
        return np.load(f)
    y = load_audio(it.path, spec.sample_rate)
    starts = np.arange(n_patches) * spec.patch_hop_frames * spec.hop_length / spec.musicnn_sample_rate
    rows = AS.window_rows(y, spec.sample_rate, starts)
    tmp = f.with_suffix(".tmp.npy")
    np.save(tmp, rows)
    os.replace(tmp, f)
    return rows


def collect(data: Path) -> dict[str, list]:
    D: dict[str, list] = {k: [] for k in ("msd", "mn", "y", "group", "kind", "name", "style", "mtt")}

    def add(msd, mn, y, group, kind, name, style="", mtt=None):
        for k, v in zip(("msd", "mn", "y", "group", "kind", "name", "style", "mtt"),
                        (msd, mn, y, group, kind, name, style, mtt), strict=True):
            D[k].append(v)

    tracks, y, keys = load_tracks(data / "gtzan-musicnn" / "msd_taggram_train.npz")
    stored = {Path(k).stem: i for i, k in enumerate(keys)}
    for t, yy, k in zip(tracks, y, keys, strict=True):
        add(t[:, :N_TAGS], None, int(yy), "gtzan", "gtzan", Path(k).stem)
    t0 = time.time()
    for n, (it, f) in enumerate(AF.load_all(data)):
        mn = AS.track_features(mn04_rows(it, len(f["msd"])))
        if it.kind == "gtzan":
            if it.split == "test":
                add(f["msd"], mn, GENRES.index(it.genre), "gtzan-test", "gtzan-test", it.path.stem, mtt=f["mtt"])
            elif it.path.stem in stored:
                D["mn"][stored[it.path.stem]] = mn
                D["mtt"][stored[it.path.stem]] = f["mtt"]
            else:
                add(f["msd"], mn, GENRES.index(it.genre), "gtzan", "gtzan-audio", it.path.stem, mtt=f["mtt"])
        else:
            add(f["msd"], mn, GENRES.index(it.genre) if it.in_ten else OTHER, it.group,
                "real-in" if it.in_ten else "real-out", str(it.path.relative_to(data / "real-songs")), it.genre,
                mtt=f["mtt"])
        if (n + 1) % 50 == 0:
            print(f"  mn04 {n + 1} files ({time.time() - t0:.0f} s)", file=sys.stderr)
    return D


def msd_rows(tags: np.ndarray) -> list[np.ndarray]:
    return [window_features(tags[w], "ms_lm") for w in long_input_windows(len(tags), WINDOW, WINDOW // 2)]


def fit_msd(D, idx, C):
    X, Y, W = [], [], []
    for i in idx:
        rows = msd_rows(D["msd"][i])
        X += rows
        Y += [D["y"][i]] * len(rows)
        W += [1.0 / len(rows)] * len(rows)
    return LR.fit_logistic(np.array(X), np.array(Y), C=C, n_classes=OTHER + 1, sample_weight=np.array(W))


def prob_msd(m, tags):
    return LR.probs(m, np.array(msd_rows(tags))).mean(0)


def fit_mn(D, idx, C, kind, with_msd=False, balanced=False, real_weight=1.0):
    idx = [i for i in idx if D["mn"][i] is not None]
    X = np.array([feat(D, i, kind, with_msd) for i in idx])
    w = np.array([real_weight if D["kind"][i].startswith("real") else 1.0 for i in idx])
    return LR.fit_logistic(X, np.array([D["y"][i] for i in idx]), C=C, n_classes=OTHER + 1, sample_weight=w,
                           balanced=balanced)


def feat(D, i, kind, with_msd):
    f = AS.head_features(D["mn"][i], kind)
    if with_msd:
        f = np.r_[msd_rows(D["msd"][i][:WINDOW])[0], f]
    return f


def evaluate(name, D, P, real, y, group):
    """Closed/open-set figures of out-of-fold probabilities P [n, 11] (rows of real songs)."""
    rin, rout = real & (y < OTHER), real & (y == OTHER)
    closed = P[:, :OTHER].argmax(1)
    in_set = 1 - P[:, OTHER]
    answer = closed.copy()
    for g in sorted(set(group[real])):
        held = group == g
        t = pick_threshold(in_set[rin & ~held], in_set[rout & ~held], MAX_FALSE_OTHER)
        answer[held & (in_set < t)] = OTHER
    s = scores(y[rin], closed[rin], OTHER)
    right = (closed[rin] == y[rin]).astype(float)
    lo, hi = bootstrap_interval(right, group[rin])
    res = {"name": name, "folds": int(len(set(group[real].tolist()))), "closed_acc": s["accuracy"], "closed_f1": s["macro_f1"], "ci": (lo, hi),
           "open_acc": float((answer[rin] == y[rin]).mean()), "caught": float((answer[rout] == OTHER).mean()),
           "false_other": float((answer[rin] == OTHER).mean()), "auroc": auroc(-in_set[rout], -in_set[rin]),
           "confusion": s["confusion"], "answer": answer}
    print(f"{name:34s} closed {res['closed_acc']:.3f} [{lo:.2f}-{hi:.2f}] F1 {res['closed_f1']:.3f} | open acc "
          f"{res['open_acc']:.3f} other {res['caught']:.1%} false {res['false_other']:.1%} AUROC {res['auroc']:.3f}")
    return res


def cross_validate(D, variants, k_folds: int = 0):
    """Out-of-fold probabilities of every variant: leave one source out (``k_folds`` 0), or whole
    sources dealt into ``k_folds`` folds (cheaper, to compare many candidates)."""
    y = np.array(D["y"])
    group = np.array(D["group"])
    kind = np.array(D["kind"])
    real = np.array([k.startswith("real") for k in kind])
    fixed = ~real
    results = {}
    oof = {v: np.full((len(y), OTHER + 1), np.nan) for v in variants}
    folds = list(grouped_k_folds(group, k_folds, fixed) if k_folds else leave_one_group_out(group, fixed))
    t0 = time.time()
    for n, (_, fit_idx, held) in enumerate(folds):
        fit_idx = [i for i in fit_idx if kind[i] != "gtzan-test"]
        cache = {}
        for v, spec in variants.items():
            P = spec(D, fit_idx, held, cache)
            oof[v][held] = P
        print(f"  fold {n + 1}/{len(folds)} ({time.time() - t0:.0f} s)", file=sys.stderr)
    for v in variants:
        results[v] = evaluate(v, D, oof[v], real, y, group)
    return results, oof


def v_msd(C=0.03, audio_only=False):
    """The musicnn head; ``audio_only``: fitted only on tracks with audio (without the 443 stored GTZAN
    taggrams whose clips are not in shared/), the data a labelled folder gives ``genrekit train``."""
    def run(D, fit_idx, held, cache):
        key = ("msd", C, audio_only)
        if key not in cache:
            idx = [i for i in fit_idx if D["mn"][i] is not None] if audio_only else fit_idx
            cache[key] = fit_msd(D, idx, C)
        return np.stack([prob_msd(cache[key], D["msd"][i]) for i in held])
    return run


def v_mn(C=0.03, kind="all", with_msd=False, balanced=False, real_weight=1.0):
    def run(D, fit_idx, held, cache):
        key = ("mn", C, kind, with_msd, balanced, real_weight)
        if key not in cache:
            cache[key] = fit_mn(D, fit_idx, C, kind, with_msd, balanced, real_weight)
        return np.stack([LR.probs(cache[key], feat(D, i, kind, with_msd)) for i in held])
    return run


def v_late(alpha=0.5, C_msd=0.03, C_mn=0.03, kind="all", audio_only=False, **mn_options):
    a, b = v_msd(C_msd, audio_only), v_mn(C_mn, kind, **mn_options)

    def run(D, fit_idx, held, cache):
        pa, pb = a(D, fit_idx, held, cache), b(D, fit_idx, held, cache)
        z = alpha * np.log(np.clip(pa, 1e-9, 1)) + (1 - alpha) * np.log(np.clip(pb, 1e-9, 1))
        return LR.softmax(z)
    return run


def v_mtt_inset(C=0.03):
    """The previous default's in-set score (MSD + MTT tags on every 4th patch, train_real_head.py)
    beside the musicnn head's closed-set answer: the pass the AudioSet head may replace."""
    from train_real_head import inset_features, inset_probs

    base = v_msd()

    def run(D, fit_idx, held, cache):
        P = base(D, fit_idx, held, cache)
        key = ("mtt", C)
        if key not in cache:
            idx = [i for i in fit_idx if D["mtt"][i] is not None]
            X = np.stack([inset_features(D["msd"][i][:WINDOW], D["mtt"][i][:WINDOW]) for i in idx])
            cache[key] = LR.fit_logistic(X, np.array([D["y"][i] for i in idx]), C=C, n_classes=OTHER + 1)
        P = P.copy()
        P[:, OTHER] = [1 - inset_probs(cache[key], D["msd"][i], D["mtt"][i]) for i in held]
        return P
    return run


def v_late_zs(alpha=0.5, gamma=1.0, audio_only=False, C_mn=0.03, **mn_options):
    """The late mix, with mn04's zero-shot genre log-probabilities added (weight ``gamma``) to the
    ten genres' log-probabilities: the nearest genre moves, p(other) and so the in-set score stay."""
    base = v_late(alpha, C_mn=C_mn, audio_only=audio_only, **mn_options)

    def run(D, fit_idx, held, cache):
        P = base(D, fit_idx, held, cache)
        zs = np.stack([AS.zero_shot_logp(D["mn"][i], GENRES) for i in held])
        z = np.log(np.clip(P[:, :OTHER], 1e-12, 1)) + gamma * zs
        closed = LR.softmax(z)
        out = P.copy()
        out[:, :OTHER] = closed * (1 - P[:, OTHER:])
        return out
    return run


def zero_shot(D):
    y = np.array(D["y"])
    real = np.array([k == "real-in" for k in D["kind"]])
    idx = [AS.ZERO_SHOT_TEN[g] for g in GENRES]
    pred = np.array([int(np.argmax(D["mn"][i][idx])) for i in np.flatnonzero(real)])
    acc = float((pred == y[real]).mean())
    print(f"{'mn04 zero-shot (ten named classes)':34s} closed {acc:.3f}")
    return acc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=AF.DEFAULT_DATA)
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation and stop")
    ap.add_argument("--out", type=Path, default=None, help="head file to write (default: the committed one)")
    ap.add_argument("--explore", nargs="?", const="all", default=None,
                    help="compare every candidate (with --k-folds grouped folds: cheaper than one per source)")
    ap.add_argument("--k-folds", type=int, default=8, help="folds of whole sources for --explore (0: one per source)")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    D = collect(a.data)
    kinds = {k: D["kind"].count(k) for k in dict.fromkeys(D["kind"])}
    print(f"data: {kinds}; real-song sources: {len({g for g, k in zip(D['group'], D['kind'], strict=True) if k.startswith('real')})}")
    zero_shot(D)
    variants = {} if not a.explore else {"musicnn (MSD ms_lm)": v_msd(), "musicnn + MTT in-set (previous)": v_mtt_inset()}
    if a.explore == "gamma":  # the zero-shot weight (run it with --k-folds 0: one fold per source)
        for g in (0.5, 1.0, 2.0, 4.0):
            variants[f"musicnn + mn04 + zero-shot g={g}"] = v_late_zs(SHIP["alpha"], g, SHIP["audio_only"])
    elif a.explore == "weights":
        variants["zs0.5"] = v_late_zs(0.5, 0.5, True)
        variants["zs0.5 balanced"] = v_late_zs(0.5, 0.5, True, balanced=True)
        variants["zs0.5 real x2"] = v_late_zs(0.5, 0.5, True, real_weight=2.0)
        variants["zs0.5 real x3 balanced"] = v_late_zs(0.5, 0.5, True, real_weight=3.0, balanced=True)
        variants["zs0.5 C_mn 0.01"] = v_late_zs(0.5, 0.5, True, C_mn=0.01)
    elif a.explore == "zs":
        for g in (0.5, 1.0, 2.0):
            variants[f"late a=0.5 audio only + zs g={g}"] = v_late_zs(0.5, g, True)
            variants[f"late a=0.3 audio only + zs g={g}"] = v_late_zs(0.3, g, True)
        variants["late a=0.3 audio only"] = v_late(0.3, audio_only=True)
    elif a.explore:
        for kind in ("all", "logits", "emb", "genres", "music_emb"):
            variants[f"mn04 {kind} C=0.03"] = v_mn(0.03, kind)
        for C in (0.01, 0.1):
            variants[f"mn04 all C={C}"] = v_mn(C, "all")
        for alpha in (0.3, 0.5, 0.7):
            variants[f"late a={alpha}"] = v_late(alpha)
        variants["late a=0.5 audio only"] = v_late(0.5, audio_only=True)
        variants["musicnn audio only"] = v_msd(audio_only=True)
        variants["early (msd+mn04 all) C=0.03"] = v_mn(0.03, "all", True)
    else:
        variants.update(final_variants())
    results, oof = cross_validate(D, variants, a.k_folds if a.explore else 0)
    if a.cv_only:
        return 0
    return write_head(a, D, results, oof)


#: The shipped recipe, chosen by grouped CV among the candidates of ``--explore`` (their tables are in
#: docs/model_card.md): musicnn head on the tracks with audio, AudioSet head on mn04's logits +
#: embedding, mixed half and half on the log scale, mn04's zero-shot genre classes adding their vote
#: (weight 0.5) to the nearest genre.
SHIP = {"C_msd": 0.03, "C_mn": 0.03, "feature": "all", "alpha": 0.5, "gamma": 0.5, "audio_only": True,
        "balanced": False, "real_weight": 1.0}
SHIP_NAME = "shipped: musicnn + mn04 + zero-shot"


def shipped_variant():
    return v_late_zs(SHIP["alpha"], SHIP["gamma"], SHIP["audio_only"], C_mn=SHIP["C_mn"],
                     balanced=SHIP["balanced"], real_weight=SHIP["real_weight"])


def final_variants() -> dict:
    """What the model card's table compares by leave-one-source-out CV: each backbone alone, the
    previous default's in-set score, and the shipped mix."""
    return {"musicnn alone (all GTZAN)": v_msd(), "musicnn alone (tracks with audio)": v_msd(audio_only=True),
            "musicnn + MTT in-set (previous default)": v_mtt_inset(),
            "mn04 alone (AudioSet head)": v_mn(SHIP["C_mn"], SHIP["feature"], balanced=SHIP["balanced"],
                                               real_weight=SHIP["real_weight"]),
            "musicnn + mn04 (no zero-shot)": v_late(SHIP["alpha"], audio_only=SHIP["audio_only"], C_mn=SHIP["C_mn"],
                                                    balanced=SHIP["balanced"], real_weight=SHIP["real_weight"]),
            SHIP_NAME: shipped_variant()}


def write_head(a, D, results, oof) -> int:
    import json

    from train_real_head import segment_design

    from genrekit.models.default import HEAD_PATH
    from genrekit.models.modelfile import read_model_file, save_model_file

    y = np.array(D["y"])
    kind = np.array(D["kind"])
    group = np.array(D["group"])
    real = np.array([k.startswith("real") for k in kind])
    rin, rout = real & (y < OTHER), real & (y == OTHER)
    fit_idx = [i for i in range(len(y)) if kind[i] != "gtzan-test"]
    audio_idx = [i for i in fit_idx if D["mn"][i] is not None]
    # the same fits as the CV's, on every song
    held = np.flatnonzero(kind == "gtzan-test")
    cache: dict = {}
    P_test = shipped_variant()(D, fit_idx, held, cache)
    track = cache[("msd", SHIP["C_msd"], SHIP["audio_only"])]
    aset = cache[("mn", SHIP["C_mn"], SHIP["feature"], False, SHIP["balanced"], SHIP["real_weight"])]
    P = oof[SHIP_NAME]
    fused_t = pick_threshold(1 - P[rin, OTHER], 1 - P[rout, OTHER], MAX_FALSE_OTHER)
    Pm = oof["musicnn alone (tracks with audio)" if SHIP["audio_only"] else "musicnn alone (all GTZAN)"]
    msd_t = pick_threshold(1 - Pm[rin, OTHER], 1 - Pm[rout, OTHER], MAX_FALSE_OTHER)
    seg_idx = audio_idx if SHIP["audio_only"] else fit_idx
    Xs, Ys = segment_design([D["msd"][i] for i in seg_idx], y[seg_idx], np.random.default_rng(0))
    seg_open = LR.fit_logistic(Xs, Ys, C=SHIP["C_msd"], n_classes=OTHER + 1)

    # GTZAN test: the stored taggrams (290; the musicnn head alone) and the shared test clips from audio (all of it)
    test_tracks, y_test, _ = load_tracks(a.data / "gtzan-musicnn" / "msd_taggram_test.npz")
    Pt = np.stack([prob_msd(track, t[:, :N_TAGS]) for t in test_tracks])
    s_stored = scores(y_test, Pt[:, :OTHER].argmax(1), OTHER)
    s_audio = scores(y[held], P_test[:, :OTHER].argmax(1), OTHER)
    print(f"GTZAN test, stored taggrams (the musicnn head alone, n={s_stored['n']}): accuracy "
          f"{s_stored['accuracy']:.3f}, macro-F1 {s_stored['macro_f1']:.3f}")
    print(f"GTZAN test, the shared test clips from audio (the whole model, n={s_audio['n']}): accuracy "
          f"{s_audio['accuracy']:.3f}")

    old_t, old_meta = read_model_file(HEAD_PATH)
    tensors = {k: v.numpy() for k, v in old_t.items() if k.startswith("segment.")}
    tensors |= {f"track.m0.{k}": v for k, v in track.items()}
    tensors |= {f"open.m0.{k}": v for k, v in seg_open.items()}
    tensors |= {f"audioset.m0.{k}": v for k, v in aset.items()}
    meta = {k: v for k, v in old_meta.items() if k not in ("training", "metrics", "open_set", "audioset")}
    meta["feature_spec"] = dict(meta["feature_spec"], context_seconds=10.0, context_stride=10)
    meta["description"] = (
        "Two pretrained backbones: musicnn MSD_musicnn (Pons & Serra 2019; weights from the musicnn 0.1.0 wheel, ISC) "
        "per 3 s patch, and EfficientAT mn04_as (Schmid, Koutini & Widmer 2023; AudioSet; MIT) per 10 s window. "
        "Two logistic-regression heads over the ten GTZAN genres + 'other', mixed on the log scale, with mn04's "
        "zero-shot genre classes voting on the nearest genre; trained on GTZAN and real songs. Timeline segments: "
        "musicnn only.")
    meta["backbones"] = {"musicnn": "MSD_musicnn: ISC licence (musicnn 0.1.0 wheel, Pons & Serra)",
                         "audioset": "efficientat_mn04: MIT licence, Copyright (c) 2022 Florian Schmid"}
    meta["audioset"] = {"backbone": "efficientat_mn04", "window_seconds": 10.0, "patch_stride": 10,
                        "feature": SHIP["feature"], "alpha": SHIP["alpha"], "zero_shot_weight": SHIP["gamma"]}
    meta["open_set"] = {
        "other_label": "other", "segment_feature_kind": "ms_lm",
        "fused_threshold": fused_t, "track_threshold": msd_t, "segment_threshold": msd_t,
        "score": "in_set = 1 - p(other) of the mixed heads (of the musicnn head alone for stored taggrams and "
                 "timeline segments), recalibrated so that 0.5 is the threshold chosen by the grouped CV"}
    res = results[SHIP_NAME]
    counts = {k: int((kind[seg_idx] == k).sum()) for k in dict.fromkeys(kind[seg_idx])}
    meta["training"] = {
        "data": {"gtzan_clips_with_audio": counts.get("gtzan", 0) + counts.get("gtzan-audio", 0),
                 "gtzan_train_taggrams_without_audio": 0 if SHIP["audio_only"] else counts.get("gtzan", 0),
                 "real_songs_in_ten": int(rin.sum()), "real_songs_outside": int(rout.sum()),
                 "real_song_sources": len(set(group[real].tolist()))},
        "fit_files": [{"path": D["name"][i], "sha256": _sha256(a.data / "real-songs" / D["name"][i])}
                      for i in np.flatnonzero(real)],
        "config": {"model": "two StandardScaler + multinomial logistic regressions (lbfgs) mixed on the log scale",
                   "musicnn_features": "ms_lm of 29-patch windows", "audioset_features": SHIP["feature"],
                   "C": [SHIP["C_msd"], SHIP["C_mn"]], "alpha": SHIP["alpha"], "zero_shot_weight": SHIP["gamma"]},
        "cv_protocol": f"leave one real-song source_repo out ({res['folds']} folds); GTZAN always in the fit; "
                       "'other' thresholds chosen on the other folds",
        "script": "scripts/train_default_model.py",
    }
    cv = {name: {k: (list(v) if k == "ci" else v) for k, v in r.items() if k != "answer"}
          for name, r in results.items()}
    meta["metrics"] = {
        "test_track": {k: s_stored[k] for k in ("accuracy", "macro_f1", "n", "confusion")},
        "test_track_note": "stored MSD taggrams of the 290 fault-filtered test tracks: the musicnn head alone",
        "test_audio_clips": {k: s_audio[k] for k in ("accuracy", "macro_f1", "n", "confusion")},
        "real_songs_cv": {"closed_accuracy": res["closed_acc"], "closed_macro_f1": res["closed_f1"],
                          "closed_accuracy_ci95_over_sources": list(res["ci"]), "open_accuracy": res["open_acc"],
                          "other_caught": res["caught"], "in_ten_called_other": res["false_other"],
                          "auroc_other": res["auroc"], "confusion": res["confusion"],
                          "n_in_ten": int(rin.sum()), "n_outside": int(rout.sum()), "folds": res["folds"]},
        "real_songs_cv_variants": cv,
    }
    import torch

    out = HEAD_PATH if a.out is None else a.out
    save_model_file(out, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}, meta)
    print(f"wrote {out}")
    print(json.dumps(meta["metrics"]["real_songs_cv"]))
    return 0


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
