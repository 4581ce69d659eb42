"""``genrekit batch --report DIR``: the genres of a library, from its batch dataset.

Counts are per model (a folder may hold rows of several models, each its own resume key); failed
rows are counted apart. The chart is the counts of the model with the most rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from genrekit.batch.writer import DatasetDir
from genrekit.errors import GenrekitError


def genre_counts(root: str | Path, damaged: list | None = None) -> dict[str, Any]:
    """``{model: {"genres": [(genre, n), ...] most first, "failed": n, "rows": n}}``. Parts that do
    not read are left out and appended to ``damaged`` (:class:`~genrekit.batch.writer.DamagedPart`)."""
    ds = DatasetDir(root, create=False)
    t = ds.read(columns=["model", "model_hash", "genre", "error"]).to_pydict()
    if damaged is not None:
        damaged.extend(ds.damaged)
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


def report(root: str | Path, png: str | Path | None = None) -> tuple[str, Path | None, list]:
    """The report as text, the bar chart written to ``png`` (default ``DIR/_genres.png``) and the
    damaged parts left out of it (the caller names them and exits non-zero)."""
    from genrekit.models.modelfile import atomic_path
    from genrekit.plots import plot_genre_counts
    from genrekit.prediction import printable

    damaged: list = []
    counts = genre_counts(root, damaged)
    if not counts:
        return f"{root}: no rows yet", None, damaged
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
        try:
            with atomic_path(path, suffix=".png") as tmp:
                plot_genre_counts(d["genres"], tmp, title=f"{printable(model)}: {d['rows'] - d['failed']} tracks")
        except OSError as exc:  # a read-only dataset folder, a full disk: the counts still stand
            raise GenrekitError(f"{path}: cannot write the chart ({exc.strerror or exc}); "
                                "--png PATH writes it elsewhere") from None
        lines.append(f"chart: {path}")
        return "\n".join(lines), path, damaged
    return "\n".join(lines), None, damaged
