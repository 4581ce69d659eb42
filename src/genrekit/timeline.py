"""Timeline PNG of one prediction: how the genre moves through the input, and the track's genres.

The notebook plotted the predicted genre of every segment against time. Here the top panel draws,
like the web page, one stacked column per analysed segment: the height of each colour is that
genre's probability, so a segment's confidence is the height of its top band (a tall single colour
is a sure segment, a mix of thin bands an unsure one), on a fixed 0-100 % scale so two PNGs compare
at a glance. The x axis reads as a clock (m:ss, h:mm:ss past an hour) whatever the length. The
bottom panel is the whole track's probabilities, also on a fixed 0-100 % scale. Colours come from
``genrekit.palette``, the table the page uses.

For models with a whole-track head of their own (the default model) the bottom panel can disagree
with the columns; the figure says which head drew what.

matplotlib (Agg) is imported inside the function so prediction without plots never pays for it.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import numpy as np

from genrekit.fonts import drawable
from genrekit.palette import INK, palette_for, text_colour_on
from genrekit.prediction import OTHER, Prediction, printable

#: Tick spacings (seconds) the time axis chooses from: at most ~10 ticks whatever the length.
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
#: A genre gets a legend entry when it reaches this probability in some segment.
_LEGEND_MIN = 0.05
#: More segments than this (about one per 2 px of the plot) are averaged into this many equal
#: stretches of time: thousands of 1-px columns alias into noise.
MAX_COLUMNS = 400


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


def clock(seconds: float, hours: bool = False) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on (or always, with ``hours``, so that one axis
    reads 0:15:00 ... 1:00:00 rather than 15:00 ... 1:00:00): how a player shows a position."""
    s = int(round(max(0.0, float(seconds))))
    if hours or s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def tick_step(duration_s: float, max_ticks: int = 10) -> int:
    """The smallest spacing in :data:`_TICK_STEPS` that puts at most ``max_ticks`` ticks on the axis."""
    for step in _TICK_STEPS:
        if duration_s / step <= max_ticks:
            return step
    return _TICK_STEPS[-1] * int(np.ceil(duration_s / (_TICK_STEPS[-1] * max_ticks)))


