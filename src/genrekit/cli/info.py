"""`genrekit info`: what a model file holds, read from its header alone.

    genrekit info                      # the default model
    genrekit info runs/cnn             # a training folder or model file
    genrekit info runs/cnn --json      # the whole metadata, for scripts

Prints the labels, the feature settings applied at prediction (sample rate, mono mix-down,
front end), the architecture or head, the training data and the stored metrics (for the default
model: GTZAN's test split and the real-song cross-validation), so a user can tell which model a
number came from and what it expects. The file's checksum is verified first (its tensors are read
as plain numbers, never as code): a damaged file is one error line and exit 1, never shown as
if it were healthy.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("info", help="show what a model file holds: labels, features, metrics",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default="default", help="model file / training folder, or a built-in: 'default' (mn04), 'musicnn' (two backbones)")
    p.add_argument("--json", action="store_true", help="print the whole metadata as JSON")
    p.add_argument("--confusion", action="store_true", help="also print stored confusion matrices")
    p.set_defaults(func=run)
    return p


def summary(ref: str = "default") -> dict[str, Any]:
    """The model's metadata plus file facts (path, bytes, tensors, parameters, checksum state).

    The tensors are read and checked against the checksum saved with them, so ``info`` never
    vouches for a damaged file; every way a file can be broken is one :class:`ModelFileError`."""
    import numpy as np

    from genrekit.errors import ModelFileError
    from genrekit.models.base import model_path
    from genrekit.models.modelfile import DIGEST_KEY, read_model_file

    path = model_path(ref)
    try:
        tensors, meta = read_model_file(path)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            digest = (f.metadata() or {}).get(DIGEST_KEY)
        size = path.stat().st_size
    except ModelFileError:
        raise
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # whatever a damaged file makes a reader raise: one line naming it
        from genrekit.errors import one_line

        raise ModelFileError(f"{path}: damaged model file ({one_line(exc, 160)})") from None
    # every stored number (weights, normalisation statistics, BatchNorm running stats), not only trainable ones
    return {"path": str(path), "bytes": size, "tensors": len(tensors),
            "values": int(sum(int(np.prod(tuple(t.shape))) for t in tensors.values())),
            "checksum": "verified" if digest else "none stored (written before checksums)", "meta": meta}


def _scores(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(name, scores) of every nested metrics entry holding an accuracy."""
    out = []
    for k, v in metrics.items():
        if isinstance(v, dict):
            if "accuracy" in v:
                out.append((prefix + k, v))
            else:
                out += _scores(v, f"{prefix}{k}.")
    return out


def _spec_line(spec: dict[str, Any]) -> str:
    if spec.get("kind") == "table":
        names = spec.get("feature_names") or []
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        return (f"a precomputed table of {len(names)} columns ({shown}); this model cannot read audio"
                if names else "a precomputed table; this model cannot read audio")
    rest = ", ".join(f"{k} {v}" for k, v in spec.items() if k not in ("kind", "sample_rate", "mono"))
    mono = "mono" if spec.get("mono", True) else "channels kept"
    return f"{spec.get('kind', '?')}: {spec.get('sample_rate', '?')} Hz, {mono}" + (f"; {rest}" if rest else "")


def confusion_lines(labels: list[str], matrix: list[list[int]]) -> list[str]:
    """The matrix as text with a header naming the predicted genre of each column.

    Columns are as wide as the longest count or the labels cut to 5 characters (``class``,
    ``hipho``), unless that makes two labels alike; then the full labels set the width."""
    counts = [str(int(c)) for row in matrix for c in row]
    short = [lab[:5] for lab in labels]
    heads = short if len(set(short)) == len(short) else list(labels)
    col = max([4] + [len(c) for c in counts] + [len(h) for h in heads])
    corner = "true \\ pred"
    width = max([len(corner)] + [len(x) for x in labels])
    out = [f"  {corner:{width}s} " + " ".join(f"{h:>{col}s}" for h in heads)]
    out += [f"  {lab:{width}s} " + " ".join(f"{int(c):{col}d}" for c in row)
            for lab, row in zip(labels, matrix, strict=False)]
    return out


