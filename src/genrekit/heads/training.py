"""`genrekit train --model head`: a user's own genres on the default model's pretrained backbones.

Why this recipe: with twenty songs per class a network trained from scratch learns little, but the
default model's frozen backbones (musicnn MSD tags per 3 s patch, EfficientAT mn04's AudioSet
outputs per 10 s window) already describe style, instruments and production. What is learnt here is
only the default model's head family: two standardised multinomial logistic regressions (one on the
musicnn window statistics, one on the mean AudioSet outputs) mixed on the log scale
(``heads.fusion.mix``), optionally with mn04's zero-shot vote when the labels name AudioSet genre
classes, plus a segment head on 1-3 patch windows for the timeline. Class weights (balanced by
default) and the regularisation C (a grid chosen by grouped cross-validation, or one value) are
options; songs of ``--always-fit`` groups (a reference collection) are in every fit and never
scored. With ``--open-set``, an "other" class is fitted on songs outside the user's labels, and its
thresholds (track and timeline) are chosen on out-of-fold scores. The result is a
``genrekit-musicnn-head`` model file, read by every command; the built-in default model is made by
this very code (``scripts/train_default_model.py`` only writes its manifest and options).

Extraction (the only slow part, about as long as predicting the songs) runs once per file: the
per-patch rows (``EmbeddingCache``) are kept in the user cache under the file's identity (path,
size, mtime, ctime) and the extraction settings, each written atomically as soon as its file is
done, so an interrupted run resumes where it stopped and refitting after adding songs only extracts
the new ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.errors import GenrekitError, printable

#: Raise when what ``extract_rows`` returns changes, so old cache entries miss.
EXTRACT_VERSION = 1
#: The musicnn window the default model's track head reads (patches) and its hop.
WINDOW, WINDOW_HOP = 29, 14
#: mn04 on 10 s windows starting at every 10th patch (the default model's AudioSet settings).
AUDIOSET = {"backbone": "efficientat_mn04", "window_seconds": 10.0, "patch_stride": 10, "feature": "all", "alpha": 0.5}
C_GRID = (0.01, 0.03, 0.1)
#: The backbones a head can read: both (musicnn per 3 s patch + mn04 per 10 s window, a
#: ``genrekit-musicnn-head`` file, the ``musicnn`` built-in) or mn04 alone (a
#: ``genrekit-audioset-head`` file, the default: several times faster, no musicnn pass).
BACKBONES = ("musicnn+mn04", "mn04")
#: At least this many files per label to train at all, and this many groups (albums, artists,
#: folders) per label for grouped cross-validation to be able to hold one out.
MIN_FILES, MIN_GROUPS = 3, 2
OTHER = "other"
#: Longest a file may be for extraction (an hour-long mix would be minutes of backbone time and a
#: single training example).
MAX_SECONDS = 20 * 60

Log = Callable[[str], None]


@dataclass
class Song:
    """One training file: its label (as the user spelt it), group and where the group came from."""

    path: Path
    label: str
    group: str = ""
    group_kind: str = ""
    folder_group: str | None = None  # the folder below the label, when the file sits in one
    manifest_group: str | None = None


@dataclass
class Dataset:
    songs: list[Song]
    labels: list[str]  # the user's labels, sorted (without "other")
    notes: list[str] = field(default_factory=list)


def clean_label(name: str) -> str:
    """A label as written (Unicode NFC, outer spaces stripped): ``Hip Hop`` and ``Hip Hop `` are one."""
    return unicodedata.normalize("NFC", name).strip()


def _merge_labels(raw: Sequence[str], notes: list[str]) -> dict[str, str]:
    """{raw label: label kept}: labels that differ only in case are one label (the first spelling,
    in sorted order, is kept and the merge is reported)."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for r in sorted(set(raw)):
        c = clean_label(r)
        if c and c not in by_key[c.casefold()]:
            by_key[c.casefold()].append(c)
    out = {}
    for r in set(raw):
        c = clean_label(r)
        if not c:
            continue
        spellings = by_key[c.casefold()]
        out[r] = spellings[0]
    for spellings in by_key.values():
        if len(spellings) > 1:
            notes.append(f"labels {', '.join(repr(s) for s in spellings)} differ only in case: merged as {spellings[0]!r}")
    return out


def find_songs(data: str | os.PathLike[str] | None = None, manifest: str | os.PathLike[str] | None = None,
               other_folder: str | os.PathLike[str] | None = None, open_set: bool = False) -> Dataset:
    """The labelled files of a ``<label>/<files>`` folder or an ``input,genre[,group]`` CSV, plus
    the outside music (label ``other`` or ``other_folder``) when ``open_set``. Raises
    :class:`GenrekitError` for what cannot be trained on."""
    from genrekit.audio import audio_files_under

    notes: list[str] = []
    raw: list[tuple[Path, str, str | None, str | None]] = []  # path, label, folder group, manifest group
    if (data is None) == (manifest is None):
        raise GenrekitError("genrekit train --model head: give --data FOLDER (<label>/<files>) or --manifest CSV")
    if data is not None:
        root = Path(data)
        if not root.is_dir():
            raise GenrekitError(f"{root}: not a folder (--model head reads <label>/<audio files>; a CSV goes to --manifest)")
        loose = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        if loose:
            notes.append(f"{len(loose)} files directly in {root} are not under a label folder: left out")
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for f in audio_files_under(d):
                rel = f.relative_to(d).parts
                raw.append((f, d.name, rel[0] if len(rel) > 1 else None, None))
    else:
        raw += _read_manifest(Path(manifest))
    if other_folder is not None:
        od = Path(other_folder)
        if not od.is_dir():
            raise GenrekitError(f"{od}: --other-folder is not a folder")
        for f in audio_files_under(od):
            rel = f.relative_to(od).parts
            raw.append((f, OTHER, rel[0] if len(rel) > 1 else None, None))
    names = _merge_labels([r[1] for r in raw], notes)
    songs = [Song(p, names[lab], folder_group=fg, manifest_group=mg) for p, lab, fg, mg in raw if lab in names]
    has_other = any(s.label.casefold() == OTHER for s in songs)
    if has_other and not open_set:
        raise GenrekitError("a label named 'other' is the outside music of an open set: add --open-set "
                            "(or rename that label)")
    if open_set and not has_other:
        raise GenrekitError("--open-set needs songs outside your labels: a label folder (or manifest genre) "
                            "named 'other', or --other-folder DIR")
    for s in songs:
        if s.label.casefold() == OTHER:
            s.label = OTHER
    labels = sorted({s.label for s in songs} - {OTHER})
    if len(labels) < 2:
        raise GenrekitError(f"a head needs at least 2 labels with audio files; found {len(labels)}"
                            + (f" ({labels[0]})" if labels else ""))
    return Dataset(songs, labels, notes)


