"""Classification metrics and track-level aggregation, in numpy only.

scikit-learn is a dev dependency (tests cross-check against it); the runtime needs only these few
formulas, so they live here rather than pulling sklearn into every install.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genrekit.models.modelfile import write_text_atomic


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes (sklearn's convention)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_metrics(y_true, y_pred, labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Macro-F1 averages over the classes present in y_true or y_pred (sklearn's default), so a
    genre absent from a small test split does not drag the average down with a 0.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(labels)
    cm = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(cm).astype(np.float64)
    pred_count = cm.sum(axis=0).astype(np.float64)
    true_count = cm.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_count > 0, tp / pred_count, 0.0)
        recall = np.where(true_count > 0, tp / true_count, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (true_count > 0) | (pred_count > 0)
    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    total = int(cm.sum())
    return {
        "n": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": macro_f1,
        "per_class": {
            lab: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(true_count[i]),
            }
            for i, lab in enumerate(labels)
        },
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }


def aggregate_tracks(probs: np.ndarray, y: np.ndarray, groups: np.ndarray):
    """Mean of segment probabilities per track -> (track_probs, track_labels, track_ids).

    A track's label is its segments' label (they all share it); order follows first appearance.
    """
    groups = np.asarray(groups)
    ids, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)
    sums = np.zeros((len(ids), probs.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(ids)).astype(np.float64)
    track_probs = sums / counts[:, None]
    track_y = np.asarray(y)[first]
    return track_probs[order], track_y[order], ids[order]


def evaluate_probs(probs: np.ndarray, y: np.ndarray, labels: Sequence[str], groups=None) -> dict:
    """Metrics at the data's own unit, plus track level when several segments share a track.

    Returns {"segment": metrics} or {"segment": ..., "track": ...}; when every group is a single
    row (CSV tables) only the row level is returned and callers call it track level.
    """
    out = {"segment": classification_metrics(y, probs.argmax(axis=1), labels)}
    if groups is not None and len(np.unique(groups)) < len(groups):
        tp, ty, _ = aggregate_tracks(probs, y, groups)
        out["track"] = classification_metrics(ty, tp.argmax(axis=1), labels)
    return out


def summary(metrics: dict) -> dict:
    """Just the headline numbers (accuracy, macro_f1, n) of a metrics dict."""
    return {k: metrics[k] for k in ("accuracy", "macro_f1", "n")}


def write_metrics(metrics: dict, out_dir: Path, prefix: str, plot: bool = True) -> None:
    """Write <prefix>.json and, unless plot=False, <prefix>_confusion.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / f"{prefix}.json", json.dumps(metrics, indent=2))
    if plot and importlib.util.find_spec("matplotlib") is None:  # the light install: the JSON is the result
        print(f"genrekit: note: no {prefix}_confusion.png (matplotlib is not installed: "
              "pip install 'genrekit[plots]')", file=sys.stderr)
        plot = False
    if plot:
        from genrekit.plots import metrics_title, plot_confusion

        plot_confusion(np.asarray(metrics["confusion_matrix"]), metrics["labels"],
                       out_dir / f"{prefix}_confusion.png", title=metrics_title(prefix, metrics))