#: How the training-data counts of a head's record read for people.
_DATA_WORDS = {
    "gtzan_train_taggrams": "GTZAN train-split tracks (stored taggrams)",
    "gtzan_audio_not_in_train_or_test": "GTZAN clips outside the train and test lists",
    "real_songs_in_ten": "real songs in the ten genres",
    "real_songs_outside": "real songs outside them (as 'other')",
    "gtzan_clips_with_audio": "GTZAN clips with audio (train and validation lists)",
    "gtzan_train_taggrams_without_audio": "GTZAN train-split tracks known only by stored taggrams",
    "real_song_sources": "sources of real songs (the CV groups)",
}


def _head_lines(t: dict[str, Any]) -> list[str]:
    """The head and its training data, in words (the record is a dict of counts and settings)."""
    cfg = t.get("config") or {}
    head = cfg.get("model") or cfg.get("name")
    extras = [f"{k.replace('_', ' ')} {v}" for k, v in cfg.items() if k not in ("model", "name")]
    out = []
    if head or extras:
        out.append("head:        " + ", ".join([str(head)] * bool(head) + extras))
    data = t.get("data")
    if isinstance(data, dict) and data:
        parts = [f"{v} {_DATA_WORDS.get(k, k.replace('_', ' '))}" for k, v in data.items()]
        out.append("training:    " + "; ".join(parts))
    elif data:
        out.append(f"training:    {data}")
    if t.get("script"):
        out.append(f"made by:     {t['script']}" + (f" ({t['cv_protocol']})" if t.get("cv_protocol") else ""))
    return out


def _user_head_lines(meta: dict[str, Any]) -> list[str]:
    """A head trained by ``genrekit train --model head``: what it learnt from and how sure its
    grouped CV is (accuracy with its interval over groups, macro-F1, the open set's rates)."""
    t, m = meta["training"], meta.get("metrics") or {}
    d = t.get("data") or {}
    per = ", ".join(f"{k} {v}" for k, v in (d.get("per_label") or {}).items())
    by = ", ".join(f"{v} by {k}" for k, v in (d.get("groups_by") or {}).items())
    cfg = t.get("config") or {}
    fixed = ", ".join(f"{v} songs of {k}" for k, v in (d.get("always_in_fit") or {}).items())
    zs = f", zero-shot weight {cfg['zero_shot_weight']}" if cfg.get("zero_shot_weight") else ""
    out = [f"trained on:  {t.get('source', '?')}: {per} songs; {d.get('groups', '?')} groups ({by})"
           + (f"; always in the fit: {fixed}" if fixed else ""),
           f"head:        {cfg.get('model', '?')}; C {cfg.get('C')}"
           + (" (chosen by grouped CV)" if len(m.get("cv_by_C") or {}) > 1 else "")
           + (f", alpha {cfg['alpha']}" if cfg.get("alpha") is not None else "") + zs
           + (f"; backbone {cfg['backbone']}" if cfg.get("backbone") else "")]
    cv = m.get("cv")
    if not isinstance(cv, dict):
        out.append(f"grouped CV:  none ({t.get('cv_protocol') or 'not run'})")
        return out
    lo, hi = cv.get("accuracy_ci95_over_groups") or (float("nan"), float("nan"))
    out.append(f"grouped CV:  accuracy {cv['accuracy']:.3f} (95% interval over groups {lo:.2f}-{hi:.2f}), "
               f"macro-F1 {cv['macro_f1']:.3f}, {cv['n']} songs; {t.get('cv_protocol', '')}")
    if "other_caught" in m:
        ci = {k: m.get(f"{k}_ci95_over_groups") for k in ("other_caught", "in_set_called_other")}
        iv = {k: f" [{v[0]:.0%}-{v[1]:.0%}]" if isinstance(v, list) and len(v) == 2 else "" for k, v in ci.items()}
        out.append(f"open set:    {m['other_caught']:.1%}{iv['other_caught']} of songs outside the labels answered "
                   f"'other', {m['in_set_called_other']:.1%}{iv['in_set_called_other']} of the labels' songs wrongly so "
                   "(thresholds chosen on the other folds; 95% over groups)"
                   + (f"; AUROC {m['auroc_other']:.3f}" if isinstance(m.get("auroc_other"), float) else ""))
    parts = m.get("cv_components")
    if isinstance(parts, dict) and parts:
        out.append("grouped CV of the model and its parts (same folds): accuracy [95% over groups], macro-F1"
                   + ("; 'other' caught / inside called 'other'" if "other_caught" in m else ""))
        for name, r in parts.items():
            ci = r.get("accuracy_ci95_over_groups") or (float("nan"), float("nan"))
            line = f"  {name:36s} {r['accuracy']:.3f} [{ci[0]:.2f}-{ci[1]:.2f}], {r['macro_f1']:.3f}"
            if "other_caught" in r:
                line += f"; {r['other_caught']:.1%} / {r['in_set_called_other']:.1%}"
            out.append(line)
    if isinstance(m.get("test_track"), dict):
        g = m["test_track"]
        out.append(f"GTZAN test:  {g.get('n', '?')} tracks of the fault-filtered test split, accuracy {g['accuracy']:.3f}, "
                   f"macro-F1 {g.get('macro_f1', float('nan')):.3f}" + (f" ({m['test_track_note']})" if m.get("test_track_note") else ""))
    if isinstance(m.get("test_audio_clips"), dict):
        a = m["test_audio_clips"]
        lead = "             " if isinstance(m.get("test_track"), dict) else "GTZAN test:  "
        out.append(f"{lead}the {a.get('n', '?')} test clips with audio in shared data (the whole model): "
                   f"accuracy {a['accuracy']:.3f}")
    return out