def _read_manifest(path: Path) -> list[tuple[Path, str, str | None, str | None]]:
    """Rows (path, genre, None, group or None) of an ``input,genre[,group]`` CSV, read by the
    manifest reader ``evaluate --manifest`` uses; rows missing their input or genre are left out."""
    from genrekit.manifest import read_manifest

    rows = [(Path(r.input), r.genre, None, r.group) for r in read_manifest(path) if r.input and r.genre]
    if not rows:
        raise GenrekitError(f"{path}: the manifest lists no songs")
    return rows


def tag_group(path: Path) -> tuple[str, str] | None:
    """("album tag" | "artist tag", value) from the file's tags (mutagen), or None."""
    try:
        import mutagen

        f = mutagen.File(path, easy=True)
    except Exception:  # unreadable tags are no reason to drop a song
        return None
    tags = getattr(f, "tags", None) if f is not None else None
    if not tags:
        return None

    def first(key: str) -> str:
        try:
            v = tags.get(key)
        except Exception:
            return ""
        return str(v[0]).strip() if v else ""

    artist = first("albumartist") or first("artist")
    if first("album"):  # "Greatest Hits" of two artists are two albums
        return "album tag", f"{artist} - {first('album')}" if artist else first("album")
    if artist:
        return "artist tag", artist
    return None


# -- extraction --------------------------------------------------------------------------------------

def head_spec_dict(backbone: str = "musicnn+mn04") -> dict[str, Any]:
    """A head file's ``feature_spec``: the musicnn built-in's spec with the AudioSet window context,
    or for ``mn04`` the AudioSet window spec (``models.audioset_head.AudioSetWindowSpec``)."""
    if backbone == "mn04":
        from genrekit.models.audioset_head import AudioSetWindowSpec

        return AudioSetWindowSpec().to_dict()
    from genrekit.models.base import load_model

    spec = load_model("musicnn").spec.to_dict()
    return dict(spec, context_seconds=AUDIOSET["window_seconds"], context_stride=AUDIOSET["patch_stride"])


def extraction_identity(backbone: str = "musicnn+mn04") -> dict[str, Any]:
    """What the cached rows depend on besides the file: the spec and the backbones' versions."""
    from genrekit.backbones import efficientat

    if backbone == "mn04":
        # "windows": the window rule's version (2: the last window runs to the signal's end)
        return {"v": EXTRACT_VERSION, "windows": 2, "spec": head_spec_dict(backbone),
                "mn04_sha256": efficientat.WEIGHTS_SHA256}
    return {"v": EXTRACT_VERSION, "spec": head_spec_dict(), "musicnn": "MSD_musicnn (musicnn 0.1.0 wheel)",
            "audioset": {k: AUDIOSET[k] for k in ("backbone", "window_seconds", "patch_stride")},
            "mn04_sha256": efficientat.WEIGHTS_SHA256}


