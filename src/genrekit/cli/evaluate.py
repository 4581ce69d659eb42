"""`genrekit evaluate`: score a trained (or the default) model on a labelled dataset.

    genrekit evaluate --model runs/fnn --data ../shared/data/seed-mfcc --out runs/fnn-eval
    genrekit evaluate --model musicnn --data ../shared/data/gtzan-musicnn/msd_taggram_test.npz --out OUT
    genrekit evaluate --model M --manifest songs.csv --out OUT

Without split lists, a single table / taggram file / audio folder is scored as a whole; with
--splits (or a pre-split dataset) --split picks which part (default test). Writes OUT/metrics.json
(accuracy / macro-F1 at segment and track level, under the name of the split scored: "test" and
"test_track", or "val" and "val_track", ...), full per-class metrics and confusion PNGs.

With --manifest the exit code is 1 when any song failed (the metrics of the others are still
written), as for `genrekit predict`.

Stored taggrams hold musicnn's tags only, so they feed models over musicnn (``--model musicnn``),
not the default (mn04 from audio: evaluate it on audio or --manifest). A head that also reads each
clip's MFCC mean and variance gets them from a features table (--mfcc-table; in the shared data
layout it is found beside the taggram folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from genrekit.cli.argtypes import non_negative_int


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score a model on a labelled dataset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default", help="model file / training folder, or a built-in: 'default' or 'musicnn'")
    p.add_argument("--data", help="audio folder, features .csv, notebook arrays folder or taggram .npz")
    p.add_argument("--splits", help="folder with {train,valid,test}_filtered.txt split lists")
    p.add_argument("--split", choices=("train", "val", "test", "all"), default="test",
                   help="which part to score when the data has splits (--splits, or pre-split data); default test")
    p.add_argument("--manifest", help="CSV of (input, genre) rows to evaluate instead of --data; warns when "
                   "songs in it are in the model's own fit (in-sample)")
    p.add_argument("--mfcc-table", help="features_30_sec.csv-style table of whole-clip MFCC statistics, for "
                   "models whose head reads them (the default) when --data holds stored taggrams; default: "
                   "../gtzan-features/features_30_sec.csv beside the taggram file's folder")
    p.add_argument("--workers", type=non_negative_int, default=0, metavar="N",
                   help="processes extracting features from an audio folder (0: one per CPU, at most 8; 1: this process)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the on-disk feature cache (~/.cache/genrekit or GENREKIT_CACHE_DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress bar while features are extracted (--data)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for metrics.json, confusion matrices (JSON and PNG) and, with --manifest, "
                   "report.md and timelines")
    p.set_defaults(func=run)


def _columns_for(model) -> str:
    spec = getattr(model, "spec_dict", None) or (model.spec.to_dict() if model.spec is not None else {})
    return "all" if spec.get("kind") == "table" else "mfcc"


def load_for_model(model, data, splits=None, workers=0, use_cache=True, progress=True):
    """The dataset as the model needs it: its feature spec for audio folders, and every row in
    'test' when the data has no split of its own."""
    from genrekit.datasets import detect_kind, load_data
    from genrekit.prediction import reads_audio_or_raise

    kind = detect_kind(data)
    presplit = splits is not None or kind == "arrays" or (kind == "taggram" and Path(data).is_dir())
    frac = {} if presplit else {"val_fraction": 0.0, "test_fraction": 1.0}
    if kind == "audio":
        reads_audio_or_raise(model, data)
    return load_data(data, splits, model.spec if kind == "audio" else None, columns=_columns_for(model),
                     workers=workers, use_cache=use_cache, progress=progress, **frac)


def _with_mfcc(split, data, table_path):
    """The split's taggram rows with each track's whole-clip MFCC statistics attached."""
    from genrekit.datasets import SIBLING_MFCC_TABLE, Split, attach_clip_mfcc, read_clip_mfcc_table
    from genrekit.errors import GenrekitError

    data = Path(data)
    path = Path(table_path) if table_path else (data.parent if data.is_file() else data) / SIBLING_MFCC_TABLE
    if not path.exists():
        raise GenrekitError(f"{data}: this model's track head needs each clip's MFCC statistics, and stored "
                            f"taggrams have none; no table at {path} (pass --mfcc-table features_30_sec.csv)")
    X = attach_clip_mfcc(split.X, split.groups, read_clip_mfcc_table(path), source=data)
    return Split(X, split.y, split.groups)


def evaluate_model_on(model, split, data_labels: list[str], taggrams: bool = False) -> dict:
    """Metrics of any GenreModel on a Split, in the model's label order.

    Probabilities are computed track by track with model.segment_probs / model.track_probs, so
    models whose track decision is not a plain mean of segments (the musicnn head) score right.
    With taggrams=True, a model that reads audio but offers *_from_taggram methods (the default
    musicnn model) is fed the precomputed taggrams directly.
    """
    from genrekit.errors import GenrekitError
    from genrekit.evaluation import classification_metrics

    labels = list(model.labels)
    missing = sorted({data_labels[i] for i in np.unique(split.y)} - set(labels))
    if missing:
        raise GenrekitError(f"data has labels the model does not know: {', '.join(missing)}")
    y = np.array([labels.index(data_labels[i]) for i in split.y], dtype=np.int64)
    groups = split.groups
    ids, first = np.unique(groups, return_index=True)
    order = np.argsort(first)
    seg_fn, track_fn = model.segment_probs, model.track_probs
    if taggrams and hasattr(model, "track_probs_from_taggram"):
        seg_fn, track_fn = model.segment_probs_from_taggram, model.track_probs_from_taggram
    seg_probs = np.zeros((len(y), len(labels)), np.float32)
    track_p, track_y = [], []
    # open-set models (an "other" answer below a threshold): the track scores with "other" counted wrong
    threshold = getattr(model, "open_threshold", None) if taggrams else None
    in_set: list[float] = []
    for tid in ids[order]:
        rows = np.flatnonzero(groups == tid)
        values = split.X[rows]
        seg_probs[rows] = seg_fn(values)
        track_p.append(track_fn(values))
        track_y.append(y[rows[0]])
        if threshold is not None:
            in_set.append(model.in_set_from_taggram(values))
    out = {"segment": classification_metrics(y, seg_probs.argmax(1), labels)}
    if len(ids) < len(y):
        out["track"] = classification_metrics(np.array(track_y), np.array(track_p).argmax(1), labels)
        if threshold is not None:
            other = len(labels)  # an extra column: the "other" answer, never a true label here
            pred = np.where(np.array(in_set) < threshold, other, np.array(track_p).argmax(1))
            out["track_open_set"] = classification_metrics(np.array(track_y), pred, [*labels, "other"])
    return out


def run(args) -> int:
    from genrekit.errors import GenrekitError
    from genrekit.evaluation import summary, write_metrics
    from genrekit.models.base import load_model
    from genrekit.models.modelfile import write_json_atomic

    out = Path(args.out)
    if args.manifest:
        if args.data:
            raise GenrekitError(f"{args.data}: --data cannot be used with --manifest (the manifest lists the "
                                "songs to score); give one of them")
        from genrekit.manifest import evaluate_manifest
        from genrekit.prediction import Classifier

        # Classifier.load refuses table-only models up front, naming the model as given
        result = evaluate_manifest(Classifier.load(args.model), args.manifest, out)
        return 1 if result["n_failed"] else 0
    model = load_model(args.model)
    if not args.data:
        raise GenrekitError("evaluate needs --data or --manifest")
    from genrekit.cli.train import report_bundle

    bundle = load_for_model(model, args.data, args.splits, args.workers, not args.no_cache, not args.quiet)
    if bundle.kind == "taggram" and getattr(model.spec, "kind", "") == "audioset_windows":
        raise GenrekitError(f"{args.data}: stored taggrams hold musicnn's MSD tags; model {str(args.model)!r} reads "
                            "mn04's outputs from audio (evaluate it on an audio folder or --manifest, or use "
                            "--model musicnn for the taggrams)")
    report_bundle(bundle)
    if args.split == "all":
        from genrekit.datasets import Split

        parts = [s for s in bundle.splits.values() if len(s)]
        split = Split(np.concatenate([s.X for s in parts]), np.concatenate([s.y for s in parts]),
                      np.concatenate([s.groups for s in parts]))
    else:
        split = bundle.splits[args.split]
    if len(split) == 0:
        raise GenrekitError(f"{args.data}: the {args.split} split is empty")
    if bundle.kind == "taggram" and getattr(model, "needs_mfcc_stats", False):
        split = _with_mfcc(split, args.data, args.mfcc_table)
    ev = evaluate_model_on(model, split, bundle.labels, taggrams=bundle.kind == "taggram")
    name = args.split  # scores are named by the split they measure: val scores must not read as test scores
    metrics = {"model": str(args.model), "data": str(args.data), "split": args.split, "unit": bundle.unit,
               name: summary(ev["segment"])}
    write_metrics(ev["segment"], out, f"{name}_metrics")
    if "track" in ev:
        metrics[f"{name}_track"] = summary(ev["track"])
        write_metrics(ev["track"], out, f"{name}_track_metrics")
        if "track_open_set" in ev:  # "other" answers count as wrong
            metrics[f"{name}_track_open_set"] = summary(ev["track_open_set"])
            write_metrics(ev["track_open_set"], out, f"{name}_track_open_set_metrics")
    elif bundle.unit == "track":
        metrics[f"{name}_track"] = metrics[name]
    if bundle.notes:  # e.g. "no split lists: every track is scored" -- then "test" means every track of --data
        metrics["notes"] = list(bundle.notes)
    metrics["skipped"] = bundle.skipped
    write_json_atomic(out / "metrics.json", metrics)
    for k in (name, f"{name}_track", f"{name}_track_open_set"):
        if k in metrics:
            print(f"{k:10s} accuracy {metrics[k]['accuracy']:.4f}  macro-F1 {metrics[k]['macro_f1']:.4f}  (n={metrics[k]['n']})")
    return 0
