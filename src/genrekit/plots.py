"""Training-curve and confusion-matrix PNGs.

matplotlib is imported inside each function with the Agg backend: importing it costs ~0.5 s and
must not slow down prediction or work on a machine without a display.

Why they look the way they do:

- Training curve: epochs are whole numbers, so the ticks are too; the epoch whose weights were
  kept (best validation macro-F1, the rule ``training.train`` applies) is marked on both panels,
  since that, not the last epoch, is the model a user gets.
- Confusion matrix: rows are normalised (the share of each true genre's items given each answer),
  so a genre with 10 test tracks reads on the same scale as one with 40; each cell also shows its
  count, empty cells stay blank (a grid of zeros hides the mistakes that matter), and the row
  totals sit beside the genre names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genrekit.palette import INK, palette_for


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def best_epoch_of(history: list[dict]) -> int | None:
    """The epoch ``training.train`` keeps: the first with the highest validation macro-F1."""
    best, best_f1 = None, -1.0
    for h in history:
        f1 = h.get("val_macro_f1")
        if f1 is not None and f1 > best_f1:
            best, best_f1 = int(h["epoch"]), float(f1)
    return best


def plot_training_curve(history: list[dict], path: Path, title: str = "") -> Path:
    """Loss (left) and accuracy / macro-F1 (right) per epoch for train and validation, with the
    kept (best) epoch marked."""
    fig = training_curve_figure(history, title)
    return _save(fig, path)


def training_curve_figure(history: list[dict], title: str = ""):
    """The training curve as a matplotlib Figure (the caller closes it; tests read its axes)."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    best = best_epoch_of(history)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set_ylabel("loss")
    ax2.plot(epochs, [h["train_accuracy"] for h in history], label="train accuracy")
    ax2.plot(epochs, [h["val_accuracy"] for h in history], label="val accuracy")
    f1_line, = ax2.plot(epochs, [h["val_macro_f1"] for h in history], label="val macro-F1")
    ax2.set_ylim(0, 1)
    if best is not None:
        row = next(h for h in history if h["epoch"] == best)
        for ax in (ax1, ax2):
            ax.axvline(best, color="0.35", linestyle="--", linewidth=1, zorder=0,
                       label=f"kept: epoch {best}" if ax is ax1 else None, gid="best-epoch")
        ax2.plot([best], [row["val_macro_f1"]], marker="o", markersize=7, color=f1_line.get_color(),
                 markeredgecolor=INK, linestyle="none", gid="best-epoch-point",
                 label=f"best val macro-F1 {row['val_macro_f1']:.3f}")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            ax.set_xlim(min(epochs) - 0.5 if len(epochs) == 1 else min(epochs),
                        max(epochs) + 0.5 if len(epochs) == 1 else max(epochs))
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _pct(p: float) -> str:
    return "<1%" if 0 < p < 0.005 else f"{p:.0%}"


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows true, columns predicted): each non-empty cell shows
    its share of the row and its count; empty cells stay blank."""
    return _save(confusion_figure(cm, labels, title), path)


def confusion_figure(cm: np.ndarray, labels: Sequence[str], title: str = ""):
    """The confusion matrix as a matplotlib Figure (the caller closes it; tests read its texts)."""
    plt = _plt()
    cm = np.asarray(cm)
    n = len(labels)
    rows = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(rows[:, None] > 0, cm / np.maximum(rows[:, None], 1), 0.0)
    size = max(4.5, 0.62 * n + 2.6)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), [f"{lab} ({int(r)})" for lab, r in zip(labels, rows, strict=True)])
    ax.set_xlabel("predicted genre")
    ax.set_ylabel("true genre (items in the row)")
    for i in range(n):
        for j in range(n):
            if cm[i, j] == 0:
                continue  # blank, not "0": the eye goes to the cells that hold something
            ax.text(j, i, f"{_pct(share[i, j])}\n{int(cm[i, j])}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else INK, fontsize=7, linespacing=1.1)
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    # a colour bar in its own divider axes: tight_layout then keeps the y label inside the figure
    bar = fig.colorbar(im, cax=make_axes_locatable(ax).append_axes("right", size="4%", pad=0.15))
    bar.set_label("share of the true genre's items")
    bar.ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _pos: f"{v:.0%}"))
    ax.set_title(title or "confusion matrix", fontsize=9)
    return fig


def metrics_title(prefix: str, metrics: dict) -> str:
    """A readable title for the confusion PNG of ``<prefix>.json`` (``test_metrics``,
    ``val_track_metrics``...): which split, per track or not, n, accuracy and macro-F1."""
    name = prefix.removesuffix("_metrics")
    per_track = name.endswith("_track")
    split = name.removesuffix("_track")
    split = {"val": "validation", "valid": "validation", "train": "training"}.get(split, split)
    head = f"Confusion matrix, {split} split" + (", per track" if per_track else "")
    scores = []
    if "n" in metrics:
        scores.append(f"n={metrics['n']}")
    if "accuracy" in metrics:
        scores.append(f"accuracy {metrics['accuracy']:.1%}")
    if "macro_f1" in metrics:
        scores.append(f"macro-F1 {metrics['macro_f1']:.3f}")
    return head + (f"\n{', '.join(scores)}" if scores else "")


def _save(fig, path: Path) -> Path:
    """Lay out, write the PNG atomically (creating its folder) and free the figure."""
    from genrekit.models.modelfile import atomic_path

    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        _plt().close(fig)
    return path


def plot_genre_counts(counts: Sequence[tuple[str, int]], path: Path, title: str = "") -> Path:
    """Horizontal bars of how many tracks got each genre (``genrekit batch --report``), most first."""
    return _save(genre_counts_figure(counts, title), path)


def genre_counts_figure(counts: Sequence[tuple[str, int]], title: str = ""):
    """The figure :func:`plot_genre_counts` writes (the caller closes it); each bar in its genre's
    palette colour, as on the page and in the timelines."""
    plt = _plt()
    counts = list(counts)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.32 * max(1, len(counts))))
    names = [g for g, _ in counts][::-1]
    values = [n for _, n in counts][::-1]
    colours = palette_for(names)  # the genre's colour, as on the page and in the timeline PNGs
    ax.barh(names, values, color=[colours[g] for g in names])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax.set_xlabel("tracks")
    ax.margins(x=0.12)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
