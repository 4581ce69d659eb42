"""``genrekit evaluate --manifest songs.csv``: score a model on your own labelled songs.

The manifest is a CSV with a header and the columns ``input,genre`` (``source,label`` are accepted
too). ``input`` is a file path (relative paths are relative to the CSV's folder) or an http(s)
URL. Every song goes through the same :class:`~genrekit.prediction.Classifier` path as
``genrekit predict``. Per song we record the track genre, whether it is right, the share of its
segments whose genre is the true one (segment accuracy) and a timeline PNG; overall, track
accuracy, macro-F1 and the confusion matrix (JSON and PNG). Songs that fail (missing file, dead
URL) are listed in the report and do not stop the run.

Genres are matched to the model's labels ignoring case and surrounding spaces ('Metal' counts as
'metal'). A row without a genre (or without an input) is a bad row: one error line, counted as
failed, never scored. A genre the model does not know at all stays in the scores as a wrong answer
(the model cannot say it), with one warning line up front and a note in ``report.md``.

Outputs in ``out_dir``: ``metrics.json`` (``test_track.accuracy``, ``test_track.macro_f1``,
``per_song``, ...), ``confusion.json``, ``confusion.png``, ``report.md``, ``timelines/*.png``.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from genrekit.errors import GenrekitError, one_line, printable, with_detail
from genrekit.models.modelfile import write_json_atomic, write_text_atomic

_INPUT_COLS = ("input", "source", "path", "file", "url")
_GENRE_COLS = ("genre", "label")


class ManifestError(GenrekitError):
    """A manifest that cannot be read (missing, no header, missing columns)."""


class ManifestRow(NamedTuple):
    """One song of a manifest: ``genre`` is stripped but may be empty (a bad row the caller reports),
    ``line`` is the row's line number in the CSV, for error messages."""

    input: str
    genre: str
    line: int
    group: str | None = None  # an optional ``group`` column: the song's cross-validation group


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """The manifest's rows (``input,genre[,group]``); relative paths resolved against the CSV's folder.

    Rows with an empty input or genre are returned (``input`` or ``genre`` empty) rather than
    dropped, so the evaluation reports them as failed instead of silently scoring fewer songs;
    rows with neither are blank lines and are skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"{p}: no such manifest file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: {with_detail('cannot read manifest', exc)}") from None
    kept = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(line for _, line in kept)
    fields = {f.strip().lower(): f for f in (reader.fieldnames or [])}
    icol = next((fields[c] for c in _INPUT_COLS if c in fields), None)
    gcol = next((fields[c] for c in _GENRE_COLS if c in fields), None)
    if icol is None or gcol is None:
        raise ManifestError(f"{p}: the manifest needs a header with the columns input,genre "
                            f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})")
    grp = fields.get("group")
    from genrekit.urls import is_url

    rows = []
    for r in reader:
        src = (r.get(icol) or "").strip()
        genre = (r.get(gcol) or "").strip()
        if not src and not genre:
            continue
        if src and not is_url(src):
            sp = Path(src).expanduser()
            src = str(sp if sp.is_absolute() else (p.parent / sp))
        group = ((r.get(grp) or "").strip() or None) if grp else None
        rows.append(ManifestRow(src, genre, kept[reader.line_num - 1][0], group))
    if not rows:
        raise ManifestError(f"{p}: the manifest lists no songs")
    return rows


#: The file a shared ``real-songs`` folder lists its songs in, in a fixed order (new songs are
#: appended): ``scripts/train_real_head.py`` fits the default head on its rows.
REAL_SONGS_LIST = "labels.csv"


def _sha256(path: str | os.PathLike[str]) -> str | None:
    import hashlib

    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _real_songs_rows(folder: Path, n: int) -> set[str]:
    """The first ``n`` file paths (relative) listed in ``folder/labels.csv``; empty if unreadable."""
    try:
        with open(folder / REAL_SONGS_LIST, newline="", encoding="utf-8") as f:
            import itertools

            return {r["file"] for r in itertools.islice(csv.DictReader(f), n) if r.get("file")}
    except (OSError, KeyError, ValueError, csv.Error):
        return set()


def in_fit(training: dict[str, Any] | None, inputs: list[str]) -> dict[str, str]:
    """``{input: why}`` for the manifest inputs that the model was fitted on (so scoring them is
    in-sample and flatters it), from the model's own ``training`` record.

    A model file that lists its fit (``training.fit_files``: ``{"path", "sha256"}`` per song, as
    ``scripts/train_real_head.py`` stores it) is matched by content hash, whatever the file is
    called now. Older heads of that script record only how many real songs they were fitted on
    (``training.data.real_songs_in_ten`` + ``real_songs_outside``): the script fits the rows of
    ``real-songs/labels.csv`` in order, and that list only grows at its end, so an input inside
    a ``real-songs`` folder among its first that many rows was in the fit."""
    if not training:
        return {}
    out: dict[str, str] = {}
    files = training.get("fit_files")
    if isinstance(files, list) and files:
        hashes = {str(f.get("sha256")): str(f.get("path")) for f in files if isinstance(f, dict)}
        for src in inputs:
            digest = _sha256(src) if src and Path(src).is_file() else None
            if digest in hashes:
                out[src] = f"the same audio as {hashes[digest]} of the model's fit"
        return out
    data = training.get("data") or {}
    if "script" not in training or "real_songs_in_ten" not in data:
        return {}
    n = int(data.get("real_songs_in_ten") or 0) + int(data.get("real_songs_outside") or 0)
    lists: dict[Path, set[str]] = {}
    for src in inputs:
        p = Path(src).resolve() if src else None
        if p is None:
            continue
        root = next((a for a in p.parents if a.name == "real-songs"), None)
        if root is None:
            continue
        if root not in lists:
            lists[root] = _real_songs_rows(root, n)
        rel = p.relative_to(root).as_posix()
        if rel in lists[root]:
            out[src] = f"one of the {n} real songs ({root.name}/{REAL_SONGS_LIST}) the model was fitted on"
    return out


def _metrics(y_true: list[int], y_pred: list[int], labels: list[str]) -> dict[str, Any]:
    try:
        from genrekit.evaluation import classification_metrics
    except ImportError:  # pragma: no cover - evaluation ships with the package
        classification_metrics = None
    if classification_metrics is not None:
        return classification_metrics(np.asarray(y_true), np.asarray(y_pred), labels)
    n = len(labels)  # pragma: no cover
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    tp = np.diag(cm).astype(float)
    prec = np.divide(tp, cm.sum(0), out=np.zeros(n), where=cm.sum(0) > 0)
    rec = np.divide(tp, cm.sum(1), out=np.zeros(n), where=cm.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(n), where=prec + rec > 0)
    present = (cm.sum(0) > 0) | (cm.sum(1) > 0)
    return {"n": int(cm.sum()), "accuracy": float(tp.sum() / max(1, cm.sum())),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "labels": labels, "confusion_matrix": cm.tolist()}


def evaluate_manifest(model: Any, manifest_csv: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                      *, echo: bool = True, timelines: bool = True) -> dict[str, Any]:
    """Evaluate ``model`` (a model reference, a GenreModel or a Classifier) on the manifest's songs.

    Returns the metrics dict that is also written to ``out_dir/metrics.json``.
    """
    from genrekit.audio import NativeNoise, quiet_native_stderr
    from genrekit.models.base import GenreModel
    from genrekit.prediction import OTHER, Classifier

    rows = read_manifest(manifest_csv)
    if isinstance(model, Classifier):
        clf = model
    elif isinstance(model, GenreModel):
        clf = Classifier(model)
    else:
        clf = Classifier.load(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tl_dir = out / "timelines"

    def say(msg: str) -> None:
        if echo:
            print(printable(msg), file=sys.stderr, flush=True)

    # the model's spelling of each genre: 'Metal' and ' metal ' in a hand-written CSV mean 'metal';
    # with an open-set model, a row whose genre is "other" is right when the model says other
    known = list(clf.labels) + ([OTHER] if clf.answers_other else [])
    by_fold = {lab.casefold(): lab for lab in known}
    rows = [r._replace(genre=by_fold.get(r.genre.casefold(), r.genre)) for r in rows]
    unknown = Counter(r.genre for r in rows if r.genre and r.input and r.genre not in known)
    if unknown:
        fate = ("scored as 'other' (right when the model answers other)" if clf.answers_other
                else "scored as wrong")
        say(f"genrekit: warning: {manifest_csv}: the model does not know the genre"
            f"{'s' if len(unknown) > 1 else ''} {_counts(unknown)}; those rows are {fate} "
            f"(the model's labels: {', '.join(clf.labels)})")

    seen = in_fit(getattr(clf.model, "info", {}).get("training"), [r.input for r in rows])
    if seen:
        say(f"genrekit: warning: {manifest_csv}: {len(seen)} of {len(rows)} songs are in the model's own fit, "
            f"so their scores are in-sample and flatter the model (e.g. {next(iter(seen))}: "
            f"{next(iter(seen.values()))}); its held-out figures are in `genrekit info`")

    per_song: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    used: set[str] = set()
    for i, (src, genre, line, _group) in enumerate(rows, 1):
        problem = None
        if not src:
            problem = f"{manifest_csv}: line {line}: no input given"
        elif not genre:
            problem = f"{src}: line {line} of {Path(manifest_csv).name} gives no genre"
        if problem is not None:
            failed.append({"input": src, "genre": genre, "error": problem})
            say(f"[{i}/{len(rows)}] genrekit: error: {problem}")
            continue
        noise = NativeNoise()
        try:
            with quiet_native_stderr() as noise:  # libmpg123 & co. print to fd 2: into the error, not the terminal
                pred = clf.predict(src)
        except GenrekitError as exc:
            failed.append({"input": src, "genre": genre, "error": f"{exc}{noise.note()}"})
            say(f"[{i}/{len(rows)}] genrekit: error: {exc}")  # the decoder's words: in metrics.json only
            continue
        given = genre
        if genre not in known and clf.answers_other:  # music outside the model's genres: "other" is right
            genre = OTHER
        seg_acc = float(np.mean([s.genre == genre for s in pred.segments])) if pred.segments else 0.0
        entry: dict[str, Any] = {
            "input": src,
            "genre": genre,
            "predicted": pred.genre,
            "nearest": pred.nearest or pred.genre,
            "in_set": pred.in_set,
            "confidence": pred.confidence,
            "correct": pred.genre == genre,
            "in_fit": src in seen,
            "segment_accuracy": seg_acc,
            "n_segments": len(pred.segments),
            "duration_s": pred.duration_s,
            "probabilities": pred.probabilities,
        }
        if given not in known:
            entry["note"] = f"true genre {given!r} is not one of the model's labels" + (
                "; scored as 'other'" if genre == OTHER else "")
        if timelines:
            from genrekit.timeline import plot_timeline, safe_stem

            stem, k = safe_stem(src), 2
            base = stem
            while stem in used:
                stem, k = f"{base}-{k}", k + 1
            used.add(stem)
            try:
                entry["timeline"] = str(plot_timeline(pred, tl_dir / f"{stem}.png").relative_to(out))
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as exc:  # the song is scored; only its picture is missing
                say(f"genrekit: warning: {src}: cannot write timeline ({one_line(exc, 120)})")
        per_song.append(entry)
        # for "other" the number is how sure the model is that the song is outside its genres
        sure = (f"{pred.confidence:.2f}; nearest {pred.nearest} {pred.nearest_probability:.2f}"
                if pred.is_other else f"{pred.confidence:.2f}")
        say(f"[{i}/{len(rows)}] {src}: {genre} -> {pred.genre} ({sure}), segments right {seg_acc:.0%}")

    labels = list(clf.labels)
    for e in per_song:  # true genres the model does not know still count (as errors); so does "other"
        for g in (e["genre"], e["predicted"]):
            if g not in labels:
                labels.append(g)
    idx = {g: i for i, g in enumerate(labels)}
    y_true = [idx[e["genre"]] for e in per_song]
    y_pred = [idx[e["predicted"]] for e in per_song]
    track = _metrics(y_true, y_pred, labels) if per_song else {
        "n": 0, "accuracy": 0.0, "macro_f1": 0.0, "labels": labels,
        "confusion_matrix": np.zeros((len(labels), len(labels)), int).tolist()}
    # the forced choice among the model's genres, for songs labelled with one of them
    inside = [e for e in per_song if e["genre"] in clf.labels]
    closed = _metrics([idx[e["genre"]] for e in inside], [idx[e["nearest"]] for e in inside], labels) \
        if inside and clf.answers_other else None
    n_seg = sum(e["n_segments"] for e in per_song)
    seg_right = sum(e["segment_accuracy"] * e["n_segments"] for e in per_song)
    metrics: dict[str, Any] = {
        "manifest": str(manifest_csv),
        "model": clf.name,
        "n_songs": len(rows),
        "n_scored": len(per_song),
        "n_failed": len(failed),
        "test_track": track,
        **({"test_track_closed_set": {k: closed[k] for k in ("n", "accuracy", "macro_f1")}} if closed else {}),
        "answered_other": sum(e["predicted"] == OTHER for e in per_song),
        "test_segment": {
            "accuracy": seg_right / n_seg if n_seg else 0.0,
            "mean_song_segment_accuracy": float(np.mean([e["segment_accuracy"] for e in per_song])) if per_song else 0.0,
            "n": n_seg,
        },
        "unknown_genres": dict(sorted(unknown.items())),
        "n_in_fit": len(seen),
        "per_song": per_song,
        "failed": failed,
    }
    write_json_atomic(out / "metrics.json", metrics)
    write_json_atomic(out / "confusion.json", {"labels": labels, "matrix": track["confusion_matrix"]})
    if per_song:
        from genrekit.plots import plot_confusion

        plot_confusion(np.asarray(track["confusion_matrix"]), labels, out / "confusion.png",
                       title=f"Confusion matrix, {Path(manifest_csv).name}, per song\n"
                             f"n={track['n']}, accuracy {track['accuracy']:.1%}, macro-F1 {track['macro_f1']:.3f}")
    write_text_atomic(out / "report.md", _report(metrics, out))
    say(f"track accuracy {track['accuracy']:.3f}, macro-F1 {track['macro_f1']:.3f} on {len(per_song)} songs"
        + (f" ({len(failed)} failed)" if failed else "")
        + (f"; {metrics['answered_other']} answered other; closed set (nearest of the model's genres, songs "
           f"inside them): accuracy {closed['accuracy']:.3f}" if closed else "")
        + f"; report: {out / 'report.md'}")
    return metrics


def _counts(c: Counter) -> str:
    """'polka (2 rows), ska (1 row)': genres by how many manifest rows name them."""
    return ", ".join(f"{g!r} ({n} row{'s' if n != 1 else ''})" for g, n in sorted(c.items()))


def _report(m: dict[str, Any], out: Path) -> str:
    t = m["test_track"]
    lines = [
        f"# Manifest evaluation: {Path(m['manifest']).name}",
        "",
        f"Model: `{m['model']}`. Songs: {m['n_songs']} listed, {m['n_scored']} scored, {m['n_failed']} failed.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| track accuracy | {t['accuracy']:.3f} |",
        f"| track macro-F1 | {t['macro_f1']:.3f} |",
        f"| segment accuracy (all segments) | {m['test_segment']['accuracy']:.3f} |",
        f"| segment accuracy (mean per song) | {m['test_segment']['mean_song_segment_accuracy']:.3f} |",
        "",
    ]
    if m.get("unknown_genres"):
        lines += [f"Genres the model does not know (always scored as wrong): {_counts(Counter(m['unknown_genres']))}.",
                  ""]
    if m.get("n_in_fit"):
        lines += [f"**In-sample:** {m['n_in_fit']} of these songs were in the model's own fit (marked *fit* "
                  "below), so these scores flatter it; `genrekit info` shows its held-out figures.", ""]
    if (out / "confusion.png").exists():
        lines += ["![confusion matrix](confusion.png)", ""]
    lines += ["## Songs", "", "| input | true | predicted | conf. | segments right | timeline |", "|---|---|---|---|---|---|"]
    for e in m["per_song"]:
        mark = ("" if e["correct"] else " ✗") + (" *fit*" if e.get("in_fit") else "")
        tl = f"[png]({e['timeline']})" if e.get("timeline") else ""
        lines.append(f"| {e['input']} | {e['genre']} | {e['predicted']}{mark} | {e['confidence']:.2f} | "
                     f"{e['segment_accuracy']:.0%} | {tl} |")
    if m["failed"]:
        lines += ["", "## Failed", ""]
        lines += [f"- {f['error']}" for f in m["failed"]]
    return "\n".join(lines) + "\n"