class EmbeddingCache:
    """Per-file rows in ``<cache>/features/head/``, keyed by file identity + extraction identity
    (part of the feature cache: ``genrekit cache clear`` removes them)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, backbone: str = "musicnn+mn04") -> None:
        from genrekit.cache import cache_dir

        self.root = Path(root) if root is not None else cache_dir() / "features" / "head"
        self.ident = json.dumps(extraction_identity(backbone), sort_keys=True)
        self.write_error: str | None = None

    def key(self, path: Path) -> str:
        p = path.resolve()
        st = p.stat()
        ident = {"path": str(p), "size": st.st_size, "mtime": st.st_mtime_ns, "ctime": st.st_ctime_ns, "x": self.ident}
        # 40 hex digits, the feature cache's entry names: `genrekit cache info|clear` counts and clears them
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:40]

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, path: Path) -> dict[str, Any] | None:
        f = self._file(self.key(path))
        if not f.is_file():
            return None
        try:
            with np.load(f, allow_pickle=False) as z:
                return {"rows": z["rows"], "audio_sha256": str(z["audio_sha256"]), "seconds": float(z["seconds"])}
        except Exception:  # a damaged entry is extracted again
            return None

    def put(self, path: Path, entry: dict[str, Any]) -> None:
        from genrekit.models.modelfile import atomic_path

        try:
            with atomic_path(self._file(self.key(path)), suffix=".npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, rows=entry["rows"], audio_sha256=np.array(entry["audio_sha256"]),
                         seconds=np.array(entry["seconds"]))
        except OSError as exc:  # a cache that cannot be written costs time, never a song
            self.write_error = f"{self.root}: {exc.strerror or exc}"


def extract_rows(path: Path, audioset_weights: str | None = None, backbone: str = "musicnn+mn04") -> dict[str, Any]:
    """Rows of one file, the ones the model's heads read at prediction, plus a SHA-256 of the
    decoded audio (to find one song filed twice). ``musicnn+mn04``: per patch [n, 50 + 41 + 911]
    (musicnn tags, MFCC slot statistics, mn04 outputs on 10 s windows at every 10th patch, NaN
    between); ``mn04``: per 10 s window [n, 911] (``AudioSetWindowSpec``)."""
    from genrekit.audio import check_signal, load_audio, quiet_native_stderr
    from genrekit.errors import AudioError
    from genrekit.models import audioset as AS
    from genrekit.models.base import load_model

    if backbone == "mn04":
        from genrekit.models.audioset_head import AudioSetWindowSpec

        model, spec = None, AudioSetWindowSpec()
    else:
        model = load_model("musicnn")
        spec = model.spec
    failed: AudioError | None = None
    with quiet_native_stderr() as noise:  # a decoder's own chatter: into the file's one line, if it fails
        try:
            y = load_audio(path, spec.sample_rate, mono=True)
        except AudioError as exc:
            failed = exc
    if failed is not None:
        raise GenrekitError(f"{failed}{noise.note()}") from None
    check_signal(y, spec.sample_rate, path)
    seconds = len(y) / spec.sample_rate
    if seconds > MAX_SECONDS:
        raise GenrekitError(f"{printable(str(path))}: {seconds / 60:.0f} min long; a head learns from songs "
                            f"(at most {MAX_SECONDS // 60} min)")
    if model is None:  # mn04 alone: the spec's pass is the backbone's
        rows = spec.extract(y, weights=audioset_weights).values
    else:
        f = spec.extract(y)
        tags = model.taggram(f.values)
        stats = model.split_values(f.values)[1]
        base = tags if stats is None else np.concatenate([tags, stats.astype(tags.dtype)], axis=1)
        mn = AS.window_rows(y, spec.sample_rate, f.starts, window_s=AUDIOSET["window_seconds"],
                            stride=AUDIOSET["patch_stride"], weights=audioset_weights)
        rows = np.concatenate([base, mn], axis=1).astype(np.float32)
    return {"rows": rows, "audio_sha256": hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest(),
            "seconds": seconds}


class _Progress:
    """The batch progress line (done, failed, rate, ETA), worded for extraction."""

    def __init__(self, total: int, enabled: bool) -> None:
        from genrekit.batch.progress import Progress

        class P(Progress):
            def line(self) -> str:  # noqa: D102 - batch's line, other words
                rate = self.rate_per_min()
                left = self.total - self.done
                from genrekit.batch.progress import _clock

                eta = _clock(left / rate * 60) if rate > 0 else "?"
                return (f"embeddings: {self.done}/{self.total} files ({self.skipped} cached), {self.failed} failed, "
                        f"{rate:.0f} files/min, ETA {eta}")

        self.p = P(total, enabled=enabled)


def extract_all(songs: list[Song], cache: EmbeddingCache | None, log: Log, progress: bool = True,
                audioset_weights: str | None = None, backbone: str = "musicnn+mn04",
                ) -> tuple[list[Song], list[dict[str, Any]]]:
    """(songs kept, their cache entries): cached files are read, the others extracted and written
    to the cache one by one. A file that cannot be read is one line on stderr; the rest go on."""
    entries: list[dict[str, Any] | None] = [None] * len(songs)
    todo = []
    for i, s in enumerate(songs):
        try:
            e = cache.get(s.path) if cache is not None else None
        except OSError as exc:
            print(printable(f"{s.path}: skipped ({exc.strerror or exc})"), file=sys.stderr)
            entries[i] = {}
            continue
        if e is None:
            todo.append(i)
        else:
            entries[i] = e
    cached = len(songs) - len(todo)
    log(f"embeddings: {cached} of {len(songs)} files cached, {len(todo)} to extract")
    bar = _Progress(len(todo), progress and bool(todo)).p
    t0 = time.monotonic()
    for i in todo:
        s = songs[i]
        failed = False
        try:
            e = extract_rows(s.path, audioset_weights, backbone)
        except (KeyboardInterrupt, MemoryError):
            bar.close()
            raise
        except GenrekitError as exc:
            failed = True
            e = {}
            bar.close()
            print(printable(f"skipped: {exc}"), file=sys.stderr)
        except Exception as exc:  # a damaged file the decoders trip over: one line, the rest go on
            failed = True
            e = {}
            bar.close()
            print(printable(f"skipped: {s.path}: cannot read ({type(exc).__name__}: {exc})"[:300]), file=sys.stderr)
        else:
            if cache is not None:
                cache.put(s.path, e)
        entries[i] = e
        bar.row(failed)
    bar.close()
    if todo:
        log(f"embeddings: extracted {len(todo)} files in {time.monotonic() - t0:.1f} s")
    if cache is not None and cache.write_error:
        print(printable(f"note: the embedding cache could not be written ({cache.write_error}): the next run "
                        "extracts again"), file=sys.stderr)
    kept = [(s, e) for s, e in zip(songs, entries, strict=True) if e]
    return [s for s, _ in kept], [e for _, e in kept]


# -- groups, duplicates, checks --------------------------------------------------------------------

def assign_groups(songs: list[Song]) -> Counter:
    """Each song's group: the manifest's ``group``, else its album or artist tag, else the folder
    below its label, else the file itself. Returns how many songs each rule grouped."""
    used: Counter = Counter()
    for s in songs:
        if s.manifest_group:
            s.group, s.group_kind = f"group:{s.manifest_group}", "group column"
        elif (t := tag_group(s.path)) is not None:
            s.group, s.group_kind = f"{t[0]}:{t[1]}", t[0]
        elif s.folder_group:
            s.group, s.group_kind = f"folder:{s.label}/{s.folder_group}", "folder below the label"
        else:
            s.group, s.group_kind = f"file:{s.path}", "file"
        used[s.group_kind] += 1
    return used


def group_name(s: Song) -> str:
    """The group as a user names it (``--always-fit``): the manifest's group value, the album
    ("Artist - Album") or artist tag, the sub-folder's name below the label, or the file's path."""
    if s.group_kind == "folder below the label" and s.folder_group:
        return s.folder_group
    return s.group.split(":", 1)[-1]


def drop_duplicates(songs: list[Song], entries: list[dict[str, Any]], log: Log) -> tuple[list[Song], list[dict[str, Any]]]:
    """The same audio (decoded-signal hash) filed twice: under two labels every copy is dropped
    (which label is right is the user's call), under one label one copy is kept."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        by_hash[e["audio_sha256"]].append(i)
    drop = set()
    for idx in by_hash.values():
        if len(idx) < 2:
            continue
        labels = sorted({songs[i].label for i in idx})
        names = ", ".join(f"{songs[i].path} ({songs[i].label})" for i in idx)
        if len(labels) > 1:
            print(printable(f"warning: the same audio under {len(labels)} labels, all copies dropped: {names}"),
                  file=sys.stderr)
            drop.update(idx)
        else:
            log(printable(f"note: the same audio filed {len(idx)} times under {labels[0]!r}, one kept: {names}"))
            drop.update(idx[1:])
    keep = [i for i in range(len(songs)) if i not in drop]
    return [songs[i] for i in keep], [entries[i] for i in keep]


def check_counts(songs: list[Song], labels: list[str], scored: list[Song] | None = None) -> list[str]:
    """Raise when a label has fewer than ``MIN_FILES`` usable files; return the labels with fewer
    than ``MIN_GROUPS`` groups among the ``scored`` songs (default all; grouped cross-validation
    cannot hold one of them out)."""
    files = Counter(s.label for s in songs)
    few = [lab for lab in [*labels, *([OTHER] if OTHER in files else [])] if files[lab] < MIN_FILES]
    if few:
        raise GenrekitError("too few usable audio files: " + ", ".join(f"{lab!r} has {files[lab]}" for lab in few)
                            + f"; a head needs at least {MIN_FILES} per label (and {MIN_GROUPS} albums, artists or "
                            "sub-folders per label for cross-validation)")
    groups = defaultdict(set)
    for s in songs if scored is None else scored:
        groups[s.label].add(s.group)
    for lab in [*labels, *([OTHER] if OTHER in files else [])]:
        groups.setdefault(lab, set())
    return [lab for lab in sorted(groups) if len(groups[lab]) < MIN_GROUPS]


# -- features and fitting -------------------------------------------------------------------------

#: Timeline segments see windows of 1-3 patches; the segment head learns from such windows.
SEGMENT_PATCHES = (1, 2, 3)
SEGMENTS_PER_SONG = 8


@dataclass
class Features:
    """Per song: musicnn window features [windows, 150], the raw musicnn tags [patches, 50] (for
    the timeline's segment head), the AudioSet head features [911] and the mean mn04 row [911]
    (for the zero-shot vote); for an mn04-only head (``msd`` and ``tags`` empty) also each
    window's row [windows, 911] (the timeline's segments)."""

    msd: list[np.ndarray]
    aset: np.ndarray
    tags: list[np.ndarray]
    mean: np.ndarray
    windows: list[np.ndarray] = field(default_factory=list)

    @property
    def mn04_only(self) -> bool:
        return not self.msd


def song_features(entries: list[dict[str, Any]], backbone: str = "musicnn+mn04") -> Features:
    from genrekit.models import audioset as AS
    from genrekit.models.default import N_TAGS, long_input_windows, window_features

    if backbone == "mn04":
        wins = [np.asarray(e["rows"], np.float64) for e in entries]
        means = np.stack([AS.track_features(w) for w in wins])
        return Features([], AS.head_features(means, AUDIOSET["feature"]), [], means,
                        [w[~np.isnan(w).any(axis=1)] for w in wins])
    msd, aset, tags_all, means = [], [], [], []
    for e in entries:
        rows = e["rows"]
        tags = rows[:, :N_TAGS]
        msd.append(np.stack([window_features(tags[w], "ms_lm")
                             for w in long_input_windows(len(tags), WINDOW, WINDOW_HOP)]))
        mean = AS.track_features(rows[:, -AS.ROW :])
        aset.append(AS.head_features(mean, AUDIOSET["feature"]))
        tags_all.append(np.asarray(tags, np.float32))
        means.append(mean)
    return Features(msd, np.stack(aset), tags_all, np.stack(means))


def _fit_lr(X: np.ndarray, y: np.ndarray, C: float, n: int, w: np.ndarray | None = None,
            balanced: bool = True) -> dict[str, np.ndarray]:
    """``fit_logistic``; a class absent from this fit (a fold that held all its songs out) gets a
    bias that no song reaches, so it is never answered."""
    from genrekit.heads.logistic import fit_logistic

    present = np.unique(y)
    if len(present) == n:
        return fit_logistic(X, y, C=C, n_classes=n, sample_weight=w, balanced=balanced)
    remap = {c: i for i, c in enumerate(present)}
    m = fit_logistic(X, np.array([remap[c] for c in y]), C=C, n_classes=len(present), sample_weight=w,
                     balanced=balanced)
    w1 = np.zeros((n, m["w1"].shape[1]), np.float32)
    b1 = np.full(n, -1e4, np.float32)
    w1[present], b1[present] = m["w1"], m["b1"]
    return {"w1": w1, "b1": b1, "mu": m["mu"], "sigma": m["sigma"]}


def fit_heads(F: Features, y: np.ndarray, idx: np.ndarray, C: float, n: int,
              balanced: bool = True) -> tuple[dict | None, dict]:
    """(musicnn LR on window rows weighted 1/windows, AudioSet LR) fitted on songs ``idx``
    (no musicnn LR, None, for an mn04-only head: :func:`fit_window_head`)."""
    if F.mn04_only:
        return None, fit_window_head(F, y, idx, C, n, balanced)
    X = np.concatenate([F.msd[i] for i in idx])
    Y = np.concatenate([[y[i]] * len(F.msd[i]) for i in idx])
    W = np.concatenate([[1.0 / len(F.msd[i])] * len(F.msd[i]) for i in idx])
    return _fit_lr(X, Y, C, n, W, balanced), _fit_lr(F.aset[idx], y[idx], C, n, balanced=balanced)


def fit_window_head(F: Features, y: np.ndarray, idx: np.ndarray, C: float, n: int,
                    balanced: bool = True) -> dict[str, np.ndarray]:
    """The mn04-only head: one LR on every 10 s window's row of the songs ``idx``, each song's
    windows weighted 1/windows in the loss (every song counts once, as in a track-mean fit, so C
    keeps its meaning; the standardisation's mean and spread are over the window rows, so songs
    with many windows pull those a little more). The model applies it to the mean row for the track
    and to each window's row for the timeline: trained on windows, it has seen the single-window
    rows a timeline segment gives, and three times as many rows as songs. Under leave-one-source-out
    CV it read 0.683 against 0.669 for the same LR on track means, "other" 56.1% / 13.1% against
    55.1% / 14.5%, and timeline windows 0.650 against 0.627 (docs/model_card.md)."""
    from genrekit.models import audioset as AS

    kept = [i for i in idx if len(F.windows[i])]
    X = np.concatenate([F.windows[i] for i in kept])
    Y = np.concatenate([np.full(len(F.windows[i]), y[i]) for i in kept])
    W = np.concatenate([np.full(len(F.windows[i]), 1.0 / len(F.windows[i])) for i in kept])
    return _fit_lr(AS.head_features(X, AUDIOSET["feature"]), Y, C, n, W, balanced)


def fit_segment_head(F: Features, y: np.ndarray, idx: np.ndarray, C: float, n: int,
                     balanced: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """A musicnn LR on what a timeline segment sees: random windows of 1-3 patches of every song
    in ``idx`` (``SEGMENTS_PER_SONG`` each, a fixed seed), so a segment is judged by a head that
    learnt from windows its length rather than from whole-track statistics."""
    from genrekit.models.default import window_features

    rng = np.random.default_rng(seed)
    X, Y = [], []
    for i in idx:
        t = F.tags[i]
        for _ in range(SEGMENTS_PER_SONG):
            k = int(rng.choice(SEGMENT_PATCHES))
            s = int(rng.integers(0, max(1, len(t) - k + 1)))
            X.append(window_features(t[s : s + k], "ms_lm"))
            Y.append(y[i])
    return _fit_lr(np.array(X), np.array(Y), C, n, balanced=balanced)


def segment_windows_features(tags: np.ndarray) -> np.ndarray:
    """[patches, 150] the ``ms_lm`` features of each patch's timeline window (itself and one
    neighbour each side), as ``models.default`` computes them for a timeline."""
    from genrekit.models.default import segment_windows, window_features

    return np.stack([window_features(tags[w], "ms_lm") for w in segment_windows(len(tags), 1)])


def segment_oof_scores(F: Features, y: np.ndarray, folds: list, C: float, n: int,
                       balanced: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(in-set score 1 - p(other) of every timeline window of every held-out song, the song each
    belongs to): the open segment head fitted on the other folds, so the timeline's threshold is
    chosen on windows its head never saw."""
    from genrekit.heads import logistic as LR

    scores, owner = [], []
    for _, fit_idx, held in folds:
        head = fit_segment_head(F, y, fit_idx, C, n, balanced)
        for i in held:
            p = LR.probs(head, segment_windows_features(F.tags[i]))
            scores.append(1.0 - p[:, -1])
            owner.append(np.full(len(p), i))
    return np.concatenate(scores), np.concatenate(owner)


def window_oof_scores(F: Features, fold_heads: list[dict[str, np.ndarray]], folds: list, labels: list[str],
                      gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """An mn04-only head's timeline: (in-set score of every window of every held-out song, the
    song each belongs to), each from the head fitted on the other folds (``fold_heads``, one per
    fold: the cross-validation's own fits) and applied to the window's row on its own, as the
    model file does for a segment."""
    from genrekit.models.audioset_head import head_probs

    scores, owner = [], []
    for head, (_, _, held) in zip(fold_heads, folds, strict=True):
        for i in held:
            p = head_probs(head, F.windows[i], labels, gamma, AUDIOSET["feature"])
            scores.append(1.0 - p[:, -1])
            owner.append(np.full(len(p), i))
    return np.concatenate(scores), np.concatenate(owner)


def component_probs(heads: tuple[dict, dict], F: Features, idx: np.ndarray, alpha: float, labels: list[str],
                    gamma: float = 0.0) -> dict[str, np.ndarray]:
    """Probabilities [len(idx), classes] of the model (``model``, what the model file computes)
    and of its parts: each head alone, the two heads mixed without the zero-shot vote, and (with
    ``gamma``) the model without musicnn (mn04's head and its vote: the cheap backbone alone) and
    mn04's zero-shot vote alone over the labels."""
    from genrekit.heads import logistic as LR
    from genrekit.heads.fusion import mix, zero_shot_vote
    from genrekit.models import audioset as AS

    pb = LR.probs(heads[1], F.aset[idx])
    if heads[0] is None:  # mn04 alone: its head, its zero-shot vote, and the two (what the file computes)
        from genrekit.models.audioset_head import head_probs

        out = {"audioset": pb, "model": head_probs(heads[1], F.mean[idx], labels, gamma, AUDIOSET["feature"])}
        if gamma:
            out["zero_shot"] = np.exp(AS.zero_shot_logp(F.mean[idx], labels))
        return out
    pa = np.stack([LR.probs(heads[0], F.msd[i]).mean(0) for i in idx])
    out = {"musicnn": pa, "audioset": pb, "both": mix(pa, pb, alpha, len(labels))}
    out["model"] = out["both"]
    if gamma:
        zs = AS.zero_shot_logp(F.mean[idx], labels)
        out["model"] = mix(pa, pb, alpha, len(labels), zs, gamma)
        out["audioset_zero_shot"] = zero_shot_vote(pb, len(labels), zs, gamma)  # the model without musicnn
        out["zero_shot"] = np.exp(zs)
    return out


#: The parts' names in CV tables.
COMPONENT_NAMES = {"musicnn": "musicnn head alone", "audioset": "AudioSet (mn04) head alone",
                   "both": "both heads mixed", "audioset_zero_shot": "mn04 head + zero-shot (no musicnn)",
                   "zero_shot": "mn04 zero-shot (no training)", "model": "the model"}


def folds_for(groups: np.ndarray, k: int, fixed: np.ndarray | None = None,
              ) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], str]:
    """Leave one group out when ``k`` is 0 or there are at most ``k`` groups, else whole groups
    dealt into ``k`` folds; rows flagged ``fixed`` are in every fit and never held out."""
    from genrekit.heads.validation import grouped_k_folds, leave_one_group_out

    scored = groups if fixed is None else groups[~fixed]
    n_groups = len(set(scored.tolist()))
    if k == 0 or n_groups <= k:
        return list(leave_one_group_out(groups, fixed)), f"leave one group out ({n_groups} folds)"
    return list(grouped_k_folds(groups, k, fixed)), f"{k} folds of whole groups ({n_groups} groups)"


def cross_validate(F: Features, y: np.ndarray, groups: np.ndarray, n: int, Cs: Sequence[float], k: int,
                   alpha: float, labels: list[str], gamma: float = 0.0, balanced: bool = True,
                   fixed: np.ndarray | None = None, progress: Callable[[int, int], None] | None = None,
                   fold_heads: dict[float, list] | None = None,
                   ) -> tuple[dict[float, dict[str, np.ndarray]], str, list]:
    """Out-of-fold probabilities of the model and its parts (:func:`component_probs`) for every C
    in ``Cs`` (``labels``: the user's, without "other"); rows never held out (``fixed``) stay NaN.
    ``fold_heads``, when given, receives each C's fitted heads, one per fold (the timeline's
    out-of-fold scores reuse them instead of fitting again)."""
    folds, protocol = folds_for(groups, k, fixed)
    out: dict[float, dict[str, np.ndarray]] = {C: {} for C in Cs}
    for k_done, (_, fit_idx, held) in enumerate(folds):
        if progress is not None:
            progress(k_done, len(folds))
        for C in Cs:
            heads = fit_heads(F, y, fit_idx, C, n, balanced)
            if fold_heads is not None:
                fold_heads.setdefault(C, []).append(heads)
            parts = component_probs(heads, F, held, alpha, labels, gamma)
            for name, P in parts.items():
                dest = out[C].setdefault(name, np.full((len(y), P.shape[1]), np.nan))
                dest[held] = P
    return out, protocol, folds


def evaluate_oof(P: np.ndarray, y: np.ndarray, groups: np.ndarray, n_labels: int, folds: list,
                 max_false: float, open_set: bool, scored: np.ndarray | None = None) -> dict[str, Any]:
    """Closed-set scores of the user's labels over the ``scored`` rows (held out once; default
    all), and with an open set the answers of thresholds picked on the other folds only, and the
    in-set score's AUROC."""
    from genrekit.heads.openset import pick_threshold
    from genrekit.heads.validation import auroc, bootstrap_interval, scores

    scored = np.ones(len(y), bool) if scored is None else np.asarray(scored, bool)
    if np.isnan(P[scored]).any():
        raise ValueError("out-of-fold probabilities missing for scored songs")
    inside = (y < n_labels) & scored
    outside = (y >= n_labels) & scored
    closed = np.where(scored[:, None], P, 0)[:, :n_labels].argmax(1)
    s = scores(y[inside], closed[inside], n_labels)
    lo, hi = bootstrap_interval((closed[inside] == y[inside]).astype(float), groups[inside])
    out: dict[str, Any] = {"cv": {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"], "n": s["n"],
                                  "accuracy_ci95_over_groups": [lo, hi], "confusion": s["confusion"]}}
    if open_set and P.shape[1] > n_labels:
        score = np.where(scored, 1 - P[:, -1], np.nan)
        answer = closed.copy()
        for _, _, held in folds:
            rest = np.ones(len(y), bool)
            rest[held] = False
            t = pick_threshold(score[rest & inside], score[rest & outside], max_false)
            answer[held[score[held] < t]] = n_labels
        so = scores(y[scored], answer[scored], n_labels + 1)
        out["cv_open_set"] = {"accuracy": so["accuracy"], "macro_f1": so["macro_f1"], "n": so["n"],
                              "confusion": so["confusion"]}
        out["other_caught"] = float((answer[outside] == n_labels).mean())
        out["in_set_called_other"] = float((answer[inside] == n_labels).mean())
        # the spread a new set of sources would show (groups resampled), as for the accuracy
        out["other_caught_ci95_over_groups"] = list(bootstrap_interval(
            (answer[outside] == n_labels).astype(float), groups[outside]))
        out["in_set_called_other_ci95_over_groups"] = list(bootstrap_interval(
            (answer[inside] == n_labels).astype(float), groups[inside]))
        out["auroc_other"] = auroc(-score[outside], -score[inside])
    return out


def component_table(parts: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray, n_labels: int, folds: list,
                    max_false: float, open_set: bool, scored: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """{part's name: its CV figures} on the same folds (each backbone alone beside the model)."""
    table = {}
    for key, P in parts.items():
        r = evaluate_oof(P, y, groups, n_labels, folds, max_false, open_set, scored)
        row = {k: r["cv"][k] for k in ("accuracy", "macro_f1", "n", "accuracy_ci95_over_groups")}
        if "other_caught" in r:
            row |= {"open_set_accuracy": r["cv_open_set"]["accuracy"], "other_caught": r["other_caught"],
                    "in_set_called_other": r["in_set_called_other"], "auroc_other": r["auroc_other"]}
        table[COMPONENT_NAMES[key]] = row
    return table


# -- the whole command ------------------------------------------------------------------------------

@dataclass
class HeadOptions:
    data: str | None = None
    manifest: str | None = None
    out: str = "."
    open_set: bool = False
    other_folder: str | None = None
    Cs: tuple[float, ...] = C_GRID
    folds: int = 5  # 0: leave one group out
    max_false_other: float = 0.15
    alpha: float = AUDIOSET["alpha"]
    use_cache: bool = True
    progress: bool = True
    audioset_weights: str | None = None
    class_weight: str = "balanced"  # or "none": each song counts once
    zero_shot_weight: float = 0.0
    always_fit: tuple[str, ...] = ()  # groups in every fit, never scored (a reference collection)
    name: str | None = None
    backbone: str = "musicnn+mn04"  # or "mn04" (BACKBONES)


def _check_zero_shot(labels: list[str], gamma: float) -> None:
    from genrekit.models import audioset as AS

    if gamma < 0:
        raise GenrekitError(f"--zero-shot-weight must be >= 0 (got {gamma:g})")
    missing = [lab for lab in labels if AS.zero_shot_class(lab) is None]
    if gamma and missing:
        raise GenrekitError("--zero-shot-weight needs every label to name an AudioSet genre class; "
                            f"none is named like {', '.join(map(repr, missing))} (see `genrekit predict --tags audioset`)")


def train_head(opt: HeadOptions, log: Log = print) -> dict[str, Any]:
    """Find the songs, extract (or read cached) rows, cross-validate, fit and write OUT/model.safetensors."""
    ds = find_songs(opt.data, opt.manifest, opt.other_folder, opt.open_set)
    for note in ds.notes:
        log(printable(f"note: {note}"))
    if opt.class_weight not in ("balanced", "none"):
        raise GenrekitError(f"--class-weight is balanced or none (got {opt.class_weight!r})")
    if opt.backbone not in BACKBONES:
        raise GenrekitError(f"--backbone is {' or '.join(BACKBONES)} (got {opt.backbone!r})")
    mn04_only = opt.backbone == "mn04"
    _check_zero_shot(ds.labels, opt.zero_shot_weight)
    log(f"songs: {len(ds.songs)} audio files, labels: {', '.join(ds.labels)}"
        + (f" + {sum(s.label == OTHER for s in ds.songs)} outside them ('other')" if opt.open_set else ""))
    cache = EmbeddingCache(backbone=opt.backbone) if opt.use_cache else None
    songs, entries = extract_all(ds.songs, cache, log, opt.progress, opt.audioset_weights, opt.backbone)
    songs, entries = drop_duplicates(songs, entries, log)
    used = assign_groups(songs)
    log("groups: " + ", ".join(f"{n} songs by {k}" for k, n in used.most_common())
        + f" ({len({s.group for s in songs})} groups)")
    names = [group_name(s) for s in songs]
    fixed = np.array([n in opt.always_fit for n in names], bool)
    if opt.always_fit:
        unknown = sorted(set(opt.always_fit) - set(names))
        if unknown:
            known = sorted(set(names))
            raise GenrekitError(f"--always-fit: no song is in group {', '.join(map(repr, unknown))}; groups here "
                                f"(by {', '.join(used)}): {', '.join(map(repr, known[:6]))}"
                                + (f" and {len(known) - 6} more" if len(known) > 6 else ""))
        log(f"always in the fit, never scored: {int(fixed.sum())} songs of {', '.join(opt.always_fit)}")
    scored_songs = [s for s, f in zip(songs, fixed, strict=True) if not f]
    unscored = sorted({s.label for s in songs} - {s.label for s in scored_songs})
    if unscored:
        raise GenrekitError(f"{', '.join(map(repr, unscored))}: every song is in an --always-fit group, so "
                            "cross-validation can never score that label; add songs of it outside those groups")
    one_group = check_counts(songs, ds.labels, scored_songs)
    head_labels = ds.labels + ([OTHER] if opt.open_set else [])
    n = len(head_labels)
    balanced = opt.class_weight == "balanced"
    y = np.array([head_labels.index(s.label) for s in songs])
    groups = np.array([s.group for s in songs])
    counts = Counter(s.label for s in songs)
    log("files per label: " + ", ".join(f"{lab} {counts[lab]}" for lab in head_labels))
    if max(counts.values()) > 2 * min(counts.values()):
        log("note: unbalanced labels: macro-F1 is reported beside accuracy"
            + ("; classes are weighted by 1/count (balanced)" if balanced else "; every song counts once (--class-weight none)"))
    F = song_features(entries, opt.backbone)
    metrics: dict[str, Any] = {}
    C = 0.03 if 0.03 in opt.Cs else opt.Cs[len(opt.Cs) // 2]
    cv_note = None
    thresholds = {"fused": 0.5, "musicnn": 0.5, "segment": 0.5}
    if one_group:
        cv_note = (f"no cross-validation: {', '.join(repr(g) for g in one_group)} "
                   f"{'has' if len(one_group) == 1 else 'have'} songs of one group (album, artist or sub-folder) "
                   f"only; add songs from another to get CV figures (C fixed at {C})")
        print(printable(f"warning: {cv_note}"), file=sys.stderr)
        if opt.open_set:
            raise GenrekitError("--open-set chooses its threshold by cross-validation: every label needs songs of "
                                f"{MIN_GROUPS} groups ({', '.join(one_group)} has one)")
    else:
        t0 = time.monotonic()
        fold_heads: dict[float, list] = {}
        oof, protocol, folds = cross_validate(F, y, groups, n, opt.Cs, opt.folds, opt.alpha, ds.labels,
                                              opt.zero_shot_weight, balanced, fixed, _fold_line if opt.progress else None,
                                              fold_heads)
        if opt.progress:
            _fold_line(len(folds), len(folds), end="\n")
        by_C = {c: evaluate_oof(oof[c]["model"], y, groups, len(ds.labels), folds, opt.max_false_other, opt.open_set,
                                ~fixed) for c in opt.Cs}
        C = max(opt.Cs, key=lambda c: (by_C[c]["cv"]["macro_f1"], by_C[c]["cv"]["accuracy"], -abs(np.log(c / 0.03))))
        metrics = dict(by_C[C])
        metrics["cv_by_C"] = {f"C={c}": {k: by_C[c]["cv"][k] for k in ("accuracy", "macro_f1", "n")} for c in opt.Cs}
        chosen = (f"C chosen on these folds from {list(opt.Cs)} (so the chosen figure is slightly optimistic)"
                  if len(opt.Cs) > 1 else f"C fixed at {C}")
        metrics["cv_protocol"] = (f"grouped cross-validation, {protocol}"
                                  + (f", {int(fixed.sum())} songs of {', '.join(opt.always_fit)} in every fit and never "
                                     "scored" if fixed.any() else "")
                                  + ("; 'other' thresholds chosen on the other folds" if opt.open_set else "")
                                  + f"; {chosen}")
        metrics["cv_components"] = component_table(oof[C], y, groups, len(ds.labels), folds, opt.max_false_other,
                                                   opt.open_set, ~fixed)
        log(f"cross-validation ({protocol}, {time.monotonic() - t0:.1f} s):")
        for c in opt.Cs if len(opt.Cs) > 1 else ():
            r = by_C[c]["cv"]
            log(f"  C={c:<6g} accuracy {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}" + ("  <- chosen" if c == C else ""))
        for name, r in metrics["cv_components"].items():
            lo, hi = r["accuracy_ci95_over_groups"]
            line = f"  {name:36s} accuracy {r['accuracy']:.3f} [{lo:.2f}-{hi:.2f}]  macro-F1 {r['macro_f1']:.3f}"
            if "other_caught" in r:
                line += (f" | with 'other' {r['open_set_accuracy']:.3f}, outside caught {r['other_caught']:.1%}, "
                         f"inside called other {r['in_set_called_other']:.1%}, AUROC {r['auroc_other']:.3f}")
            log(line)
        r = metrics["cv"]
        lo, hi = r["accuracy_ci95_over_groups"]
        log(f"grouped CV (C={C}): accuracy {r['accuracy']:.3f} [95% over groups {lo:.2f}-{hi:.2f}], "
            f"macro-F1 {r['macro_f1']:.3f}, n={r['n']}")
        from genrekit.cli.info import confusion_lines

        log("confusion (rows true, columns predicted):")
        for line in confusion_lines(ds.labels, r["confusion"]):
            log(line)
        if opt.open_set:
            from genrekit.heads.openset import pick_threshold

            scored = ~fixed
            inside, outside = scored & (y < len(ds.labels)), scored & (y >= len(ds.labels))
            P, Pa = oof[C]["model"], oof[C].get("musicnn")
            if mn04_only:
                seg_scores, seg_song = window_oof_scores(F, [h[1] for h in fold_heads[C]], folds, ds.labels,
                                                         opt.zero_shot_weight)
            else:
                seg_scores, seg_song = segment_oof_scores(F, y, folds, C, n, balanced)
            seg_in = inside[seg_song]
            thresholds = {"fused": pick_threshold(1 - P[inside, -1], 1 - P[outside, -1], opt.max_false_other),
                          "segment": pick_threshold(seg_scores[seg_in], seg_scores[outside[seg_song]],
                                                    opt.max_false_other)}
            if Pa is not None:
                thresholds["musicnn"] = pick_threshold(1 - Pa[inside, -1], 1 - Pa[outside, -1], opt.max_false_other)
            (c_lo, c_hi), (f_lo, f_hi) = (metrics["other_caught_ci95_over_groups"],
                                          metrics["in_set_called_other_ci95_over_groups"])
            log(f"open set (thresholds chosen on the other folds): {metrics['other_caught']:.1%} of outside songs "
                f"answered 'other' [95% over groups {c_lo:.0%}-{c_hi:.0%}], {metrics['in_set_called_other']:.1%} "
                f"of your labels' songs wrongly so [{f_lo:.0%}-{f_hi:.0%}]; "
                f"accuracy with 'other' {metrics['cv_open_set']['accuracy']:.3f}; AUROC {metrics['auroc_other']:.3f}")
    everything = np.arange(len(y))
    heads = fit_heads(F, y, everything, C, n, balanced)
    inside_songs = everything[y < len(ds.labels)]
    segment = None if mn04_only else fit_segment_head(F, y, inside_songs, C, len(ds.labels), balanced)
    open_segment = fit_segment_head(F, y, everything, C, n, balanced) if opt.open_set and not mn04_only else None
    source = Path(opt.data).resolve() if opt.data else Path(opt.manifest).resolve()
    training = {
        "data": {"songs": int(sum(lab != OTHER for lab in counts.elements())),
                 **({"songs_outside_labels": counts[OTHER]} if opt.open_set else {}),
                 "groups": len(set(groups.tolist())), "per_label": {lab: counts[lab] for lab in head_labels},
                 "groups_by": dict(used), **({"always_in_fit": {g: int(sum(1 for s, f in zip(songs, fixed, strict=True)
                                                                           if f and s.group.split(":", 1)[-1] == g))
                                                               for g in opt.always_fit}} if opt.always_fit else {})},
        "source": str(source),
        "config": ({"model": ("a StandardScaler + multinomial logistic regression fitted on mn04's window rows (each song's "
                              "windows weighted 1/windows), applied to the mean window row")
                             + (" (balanced class weights)" if balanced else "")
                             + (", mn04's zero-shot genre vote" if opt.zero_shot_weight else ""),
                    "backbone": opt.backbone, "audioset_features": AUDIOSET["feature"], "C": C,
                    "zero_shot_weight": opt.zero_shot_weight, "class_weight": opt.class_weight} if mn04_only else
                   {"model": "two StandardScaler + multinomial logistic regressions"
                             + (" (balanced class weights)" if balanced else "") + ", mixed on the log scale"
                             + (", mn04's zero-shot genre vote" if opt.zero_shot_weight else ""),
                    "backbone": opt.backbone, "musicnn_features": "ms_lm of 29-patch windows",
                    "audioset_features": AUDIOSET["feature"], "C": C, "alpha": opt.alpha,
                    "zero_shot_weight": opt.zero_shot_weight, "class_weight": opt.class_weight}),
        "cv_protocol": metrics.get("cv_protocol") or cv_note,
        "script": "genrekit train --model head",
        # `genrekit evaluate` flags these songs (by content hash) as in-sample, whatever they are called then
        "fit_files": fit_files(songs, source if source.is_dir() else source.parent),
    }
    if mn04_only:
        path = write_audioset_head(Path(opt.out), ds.labels, head_labels, heads[1], thresholds, opt, training, metrics)
    else:
        path = write_head(Path(opt.out), ds.labels, head_labels, (heads[0], heads[1], segment, open_segment),
                          thresholds, opt, training, metrics)
    log(f"wrote {path}")
    return {"path": str(path), "C": C, "metrics": metrics, "training": training}


def _fold_line(done: int, total: int, end: str = "") -> None:
    """The cross-validation's progress on stderr (56 folds of two fits take minutes on 2 cores)."""
    print(f"\rcross-validation: {done}/{total} folds", end=end, file=sys.stderr, flush=True)


def fit_files(songs: list[Song], root: Path | None = None) -> list[dict[str, str]]:
    """``{"path", "sha256"}`` of the file bytes of every song in the fit (``manifest.in_fit`` reads
    it); paths relative to ``root`` (the training folder or the manifest's) when under it."""
    from genrekit.manifest import _sha256

    def shown(p: Path) -> str:
        if root is not None:
            try:
                return str(p.resolve().relative_to(root.resolve()))
            except ValueError:
                pass
        return str(p)

    return [{"path": shown(s.path), "sha256": h} for s in songs if (h := _sha256(s.path))]


def write_head(out: Path, labels: list[str], head_labels: list[str], heads: tuple[dict, dict, dict, dict | None],
               thresholds: dict[str, float], opt: HeadOptions, training: dict, metrics: dict) -> Path:
    """A ``genrekit-musicnn-head`` model file: the musicnn LR (track head), the AudioSet LR, the
    segment heads the timeline reads (closed, and with "other" when open), thresholds."""
    from genrekit.models.default import FORMAT
    from genrekit.models.modelfile import save_model_file

    msd, aset, seg, open_seg = heads
    tensors = {f"track.m0.{k}": v for k, v in msd.items()} | {f"segment.m0.{k}": v for k, v in seg.items()}
    tensors |= {f"audioset.m0.{k}": v for k, v in aset.items()}
    if open_seg is not None:
        tensors |= {f"open.m0.{k}": v for k, v in open_seg.items()}
    from genrekit.backbones.efficientat import LICENCE

    per = ", ".join(f"{lab} {n}" for lab, n in training["data"]["per_label"].items())
    audioset = {k: AUDIOSET[k] for k in ("backbone", "window_seconds", "patch_stride", "feature")} | {"alpha": opt.alpha}
    if opt.zero_shot_weight:
        audioset["zero_shot_weight"] = opt.zero_shot_weight
    meta = {
        "format": FORMAT, "name": opt.name or f"head on {Path(training['source']).name}",
        "description": (
            f"Your own genres: a head trained by `genrekit train --model head` on {training['source']} "
            f"({per}) over the default model's pretrained backbones, musicnn MSD_musicnn (ISC) per 3 s "
            f"patch and EfficientAT mn04_as ({LICENCE}) per 10 s window."),
        "backbone": "MSD_musicnn", "labels": labels, "track_head_labels": head_labels,
        "feature_spec": head_spec_dict(), "track_feature_kind": "ms_lm", "segment_feature_kind": "ms_lm",
        "segment_half_window": 1, "track_window_patches": WINDOW, "track_window_hop": WINDOW_HOP,
        "audioset": audioset,
        "backbones": {"musicnn": "MSD_musicnn (ISC licence, musicnn 0.1.0 wheel)", "audioset": f"efficientat_mn04 ({LICENCE})"},
        "open_set": ({"other_label": OTHER, "segment_feature_kind": "ms_lm", "fused_threshold": thresholds["fused"],
                      "track_threshold": thresholds["musicnn"], "segment_threshold": thresholds["segment"],
                      "max_false_other": opt.max_false_other,
                      "score": "in_set = 1 - p(other) of the mixed heads (of the musicnn track head for stored "
                               "taggrams, of the segment head for timeline windows), recalibrated so that 0.5 is the "
                               "threshold chosen on out-of-fold scores"}
                     if opt.open_set else {}),
        "training": training, "metrics": metrics,
    }
    import torch

    path = out / "model.safetensors"
    save_model_file(path, {k: torch.from_numpy(np.array(v, np.float32, copy=True)) for k, v in tensors.items()}, meta)
    return path


def write_audioset_head(out: Path, labels: list[str], head_labels: list[str], head: dict,
                        thresholds: dict[str, float], opt: HeadOptions, training: dict, metrics: dict) -> Path:
    """A ``genrekit-audioset-head`` model file (``models.audioset_head``): the AudioSet LR, the
    zero-shot weight, the thresholds of the track and of single windows (the timeline)."""
    from genrekit.backbones.efficientat import LICENCE
    from genrekit.models.audioset_head import FORMAT
    from genrekit.models.modelfile import save_model_file

    per = ", ".join(f"{lab} {n}" for lab, n in training["data"]["per_label"].items())
    meta = {
        "format": FORMAT, "name": opt.name or f"head on {Path(training['source']).name}",
        "description": (
            f"Your own genres: a head trained by `genrekit train --model head --backbone mn04` on "
            f"{training['source']} ({per}) over EfficientAT mn04_as ({LICENCE}) per 10 s window."),
        "backbone": AUDIOSET["backbone"], "labels": labels, "track_head_labels": head_labels,
        "feature_spec": head_spec_dict("mn04"),
        "audioset": {"backbone": AUDIOSET["backbone"], "feature": AUDIOSET["feature"],
                     "zero_shot_weight": opt.zero_shot_weight},
        "backbones": {"audioset": f"efficientat_mn04 ({LICENCE})"},
        "open_set": ({"other_label": OTHER, "fused_threshold": thresholds["fused"],
                      "segment_threshold": thresholds["segment"], "max_false_other": opt.max_false_other,
                      "score": "in_set = 1 - p(other) of the head on the track's mean row (of each window's own row "
                               "for the timeline), recalibrated so that 0.5 is the threshold chosen on out-of-fold "
                               "scores"} if opt.open_set else {}),
        "training": training, "metrics": metrics,
    }
    import torch

    path = out / "model.safetensors"
    save_model_file(path, {f"audioset.m0.{k}": torch.from_numpy(np.array(v, np.float32, copy=True))
                           for k, v in head.items()}, meta)
    return path