def _default_metric_lines(metrics: dict[str, Any], real: dict[str, Any], training: dict[str, Any]) -> list[str]:
    """GTZAN's held-out split and the real-song grouped CV side by side: the second is what a
    user's music is more like."""
    g = metrics["test_track"]
    folds = real.get("folds") or (training.get("cv") or {}).get("folds")
    n_real = real.get("n_in_ten") or ((training.get("cv") or {}).get("real_in_closed") or {}).get("n")
    out = ["held-out figures:",
           f"  GTZAN test split ({g.get('n', '?')} tracks):   closed set accuracy {g['accuracy']:.3f}, "
           f"macro-F1 {g.get('macro_f1', float('nan')):.3f}"
           + (f"; open set {metrics['test_track_open_set_accuracy']:.3f}"
              if isinstance(metrics.get("test_track_open_set_accuracy"), float) else "")]
    where = "real songs, grouped CV" + (f" ({n_real} songs, {folds} folds)" if n_real and folds else "")
    line = f"  {where}: closed set accuracy {real.get('closed_accuracy', float('nan')):.3f}"
    ci = real.get("closed_accuracy_ci95_over_sources")
    if isinstance(ci, list) and len(ci) == 2:
        line += f" (95% interval over sources {ci[0]:.2f}-{ci[1]:.2f})"
    if "closed_macro_f1" in real:
        line += f", macro-F1 {real['closed_macro_f1']:.3f}"
    if "open_accuracy" in real:
        line += f"; open set {real['open_accuracy']:.3f}"
    out.append(line)
    if isinstance(metrics.get("test_audio_clips"), dict):
        a = metrics["test_audio_clips"]
        out.append(f"  GTZAN test clips from audio ({a.get('n', '?')} in shared data, the whole model): "
                   f"accuracy {a['accuracy']:.3f}")
    if "other_caught" in real:
        out.append(f"  'other' (real songs, grouped CV): {real['other_caught']:.1%} of songs outside the ten "
                   f"answered 'other', {real.get('in_ten_called_other', float('nan')):.1%} inside wrongly so"
                   + (f"; AUROC {real['auroc_other']:.3f}" if "auroc_other" in real else ""))
    return out


