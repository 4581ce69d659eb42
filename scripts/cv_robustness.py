"""How the default's head choices hold up: window-fitted vs track-fitted head, the timeline's
windows, a harsh MP3 copy of every held-out song, and musicnn on one patch per 10 s beside mn04.

    python scripts/cv_robustness.py [--data ../shared/data]

Same songs and protocol as ``scripts/train_default_model.py`` (GTZAN train/valid clips in every
fit, leave one of 56 real-song sources out, "other" thresholds chosen on the other folds, C 0.03,
zero-shot weight 1). Heads are fitted on the clean songs; the held-out songs are scored clean and
as an MP3 written by libsndfile's LAME at compression level 0.95 (about 27 kbit/s at 22.05 kHz
mono), the kind of copy a phone or an old download gives. Rows come from the training command's
embedding cache (extracted on first use; the MP3 copies live in a temporary folder). Prints one
line per variant: closed-set accuracy [95% over sources], macro-F1, "other" caught / false, AUROC.
On the MP3 copies each fold's "other" threshold is the one chosen on the clean songs of the other
folds (the shipped model's threshold is chosen on clean songs too).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "efficientat" / "mn04_as_mAP_432.pt"
if SHARED_WEIGHTS.is_file():
    os.environ.setdefault("GENREKIT_EFFICIENTAT_WEIGHTS", str(SHARED_WEIGHTS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    a = ap.parse_args(argv)
    import soundfile as sf
    from train_default_model import write_manifest

    from genrekit.audio import load_audio
    from genrekit.heads import logistic as LR
    from genrekit.heads import training as T
    from genrekit.heads.fusion import mix, zero_shot_vote
    from genrekit.models import audioset as AS
    from genrekit.models.default import N_TAGS, window_features

    with tempfile.TemporaryDirectory(prefix="genrekit-robust-") as tmp:
        man = Path(tmp) / "m.csv"
        write_manifest(a.data, man)
        ds = T.find_songs(None, str(man), None, True)
        quiet = lambda *_: None  # noqa: E731
        rows = {}
        for bb in ("mn04", "musicnn+mn04"):
            songs, entries = T.extract_all(ds.songs, T.EmbeddingCache(backbone=bb), quiet, False, None, bb)
            songs, entries = T.drop_duplicates(songs, entries, quiet)
            rows[bb] = ([str(s.path) for s in songs], [e["rows"] for e in entries])
        assert rows["mn04"][0] == rows["musicnn+mn04"][0], "the two extractions kept different songs"
        T.assign_groups(songs)
        labels = ds.labels
        n = len(labels) + 1
        y = np.array([(labels + ["other"]).index(s.label) for s in songs])
        groups = np.array([s.group for s in songs])
        fixed = np.array([T.group_name(s) == "gtzan" for s in songs])
        folds, _ = T.folds_for(groups, 0, fixed)

        mp3 = {"mn04": [], "musicnn+mn04": []}
        print(f"writing and extracting MP3 copies of {int((~fixed).sum())} held-out songs ...", flush=True)
        for i, s in enumerate(songs):
            if fixed[i]:
                mp3["mn04"].append(None)
                mp3["musicnn+mn04"].append(None)
                continue
            q = Path(tmp) / f"{i:04d}.mp3"
            sf.write(q, load_audio(s.path, 22050, mono=True), 22050, format="MP3", compression_level=0.95)
            for bb in mp3:
                mp3[bb].append(T.extract_rows(q, None, bb)["rows"])

    # the rows as `genrekit train` reads them (windows that ran, their means); the MP3 copies of
    # the GTZAN clips (always fitted, never scored) are their clean rows
    F = T.song_features([{"rows": r} for r in rows["mn04"][1]], "mn04")
    Fd = T.song_features([{"rows": c if r is None else r} for c, r in zip(rows["mn04"][1], mp3["mn04"], strict=True)],
                         "mn04")
    Wc = [AS.head_features(w, "all") for w in F.windows]
    Mc, Md = F.mean, Fd.mean
    zc, zd = AS.zero_shot_logp(Mc, labels), AS.zero_shot_logp(Md, labels)
    tags_c = [r[:, :N_TAGS] for r in rows["musicnn+mn04"][1]]
    tags_d = [tags_c[i] if r is None else r[:, :N_TAGS] for i, r in enumerate(mp3["musicnn+mn04"])]
    # musicnn's patches are 1 s apart: every 10th is one 3 s patch per 10 s, at the mn04 windows' starts
    Xm_c = np.stack([window_features(t[::10], "ms_lm") for t in tags_c])
    Xm_d = np.stack([window_features(t[::10], "ms_lm") for t in tags_d])

    def report(name, P, clean=None):
        """One line; with ``clean`` (the same model's clean probabilities) the 'other' answers of
        ``P`` use each fold's threshold chosen on the clean scores of the other folds, as the
        shipped model's threshold was chosen on clean songs."""
        from genrekit.heads.openset import pick_threshold
        from genrekit.heads.validation import auroc

        r = T.evaluate_oof(P, y, groups, len(labels), folds, 0.13, True, ~fixed)
        c = r["cv"]
        lo, hi = c["accuracy_ci95_over_groups"]
        tail = ""
        if P[:, -1].any():
            caught, false = r["other_caught"], r["in_set_called_other"]
            if clean is not None:
                ins, outs = (y < len(labels)) & ~fixed, (y == len(labels)) & ~fixed
                called = np.zeros(len(y), bool)
                for _, _, held in folds:
                    rest = np.ones(len(y), bool)
                    rest[held] = False
                    t = pick_threshold(1 - clean[rest & ins, -1], 1 - clean[rest & outs, -1], 0.13)
                    called[held] = 1 - P[held, -1] < t
                caught, false = called[outs].mean(), called[ins].mean()
            tail = f" | other {caught:.1%} / {false:.1%}, AUROC {r['auroc_other']:.3f}"
            assert abs(r["auroc_other"] - auroc(P[(y == len(labels)) & ~fixed, -1],
                                                P[(y < len(labels)) & ~fixed, -1])) < 1e-9
        print(f"{name:44s} accuracy {c['accuracy']:.3f} [{lo:.2f}-{hi:.2f}]  macro-F1 {c['macro_f1']:.3f}{tail}",
              flush=True)

    def fit(fit_idx, per_window):
        if per_window:  # the shipped fit
            return T.fit_window_head(F, y, fit_idx, 0.03, n, balanced=False)
        return T._fit_lr(Mc[fit_idx], y[fit_idx], 0.03, n, None, False)

    out = {}
    for per_window in (False, True):
        Pc, Pd = np.full((len(y), n), np.nan), np.full((len(y), n), np.nan)
        right = []
        for _, fit_idx, held in folds:
            h = fit(fit_idx, per_window)
            Pc[held], Pd[held] = LR.probs(h, Mc[held]), LR.probs(h, Md[held])
            for i in held[y[held] < len(labels)]:  # the timeline: each window of a held-out song alone
                pw = zero_shot_vote(LR.probs(h, Wc[i]), len(labels), AS.zero_shot_logp(Wc[i], labels), 1.0)
                right += list(pw[:, : len(labels)].argmax(1) == y[i])
        name = "head fitted on windows (the default)" if per_window else "head fitted on track means"
        out[per_window] = (Pc, Pd)
        report(f"{name}, clean", zero_shot_vote(Pc, len(labels), zc, 1.0))
        report(f"{name}, MP3", zero_shot_vote(Pd, len(labels), zd, 1.0), Pc)
        print(f"  timeline: {np.mean(right):.3f} of {len(right)} windows of held-out songs right (closed set)")
    none = np.zeros((len(y), 1))
    report("mn04 zero-shot, clean", np.hstack([np.exp(zc), none]))
    report("mn04 zero-shot, MP3", np.hstack([np.exp(zd), none]))
    Pm_c, Pm_d = np.full((len(y), n), np.nan), np.full((len(y), n), np.nan)
    for _, fit_idx, held in folds:
        h = T._fit_lr(Xm_c[fit_idx], y[fit_idx], 0.03, n, None, False)
        Pm_c[held], Pm_d[held] = LR.probs(h, Xm_c[held]), LR.probs(h, Xm_d[held])
    report("musicnn head, one patch per 10 s, clean", Pm_c)
    report("musicnn head, one patch per 10 s, MP3", Pm_d, Pm_c)
    Pc, Pd = out[True]
    report("fused (musicnn + default, 0.5 / 0.5 + vote 0.5), clean", mix(Pm_c, Pc, 0.5, len(labels), zc, 0.5))
    report("fused (musicnn + default, 0.5 / 0.5 + vote 0.5), MP3", mix(Pm_d, Pd, 0.5, len(labels), zd, 0.5),
           mix(Pm_c, Pc, 0.5, len(labels), zc, 0.5))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