def _segment_matrix(prediction: Prediction, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(edges [n+1] in seconds, probabilities [n_labels, n]) for a step-wise stack plot.

    A column runs from its segment's start to the next segment's start (segments overlap when the
    hop is shorter than the window), the last one to its end."""
    segs = prediction.segments
    starts = np.array([s.start_s for s in segs], dtype=float)
    ends = np.append(starts[1:], segs[-1].end_s)
    ends = np.maximum(ends, starts)
    edges = np.append(starts, ends[-1])
    probs = np.zeros((len(labels), len(segs)))
    index = {g: i for i, g in enumerate(labels)}
    for j, s in enumerate(segs):
        for g, p in (s.probabilities or {s.genre: s.confidence}).items():
            if g in index:
                probs[index[g], j] = p
    return edges, probs


def _binned(edges: np.ndarray, probs: np.ndarray, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_columns`` columns: the segments' probabilities averaged per equal stretch of
    time (a segment counts in the stretch its start falls in), so columns still stack to 1."""
    n = probs.shape[1]
    if n <= max_columns:
        return edges, probs
    new_edges = np.linspace(edges[0], edges[-1], max_columns + 1)
    which = np.clip(np.searchsorted(new_edges, edges[:-1], side="right") - 1, 0, max_columns - 1)
    sums = np.zeros((probs.shape[0], max_columns))
    np.add.at(sums.T, which, probs.T)
    counts = np.bincount(which, minlength=max_columns)
    keep = counts > 0  # a stretch with no segment start merges into the one before it
    out = sums[:, keep] / counts[keep]
    return np.append(new_edges[:-1][keep], new_edges[-1]), out


def _pct(p: float) -> str:
    """Whole percents as on the page; "<1%" rather than a misleading "0%" for a small non-zero."""
    return "<1%" if 0 < p < 0.005 else f"{p:.0%}"


def plot_timeline(prediction: Prediction, path: str | os.PathLike[str]) -> Path:
    """Write the timeline PNG of ``prediction`` to ``path`` (atomically) and return the path."""
    import matplotlib.pyplot as plt

    fig = timeline_figure(prediction)
    try:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        from genrekit.models.modelfile import atomic_path

        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        return out
    finally:
        plt.close(fig)  # also when writing fails: a long batch must not pile up figures


def _draw_open_set(ax, segs, colour: str) -> list:
    """Open-set models: the segments' in-set score as a line (0-100 %, the same scale; "other"
    below 50 %) and hatched spans where the segments' answer is "other". Returns the legend
    handles to add (none for models without an in-set score)."""
    from matplotlib.patches import Patch

    scores = [s.in_set for s in segs]
    if any(v is None for v in scores):
        return []
    centres = [(s.start_s + s.end_s) / 2 for s in segs]
    (line,) = ax.plot(centres, scores, color=INK, linewidth=1.0, label="in-set score")
    ax.axhline(0.5, color=INK, linewidth=0.6, linestyle=":")
    start = None
    for i, s in enumerate(segs + [None]):  # consecutive "other" segments make one span
        if s is not None and s.genre == OTHER and s.in_set is not None:
            start = s.start_s if start is None else start
        elif start is not None:
            ax.axvspan(start, segs[i - 1].end_s, facecolor="none", edgecolor=colour, hatch="///", linewidth=0)
            start = None
    return [line, Patch(facecolor="none", edgecolor=colour, hatch="///", label="other (in-set < 50%)")]


def timeline_figure(prediction: Prediction):
    """The timeline as a matplotlib Figure (the caller closes it): what :func:`plot_timeline`
    writes, open for inspection (the tests read its axes). Its text is set in DejaVu Sans with the
    fallback fonts of :mod:`genrekit.fonts`, so a file name in any script draws."""
    import matplotlib

    from genrekit.fonts import families

    matplotlib.use("Agg")
    with matplotlib.rc_context({"font.family": families()}):  # text objects keep the fonts they were made with
        return _timeline_figure(prediction)


def _timeline_figure(prediction: Prediction):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator, PercentFormatter

    labels = list(prediction.probabilities)
    colours = palette_for(labels + [prediction.genre])
    track = np.array([prediction.probabilities[g] for g in labels], dtype=float)
    # stacking order as on the page: the track's most probable genre at the bottom, as a floor
    order = [labels[i] for i in np.argsort(-track, kind="stable")]

    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(11, 6.5), gridspec_kw={"height_ratios": [3, 2]}, constrained_layout=True
    )
    try:
        segs = prediction.segments
        dur = max(prediction.duration_s, segs[-1].end_s if segs else 0.0, 1e-3)
        seg_mean = None
        binned = False
        shown: list[str] = []
        extra: list = []
        if segs:
            edges, probs = _segment_matrix(prediction, labels)
            seg_mean = probs.mean(axis=1)
            binned = probs.shape[1] > MAX_COLUMNS
            edges, probs = _binned(edges, probs)
            rows = [probs[labels.index(g)] for g in order]
            # step-wise stack: one polygon per genre, so a 2-hour input draws as fast as a song
            ax1.stackplot(edges, [np.append(r, r[-1]) for r in rows], step="post",
                          colors=[colours[g] for g in order], linewidth=0)
            shown = [g for g, r in zip(order, rows, strict=True) if r.max() >= _LEGEND_MIN]
            extra = _draw_open_set(ax1, segs, colours.get(OTHER, INK))
        ax1.set_xlim(0, dur)
        ax1.set_ylim(0, 1)
        ax1.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax1.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax1.xaxis.set_major_locator(MultipleLocator(tick_step(dur)))
        ax1.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: clock(t, hours=dur >= 3600)))
        ax1.set_xlabel("time (h:mm:ss)" if dur >= 3600 else "time (m:ss)")
        ax1.set_ylabel("segment probability")
        ax1.grid(axis="y", color="white", alpha=0.5, linewidth=0.8)
        if shown:
            ax1.legend(handles=[Patch(color=colours[g], label=g) for g in shown] + extra, loc="upper left",
                       bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9, title="genre", title_fontsize=9)
        two_heads = seg_mean is not None and float(np.abs(seg_mean - track).max()) >= 0.02
        what = (f"each column averages {dur / MAX_COLUMNS:.3g} s of segments ({len(segs)} in all)"
                if binned else "each column is one analysed window")
        ax1.set_title(f"per segment: {what}, its colours stack to 100%"
                      + (" (each window judged alone)" if two_heads else ""), fontsize=9, loc="left", color=INK)
        # drawable title: undecodable file-name bytes -> U+FFFD, '$' is not math markup here
        name = printable(prediction.input)
        name = name if len(name) <= 90 else "..." + name[-87:]
        answer = (f"other ({prediction.confidence:.0%} sure): not one of the model's genres (nearest "
                  f"{prediction.nearest} {prediction.nearest_probability:.0%}"
                  + (f", sounds like {prediction.style}" if prediction.style else "") + ")"
                  if prediction.is_other else f"{prediction.genre} ({prediction.confidence:.0%})")
        # a character no font here has becomes <U+XXXX>, never a box; '$' is not math markup here
        title = drawable(f"{name}\n{answer} - model {prediction.model}").replace("$", r"\$")
        fig.suptitle(title, fontsize=10, color=INK)

        bars = ax2.bar(range(len(labels)), track, color=[colours[g] for g in labels])
        for b, p, g in zip(bars, track, labels, strict=True):
            x = b.get_x() + b.get_width() / 2
            if p > 0.85:  # inside the bar's top: a label above it would leave the fixed 0-100 % frame
                ax2.text(x, p - 0.02, _pct(p), ha="center", va="top", fontsize=8, color=text_colour_on(colours[g]))
            else:
                ax2.text(x, p + 0.02, _pct(p), ha="center", va="bottom", fontsize=8, color=INK)
        ax2.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax2.set_ylim(0, 1)
        ax2.set_yticks([0, 0.5, 1.0])
        ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax2.set_ylabel("track probability")
        ax2.set_title("whole track" + (": judged at once, which can disagree with the segments above"
                                       if two_heads else ": the mean of the segments"),
                      fontsize=9, loc="left", color=INK)

        return fig
    except BaseException:
        plt.close(fig)  # a failed drawing must not leave its figure behind in a long batch
        raise
