"""The default model from real audio, end to end: the shared GTZAN clips of the fault-filtered
valid and test lists (60 + 14 = 74 clips) through genrekit's own decoder, resampler, log-mel
front end, PyTorch musicnn and the committed head.

    python scripts/eval_default_audio.py [--data ../shared/data] [--json out.json]
    python scripts/eval_default_audio.py --spread
    python scripts/eval_default_audio.py --mfcc-check

``--spread`` measures how much this 74-clip number moves with choices that carry no information
about genre: the track head on every patch (1 s apart, the default) and on every 2nd / 3rd patch
from each starting offset (one backbone pass per clip; the subsets are slices of it), plus a
bootstrap 95% interval over clips, one over artist-proxy blocks (ten neighbouring file numbers:
clips of one artist are not independent) and exact McNemar tests against every-patch. Analysis only:
nothing is selected from it.

``--mfcc-check`` compares the track head's MFCC features computed from the audio with those of
the whole-clip statistics in ``gtzan-features/features_30_sec.csv`` (what the head was trained
on), and the predictions with either.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def shared_clips(data: Path, lists: list[str]) -> list[tuple[str, str, Path]]:
    """(list name, 'genre/genre.000NN', path) of every shared clip named in the split lists."""
    from genrekit.datasets import DatasetError, clip_by_stem

    rows = []
    for lst in lists:
        for line in (data / "gtzan-splits" / f"{lst}_filtered.txt").read_text().split():
            stem = line.rsplit(".", 1)[0]
            try:
                rows.append((lst, stem, clip_by_stem(data / "gtzan-clips", stem)))
            except DatasetError:
                pass
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--lists", default="valid,test")
    ap.add_argument("--model", default=None,
                    help="a musicnn head file (e.g. one written by train_default_head.py --out); default: the default model")
    ap.add_argument("--patch-hop", type=int, default=None,
                    help="patch hop in frames (default: the model's own, 61, as in the stored taggrams)")
    ap.add_argument("--classifier", action="store_true",
                    help="go through Classifier.predict (streamed decoding and resampling, what `genrekit predict` runs)")
    ap.add_argument("--spread", action="store_true",
                    help="accuracy on every patch and on every 2nd / 3rd patch from each offset, bootstrap CI, McNemar")
    ap.add_argument("--mfcc-check", action="store_true",
                    help="MFCC statistics from the audio vs the features_30_sec.csv table, and the predictions with each")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.audio import load_audio
    from genrekit.models.base import load_model

    data = Path(args.data)
    model = load_model(args.model)
    if args.patch_hop:
        import dataclasses

        model.spec = dataclasses.replace(model.spec, patch_hop_frames=args.patch_hop)
    rows = shared_clips(data, args.lists.split(","))
    results = []
    t0 = time.perf_counter()
    clf = None
    if args.classifier:
        from genrekit.prediction import Classifier

        clf = Classifier(model)
    if args.spread:
        return spread(model, rows, load_audio)
    if args.mfcc_check:
        return mfcc_check(model, rows, load_audio, data)
    for lst, stem, p in rows:
        if clf is not None:
            pred = clf.predict(p)
            label, conf = pred.genre, pred.confidence
        else:
            probs = model.track_probs(model.features(load_audio(p, model.spec.sample_rate)).values)
            label, conf = model.labels[int(np.argmax(probs))], float(np.max(probs))
        truth = stem.split("/")[0]
        results.append({"list": lst, "clip": stem, "truth": truth, "pred": label, "confidence": conf})
    acc = float(np.mean([r["truth"] == r["pred"] for r in results]))
    by_list = {lst: float(np.mean([r["truth"] == r["pred"] for r in results if r["list"] == lst]))
               for lst in args.lists.split(",")}
    print(f"default model from audio: {len(results)} clips, accuracy {acc:.4f} "
          + " ".join(f"{k}={v:.4f}" for k, v in by_list.items()) + f" [{time.perf_counter() - t0:.0f}s]")
    for r in results:
        if r["truth"] != r["pred"]:
            print(f"  wrong: {r['clip']} -> {r['pred']} ({r['confidence']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"accuracy": acc, "by_list": by_list, "clips": results}, indent=1))
    return 0


def mfcc_check(model, rows, load_audio, data: Path) -> int:
    """See the module docstring (``--mfcc-check``)."""
    from genrekit.datasets import read_clip_mfcc_table
    from genrekit.models.default import N_TAGS, clip_mfcc_rows, window_features

    if not getattr(model, "needs_mfcc_stats", False):
        print("this model's heads read no MFCC statistics")
        return 1
    table = read_clip_mfcc_table(data / "gtzan-features" / "features_30_sec.csv")
    d_mean, d_logvar, same, right_audio, right_table, frames_equal = [], [], 0, 0, 0, 0
    for _lst, stem, p in rows:
        rows_a = model.patch_rows(model.features(load_audio(p, model.spec.sample_rate)).values)
        mean, var, n_frames = table[Path(stem).name]
        rows_t = rows_a.copy()
        rows_t[:, N_TAGS:] = clip_mfcc_rows(len(rows_a), mean, var, n_frames)
        fa, ft = window_features(rows_a, "ms_mfcc"), window_features(rows_t, "ms_mfcc")
        d_mean.append(float(np.abs(fa - ft)[100:120].max()))
        d_logvar.append(float(np.abs(fa - ft)[120:140].max()))
        frames_equal += int(round(float(rows_a[:, N_TAGS].sum()))) == n_frames
        pa = int(np.argmax(model.track_probs_from_taggram(rows_a)))
        pt = int(np.argmax(model.track_probs_from_taggram(rows_t)))
        truth = stem.split("/")[0]
        same += pa == pt
        right_audio += model.labels[pa] == truth
        right_table += model.labels[pt] == truth
    n = len(rows)
    print(f"{n} clips: MFCC features from the audio vs the table: max abs difference of the means "
          f"{max(d_mean):.2g}, of the log variances {max(d_logvar):.2g}; frame counts equal on {frames_equal}")
    print(f"  predictions the same on {same}/{n}; right with audio MFCCs {right_audio}/{n}, "
          f"with the table's {right_table}/{n}")
    return 0


def artist_block(stem: str) -> str:
    """'country/country.00004' -> 'country 00-09': GTZAN stores an artist's songs under neighbouring
    file numbers, so blocks of ten stand in for artists (as in train_default_head.groups_of)."""
    genre, number = stem.split("/")[0], int(stem.rsplit(".", 1)[1])
    lo = number // 10 * 10
    return f"{genre} {lo:02d}-{lo + 9:02d}"


def _mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b vs c discordant pairs (binomial, p = 1/2)."""
    from math import comb

    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def spread(model, rows, load_audio) -> int:
    """See the module docstring (``--spread``)."""
    spec = model.spec
    subsets = {"every patch (1 s apart)": (1, 0)} | {f"every 2nd, offset {o}": (2, o) for o in range(2)} \
        | {f"every 3rd, offset {o}": (3, o) for o in range(3)}
    right = {k: [] for k in subsets}
    for _lst, stem, p in rows:
        tags = model.patch_rows(model.features(load_audio(p, spec.sample_rate)).values)
        truth = stem.split("/")[0]
        for k, (step, off) in subsets.items():
            sub = tags[off::step] if len(tags) > off else tags
            right[k].append(model.labels[int(np.argmax(model.track_probs_from_taggram(sub)))] == truth)
    base = np.array(right["every patch (1 s apart)"])
    rng = np.random.default_rng(0)
    boot = base[rng.integers(0, len(base), (10000, len(base)))].mean(1)
    print(f"{len(base)} clips; every patch: {base.sum()}/{len(base)} = {base.mean():.4f}, bootstrap 95% interval "
          f"{np.quantile(boot, 0.025):.3f}-{np.quantile(boot, 0.975):.3f}")
    # clips of one artist are not independent: resample whole artist-proxy blocks instead
    blocks = [artist_block(stem) for _lst, stem, _p in rows]
    names = sorted(set(blocks))
    members = [np.flatnonzero(np.array(blocks) == b) for b in names]
    draws = rng.integers(0, len(names), (10000, len(names)))
    block_boot = np.array([base[np.concatenate([members[j] for j in d])].mean() for d in draws])
    print(f"  artist-proxy blocks: {len(names)}; block bootstrap 95% interval "
          f"{np.quantile(block_boot, 0.025):.3f}-{np.quantile(block_boot, 0.975):.3f}; blocks with errors: "
          + ", ".join(f"{b} {int((~base[m]).sum())}/{len(m)}" for b, m in zip(names, members, strict=True)
                      if (~base[m]).any()))
    for k, r in right.items():
        r = np.array(r)
        b, c = int((base & ~r).sum()), int((~base & r).sum())
        print(f"  {k:26s} {r.sum():3d}/{len(r)} = {r.mean():.4f}   vs every patch: +{c} -{b}, McNemar p = {_mcnemar_p(b, c):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
