"""``genrekit batch --report DIR``: the genres of a library, from its batch dataset.

Counts are per model (a folder may hold rows of several models, each its own resume key); failed
rows are counted apart. The chart is the counts of the model with the most rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from genrekit.batch.writer import DatasetDir


def genre_counts(root: str | Path) -> dict[str, Any]:
    """``{model: {"genres": [(genre, n), ...] most first, "failed": n, "rows": n}}``."""
    t = DatasetDir(root, create=False).read(columns=["model", "model_hash", "genre", "error"]).to_pydict()
    out: dict[str, Any] = {}
    for model, mh, genre, err in zip(t["model"], t["model_hash"], t["genre"], t["error"], strict=True):
        d = out.setdefault(f"{model} ({mh})", {"genres": Counter(), "failed": 0, "rows": 0})
        d["rows"] += 1
        if err:
            d["failed"] += 1
        else:
            d["genres"][genre] += 1
    for d in out.values():
        d["genres"] = sorted(d["genres"].items(), key=lambda kv: (-kv[1], kv[0]))
    return out


def report(root: str | Path, png: str | Path | None = None) -> tuple[str, Path | None]:
    """The report as text, and the bar chart written to ``png`` (default ``DIR/_genres.png``)."""
    from genrekit.models.modelfile import atomic_path
    from genrekit.plots import plot_genre_counts
    from genrekit.prediction import printable

    counts = genre_counts(root)
    if not counts:
        return f"{root}: no rows yet", None
    lines: list[str] = []
    for model, d in counts.items():
        ok = d["rows"] - d["failed"]
        lines.append(f"{printable(model)}: {d['rows']} tracks, {ok} classified, {d['failed']} failed")
        for genre, n in d["genres"]:
            share = n / ok if ok else 0.0
            lines.append(f"  {genre:<14} {n:>8}  {share:6.1%}")
    model, d = max(counts.items(), key=lambda kv: kv[1]["rows"])
    path = Path(png) if png is not None else Path(root) / "_genres.png"
    if d["genres"]:
        with atomic_path(path, suffix=".png") as tmp:
            plot_genre_counts(d["genres"], tmp, title=f"{printable(model)}: {d['rows'] - d['failed']} tracks")
        lines.append(f"chart: {path}")
        return "\n".join(lines), path
    return "\n".join(lines), None
