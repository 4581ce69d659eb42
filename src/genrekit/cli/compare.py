"""`genrekit compare`: train several model/feature pairs on one split and tabulate them.

    genrekit compare --data ../shared/data/gtzan-clips --splits ../shared/data/gtzan-splits \\
        --models fnn:mfcc,cnn:mel --out runs/compare

Each pair is trained exactly as `genrekit train` would (same options) into OUT/<arch>-<features>/;
OUT/comparison.md and OUT/comparison.json hold the table. With --second-view, every model is also
scored on val+test together: more tracks, but val chose the epoch, so it is a slightly optimistic
view and labelled as such.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> None:
    from genrekit.cli.train import add_data_args, add_train_args

    p = subparsers.add_parser("compare", help="train and compare models on one split",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="fnn:mfcc,cnn:mel",
                   help="comma-separated arch:features pairs (default fnn:mfcc,cnn:mel)")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--cnn-epochs", type=int, help="epochs for cnn models (default: --epochs or 30)")
    p.add_argument("--second-view", action="store_true", help="also score every model on val+test together")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run)


def _fmt(m: dict | None, key: str) -> str:
    return "–" if not m else f"{m[key]:.3f}"


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A GitHub Markdown table of rows (dicts) with (header, key) columns; dotted keys go deeper."""
    def get(r, k):
        v = r
        for part in k.split("."):
            v = v.get(part) if isinstance(v, dict) else None
            if v is None:
                return "–"
        if isinstance(v, float):
            return f"{v:.1f}" if k.endswith("seconds") else f"{v:.3g}" if k.endswith("lr") else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(get(r, k) for _, k in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def parse_models(text: str, default_features: str | None = None) -> list[tuple[str, str | None]]:
    """--models "fnn:mfcc,cnn:mel" -> [(arch, features)]; a pair without features takes
    --features (else the arch's default). Unknown names are a one-line error."""
    from genrekit.cli.train import FEATURE_KINDS
    from genrekit.errors import GenrekitError

    pairs = []
    for pair in (p.strip() for p in text.split(",")):
        arch, _, feats = pair.partition(":")
        if arch not in ("fnn", "cnn"):
            raise GenrekitError(f"--models {text}: unknown model {arch!r} in {pair!r}; use fnn or cnn")
        if feats and feats not in FEATURE_KINDS:
            raise GenrekitError(f"--models {text}: unknown features {feats!r} in {pair!r}; use "
                                f"{', '.join(FEATURE_KINDS)}")
        pairs.append((arch, feats or default_features))
    return pairs


def run(args) -> int:
    from genrekit.cli.train import check_options, load_bundle, model_config, train_config
    from genrekit.datasets import Split
    from genrekit.evaluation import summary
    from genrekit.models.modelfile import write_json_atomic, write_text_atomic
    from genrekit.training import evaluate_split, fit

    pairs = parse_models(args.models, args.features)  # all checked before the first model trains
    check_options(args, pairs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = (lambda *_: None) if args.quiet else print
    rows = []
    bundles: dict = {}
    for arch, feats in pairs:
        a = copy.copy(args)
        a.features = feats
        a.mel_only_overrides = True  # MFCC vectors keep the notebook's 1 s segments
        if arch == "cnn" and args.cnn_epochs:
            a.epochs = args.cnn_epochs
        key = (a.features or ("mel" if arch == "cnn" else "mfcc"))
        run_dir = out / f"{arch}-{key}"
        print(f"== {arch} on {key} features -> {run_dir}")  # before its data line, which belongs to it
        if key not in bundles:
            bundles[key] = load_bundle(a, arch, print)
        bundle = bundles[key]
        t0 = time.perf_counter()
        model, metrics = fit(bundle, model_config(a, arch), train_config(a, arch), run_dir, log=log)
        row = {"model": arch, "features": key, "input_shape": list(bundle.splits["train"].X.shape[1:]),
               "params": int(sum(p.numel() for p in model.net.parameters())),
               "tracks": bundle.track_counts(), "rows": {k: len(s) for k, s in bundle.splits.items()},
               "seconds": round(time.perf_counter() - t0, 1), **metrics}
        if args.second_view:
            va, te = bundle.splits["val"], bundle.splits["test"]
            both = Split(np.concatenate([va.X, te.X]), np.concatenate([va.y, te.y]),
                         np.concatenate([va.groups, te.groups]))
            ev = evaluate_split(model, both, bundle.labels)
            row["val+test"] = summary(ev["segment"])
            if "track" in ev:
                row["val+test_track"] = summary(ev["track"])
            elif bundle.unit == "track":  # one row per track: the segment scores are the track scores
                row["val+test_track"] = row["val+test"]
        rows.append(row)
        write_json_atomic(out / "comparison.json", rows)
    cols = [("model", "model"), ("features", "features"), ("params", "params"),
            ("test acc", "test.accuracy"), ("test F1", "test.macro_f1"),
            ("test track acc", "test_track.accuracy"), ("test track F1", "test_track.macro_f1"),
            ("val F1", "val.macro_f1"), ("best epoch", "best_epoch"), ("seconds", "seconds")]
    if args.second_view:
        cols += [("val+test track acc*", "val+test_track.accuracy"), ("val+test track F1*", "val+test_track.macro_f1")]
    md = markdown_table(rows, cols)
    t = rows[0]["tracks"]
    if t is None:  # rows without track ids (the notebook's arrays): segment metrics only
        r = rows[0]["rows"]
        md += f"\nSegments: train {r['train']}, val {r['val']}, test {r['test']} (the data hold no track ids).\n"
    else:
        md += (f"\nTracks: train {t['train']}, val {t['val']}, test {t['test']}. Segment metrics score every "
               "segment; track metrics average a track's segment probabilities.\n")
    if args.second_view:
        md += "\n\\* val chose the best epoch, so val+test is slightly optimistic; it is a second view, not a clean test.\n"
    write_text_atomic(out / "comparison.md", md)
    print(md)
    return 0
