"""`genrekit info`: what a model file holds, read from its header alone.

    genrekit info                      # the default model
    genrekit info runs/cnn             # a training folder or model file
    genrekit info runs/cnn --json      # the whole metadata, for scripts

Prints the labels, the feature settings applied at prediction (sample rate, mono mix-down,
front end), the architecture or head, the training data and the stored metrics, so a user can
tell which model a number came from and what it expects, without loading weights or running
any code from the file (safetensors header + JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("info", help="show what a model file holds: labels, features, metrics",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default="default", help="model file / training folder, or 'default'")
    p.add_argument("--json", action="store_true", help="print the whole metadata as JSON")
    p.add_argument("--confusion", action="store_true", help="also print stored confusion matrices")
    p.set_defaults(func=run)
    return p


def summary(ref: str = "default") -> dict[str, Any]:
    """The model's metadata plus file facts (path, bytes, tensors, parameters), header only."""
    import numpy as np

    from genrekit.models.base import model_path
    from genrekit.models.modelfile import read_model_meta, tensor_shapes

    path = model_path(ref)
    meta = read_model_meta(path)
    shapes = tensor_shapes(path)
    # every stored number (weights, normalisation statistics, BatchNorm running stats), not only trainable ones
    return {"path": str(path), "bytes": path.stat().st_size, "tensors": len(shapes),
            "values": int(sum(int(np.prod(s)) for s in shapes.values())), "meta": meta}


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


def render(info: dict[str, Any], confusion: bool = False) -> str:
    meta = info["meta"]
    lines = [f"model:       {info['path']}",
             f"file:        {info['bytes'] / 1024:.0f} KiB, {info['tensors']} tensors holding {info['values']:,} numbers"
             f" (format {meta.get('format', '?')})"]
    if meta.get("description"):
        lines.append(f"description: {meta['description']}")
    labels = meta.get("labels") or []
    lines.append(f"labels ({len(labels)}): {', '.join(labels)}")
    spec = meta.get("feature_spec") or meta.get("spec")
    if spec:
        lines.append(f"features:    {_spec_line(spec)}")
    if meta.get("backbone"):
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
    if isinstance(meta.get("training"), dict):  # the default head's own record
        t = meta["training"]
        cfg = t.get("config") or {}
        lines.append(f"training:    {t.get('data', '?')}; head {cfg.get('name', '?')} (chosen by train CV)")
    metrics = meta.get("metrics") or {}
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
                lines += confusion_lines(labels, v["confusion"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = summary(args.model)
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(render(info, args.confusion))
    return 0
