"""``genrekit batch --report DIR``: the genres of a library, from its batch dataset.

Counts are per model (a folder may hold rows of several models, each its own resume key); failed
rows are counted apart, with their reasons (the most common first, and a few of the inputs that
had each), since "2 failed" alone sends the user digging through Parquet files. The chart is the
counts of the model with the most rows, each bar in its genre's colour (:mod:`genrekit.palette`).
A folder that holds no batch result (no run record and no parts) is an error, not an empty report.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from genrekit.batch.writer import RUN_FILE, DatasetDir
from genrekit.errors import GenrekitError

#: How many distinct failure reasons the report lists per model, and example inputs per reason.
MAX_REASONS = 10
MAX_EXAMPLES = 3


def genre_counts(root: str | Path, damaged: list | None = None) -> dict[str, Any]:
    """``{model: {"genres": [(genre, n), ...] most first, "failed": n, "rows": n,
    "reasons": [(reason, n, [input, ...]), ...] most first}}``. Parts that do not read are left out
    and appended to ``damaged`` (:class:`~genrekit.batch.writer.DamagedPart`)."""
    ds = DatasetDir(root, create=False)
    if not ds.parts() and not (ds.root / RUN_FILE).exists():
        raise GenrekitError(f"{ds.root}: not a genrekit batch result (no {RUN_FILE} and no part-*.parquet files)")
    t = ds.read(columns=["input", "model", "model_hash", "genre", "error"]).to_pydict()
    if damaged is not None:
        damaged.extend(ds.damaged)
    out: dict[str, Any] = {}
    examples: dict[str, dict[str, list[str]]] = {}
    for src, model, mh, genre, err in zip(t["input"], t["model"], t["model_hash"], t["genre"], t["error"],
                                          strict=True):
        key = f"{model} ({mh})"
        d = out.setdefault(key, {"genres": Counter(), "failed": 0, "rows": 0, "reasons": Counter()})
        d["rows"] += 1
        if err:
            d["failed"] += 1
            d["reasons"][err] += 1
            examples.setdefault(key, {}).setdefault(err, []).append(src)
        else:
            d["genres"][genre] += 1
    for key, d in out.items():
        d["genres"] = sorted(d["genres"].items(), key=lambda kv: (-kv[1], kv[0]))
        d["reasons"] = [(r, n, examples[key][r][:MAX_EXAMPLES])
                        for r, n in sorted(d["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))]
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
        return f"{root}: no rows yet (a batch started here has not committed any)", None, damaged
    lines: list[str] = []
    for model, d in counts.items():
        ok = d["rows"] - d["failed"]
        lines.append(f"{printable(model)}: {d['rows']} tracks, {ok} classified, {d['failed']} failed")
        for genre, n in d["genres"]:
            share = n / ok if ok else 0.0
            lines.append(f"  {genre:<14} {n:>8}  {share:6.1%}")
        if d["reasons"]:
            lines.append("  failed:")
            for reason, n, inputs in d["reasons"][:MAX_REASONS]:
                lines.append(f"    {n:>6}  {printable(reason)}")
                more = n - len(inputs)
                lines.append("            e.g. " + ", ".join(printable(i) for i in inputs)
                             + (f" and {more} more" if more > 0 else ""))
            rest = d["reasons"][MAX_REASONS:]
            if rest:
                lines.append(f"    {sum(n for _, n, _ in rest):>6}  ({len(rest)} other reasons)")
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
