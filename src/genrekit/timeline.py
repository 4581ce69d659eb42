"""Timeline PNG of one prediction: which genre each segment got over time, and the track's genres.

The notebook plotted the predicted genre of every one-second segment against time; this keeps that
view (one coloured marker per segment, genre names on the y axis, marker size and opacity by the
segment's confidence) and adds a bar chart of the whole track's probabilities below it.
matplotlib (Agg) is imported inside the function so prediction without plots never pays for it.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from .prediction import Prediction, printable


def safe_stem(name: str, max_len: int = 80, max_bytes: int = 200) -> str:
    """A file-name-safe stem for an input path or URL (used for per-input PNG names).

    Letters and digits of every script stay ("Ünïcödé Söng" -> "Ünïcödé Söng", NFC-normalised so
    macOS's decomposed names give the same stem); only what is unsafe in a file name or a shell
    becomes "_": path separators, control characters, quotes and shell metacharacters, and bytes
    that are not UTF-8 (which Python keeps as lone surrogates). No leading "." (hidden) or "-"
    (read as an option); at most ``max_len`` characters and ``max_bytes`` UTF-8 bytes (file names
    are limited in bytes)."""
    base = name.rstrip("/").split("?")[0]
    base = re.sub(r"^[a-zA-Z]+://", "", base)
    stem = unicodedata.normalize("NFC", Path(base).stem or base)
    stem = "".join(c if c.isalnum() or c in " ._-+,()[]" or unicodedata.category(c) in ("Mn", "Mc") else "_"
                   for c in stem)
    stem = re.sub(r"_+", "_", re.sub(r"\s+", " ", stem)).strip(" ._-") or "input"
    stem = stem[:max_len]
    while len(stem.encode("utf-8")) > max_bytes:
        stem = stem[:-1]
    return stem.rstrip(" ._-") or "input"


def plot_timeline(prediction: Prediction, path: str | os.PathLike[str]) -> Path:
    """Write the timeline PNG of ``prediction`` to ``path`` and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(prediction.probabilities)
    index = {g: i for i, g in enumerate(labels)}
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    colours = {g: cmap(i % cmap.N) for i, g in enumerate(labels)}

    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(11, 6.5), gridspec_kw={"height_ratios": [3, 2]}, constrained_layout=True
    )
    try:
        segs = prediction.segments
        if segs:
            mid = [(s.start_s + s.end_s) / 2 for s in segs]
            y = [index.get(s.genre, 0) for s in segs]
            # a thin grey step line shows the sequence; coloured markers show genre and confidence
            ax1.step(mid, y, where="mid", color="0.8", linewidth=1, zorder=1)
            ax1.scatter(mid, y, c=[colours[s.genre] for s in segs], s=[20 + 60 * s.confidence for s in segs],
                        alpha=0.9, edgecolors="none", zorder=2)
        ax1.set_yticks(range(len(labels)), labels)
        ax1.set_ylim(-0.6, len(labels) - 0.4)
        dur = max(prediction.duration_s, segs[-1].end_s if segs else 0.0, 1e-3)
        ax1.set_xlim(0, dur)
        if dur > 600:  # long inputs: minutes read better than thousands of seconds
            ax1.set_xticks(ax1.get_xticks(), [f"{t / 60:.0f}" for t in ax1.get_xticks()])
            ax1.set_xlim(0, dur)
            ax1.set_xlabel("time (min)")
        else:
            ax1.set_xlabel("time (s)")
        ax1.set_ylabel("segment genre")
        ax1.grid(axis="x", alpha=0.3)
        # drawable title: undecodable file-name bytes -> U+FFFD, '$' is not math markup here
        name = printable(prediction.input).replace("$", r"\$")
        title = name if len(name) <= 90 else "..." + name[-87:]
        ax1.set_title(f"{title}\n{prediction.genre} ({prediction.confidence:.0%}) - model {prediction.model}", fontsize=10)

        probs = [prediction.probabilities[g] for g in labels]
        bars = ax2.bar(range(len(labels)), probs, color=[colours[g] for g in labels])
        for b, p in zip(bars, probs, strict=True):
            ax2.text(b.get_x() + b.get_width() / 2, p + 0.01, f"{p:.2f}", ha="center", va="bottom", fontsize=8)
        ax2.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax2.set_ylim(0, min(1.0, max(probs) * 1.2 + 0.05) if probs else 1.0)
        ax2.set_ylabel("track probability")

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        from .modelfile import atomic_path

        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        return out
    finally:
        plt.close(fig)  # also when drawing or writing fails: a long batch must not pile up figures