def render(info: dict[str, Any], confusion: bool = False) -> str:
    meta = info["meta"]
    lines = [f"model:       {info['path']}",
             f"file:        {info['bytes'] / 1024:.0f} KiB, {info['tensors']} tensors holding {info['values']:,} numbers"
             f" (format {meta.get('format', '?')}); checksum {info.get('checksum', 'not checked')}"]
    if meta.get("description"):
        lines.append(f"description: {meta['description']}")
    labels = meta.get("labels") or []
    lines.append(f"labels ({len(labels)}): {', '.join(labels)}")
    spec = meta.get("feature_spec") or meta.get("spec")
    if spec:
        lines.append(f"features:    {_spec_line(spec)}")
    if isinstance(meta.get("backbones"), dict):  # each backbone's weights, licence and source
        for role, text in meta["backbones"].items():
            lines.append(f"backbone:    {role}: {text}; weights fetched once from their source, not in this file")
        if "audioset" in meta["backbones"]:
            from genrekit.backbones.efficientat import WEIGHTS_URL

            lines.append(f"             EfficientAT weights: {WEIGHTS_URL} (MIT licence; see docs/model_card.md)")
    elif meta.get("backbone"):
        lines.append(f"backbone:    {meta['backbone']} (weights from the musicnn 0.1.0 wheel, fetched once; not in this file)")
    if meta.get("config"):
        lines.append("architecture: " + ", ".join(f"{k} {v}" for k, v in meta["config"].items()))
    training = (meta.get("info") or {}).get("training") or {}
    if training:
        keys = ("optimizer", "lr", "scheduler", "epochs", "batch_size", "seed")
        lines.append("training:    " + ", ".join(f"{k} {training[k]}" for k in keys if k in training))
    data = (meta.get("info") or {}).get("data") or {}
    if data.get("tracks") or data.get("rows"):
        lines.append("data:        " + ", ".join(f"{k} {v}" for k, v in (data.get("tracks") or data["rows"]).items())
                     + (" tracks" if data.get("tracks") else f" {data.get('unit') or 'row'}s"))
    user_head = isinstance(meta.get("training"), dict) and meta["training"].get("script") == "genrekit train --model head"
    if user_head:
        lines += _user_head_lines(meta)
    elif isinstance(meta.get("training"), dict):  # the default head's own record
        lines += _head_lines(meta["training"])
    metrics = meta.get("metrics") or {}
    real = metrics.get("real_songs_cv") if isinstance(metrics.get("real_songs_cv"), dict) else None
    if user_head:  # shown above; the table per C and the confusion matrices stay below
        metrics = {k: v for k, v in metrics.items()
                   if k not in ("cv_protocol", "other_caught", "in_set_called_other", "auroc_other", "cv_components",
                                "test_track_note", "other_caught_ci95_over_groups",
                                "in_set_called_other_ci95_over_groups")}
    if isinstance(metrics.get("test_track"), dict) and real is not None:
        lines += _default_metric_lines(metrics, real, meta.get("training") or {})
        variants = metrics.get("real_songs_cv_variants")
        if isinstance(variants, dict) and variants:
            lines.append("real songs, grouped CV by candidate (closed set accuracy; 'other' caught / inside called 'other'):")
            for name, v in variants.items():
                lines.append(f"  {name:42s} {v.get('closed_acc', float('nan')):.3f}; "
                             f"{v.get('caught', float('nan')):.1%} / {v.get('false_other', float('nan')):.1%}")
        metrics = {k: v for k, v in metrics.items()
                   if k not in ("real_songs_cv", "test_track_open_set_accuracy", "test_track_open_set_note",
                                "real_songs_cv_variants", "test_track_note")}
    scores = _scores(metrics)
    if scores:
        lines.append("metrics:")
        for name, v in scores:
            f1 = f"  macro-F1 {v['macro_f1']:.4f}" if "macro_f1" in v else ""
            n = f"  n={v['n']}" if "n" in v else ""
            lines.append(f"  {name:20s} accuracy {v['accuracy']:.4f}{f1}{n}")
    extra = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if extra:
        lines.append("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items()))
    if confusion and not any("confusion" in v for _, v in scores):
        lines.append("confusion: none stored in this file (`genrekit train` writes them to OUT/<split>_metrics.json "
                     "and OUT/<split>_metrics_confusion.png)")
    if confusion:
        for name, v in scores:
            if "confusion" in v:
                lines.append(f"confusion ({name}; rows true, columns predicted):")
                width = len(v["confusion"][0]) if v["confusion"] else len(labels)
                lines += confusion_lines(labels + ["other"] * (width == len(labels) + 1), v["confusion"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from genrekit.errors import ModelFileError

    info = summary(args.model)
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    try:
        text = render(info, args.confusion)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # metadata of an unexpected shape (a file without a checksum, or a newer format)
        from genrekit.errors import one_line

        raise ModelFileError(f"{info['path']}: cannot show this model file's metadata ({one_line(exc, 160)}); "
                             "genrekit info --json prints it as stored") from None
    print(text)
    return 0
