"""Datasets: labelled audio folders, precomputed feature tables, notebook arrays, musicnn taggrams.

Every loader returns a `DataBundle`: train/val/test `Split`s of feature rows with integer labels
and a track id per row (`groups`). Splitting is always by track, so segments of one track never
land in two splits. Split lists in the GTZAN "fault-filtered" format (`<genre>/<file>` per line)
are matched by genre and file stem, so `blues.00009.wav` in a list finds `blues.00009.au` on
disk. Unreadable or missing files are reported in `bundle.skipped` and never stop a run.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrekit.audio import is_audio_path
from genrekit.errors import BackboneWeightsError, GenrekitError, detail

SPLITS = ("train", "val", "test")
_LIST_NAMES = {
    "train": ("train_filtered.txt", "train.txt"),
    "val": ("valid_filtered.txt", "val_filtered.txt", "valid.txt", "val.txt"),
    "test": ("test_filtered.txt", "test.txt"),
}
CSV_META_COLUMNS = ("filename", "length", "label")


class DatasetError(GenrekitError):
    """A data path that cannot be used as a dataset."""


@dataclass
class Split:
    """Rows of one split: X [n, ...] float32, y [n] int64, groups [n] track ids."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_tracks(self) -> int:
        return len(np.unique(self.groups)) if len(self.groups) else 0


@dataclass
class DataBundle:
    """A dataset ready for training: splits, label names, the feature spec and a report."""

    kind: str  # "arrays" | "table" | "taggram" | "audio"
    labels: list[str]
    splits: dict[str, Split]
    spec: dict  # a FeatureSpec dict, or {"kind": "table", ...} for precomputed tables
    unit: str  # what one row is: "segment" or "track"
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    notes: list[str] = field(default_factory=list)
    #: False when rows carry no track ids (the notebook's arrays: every row is its own group), so
    #: a count of "tracks" would only repeat the row count under a wrong name.
    track_ids: bool = True

    def track_counts(self) -> dict[str, int] | None:
        """Tracks per split, or None when the data hold no track ids."""
        return {k: s.n_tracks for k, s in self.splits.items()} if self.track_ids else None

    @property
    def grouped(self) -> bool:
        """True when several rows share a track, so track-level metrics mean something."""
        return self.unit == "segment" and any(
            s.n_tracks < len(s) for s in self.splits.values() if len(s))

    def summary(self) -> dict:
        return {
            "kind": self.kind, "unit": self.unit, "labels": self.labels,
            "splits": {k: {"rows": len(s), "tracks": s.n_tracks if self.track_ids else None,
                           "per_label": {self.labels[i]: int(c) for i, c in sorted(Counter(s.y.tolist()).items())}}
                       for k, s in self.splits.items()},
            "skipped": self.skipped, "notes": self.notes,
        }


# Split lists and splitting --------------------------------------------------------------------------

def track_key(path: str | os.PathLike[str]) -> str:
    """`genre/stem` of `.../genre/stem.ext` (what split lists and file names are matched on)."""
    p = Path(str(path).replace("\\", "/"))
    return f"{p.parent.name}/{p.stem}" if p.parent.name else p.stem


def clip_by_stem(root: str | os.PathLike[str], key: str) -> Path:
    """The audio file for a track key `genre/stem` (or a listed `genre/stem.wav`) under a GTZAN-like
    root, whatever its extension: data sets change format (GTZAN's WAVs become FLAC) but keep stems.

    Raises DatasetError naming the key when no audio file has that stem.
    """
    p = Path(str(key).replace("\\", "/"))
    stem = p.stem if is_audio_path(p) else p.name  # "rock.00000" has no extension: ".00000" is no suffix
    folder = Path(root) / p.parent
    found = sorted(f for f in folder.glob(f"{stem}.*") if f.is_file() and is_audio_path(f) and f.stem == stem)
    if not found:
        raise DatasetError(f"{folder / stem}: no audio file with this stem")
    return found[0]


def clips_in(root: str | os.PathLike[str], genre: str) -> list[Path]:
    """The audio files of one genre folder, sorted by stem, whatever their extension."""
    folder = Path(root) / genre
    return sorted((f for f in folder.iterdir() if f.is_file() and is_audio_path(f)), key=lambda f: f.stem)


def read_split_lists(splits_dir: str | os.PathLike[str]) -> dict[str, list[str]]:
    """{split: [track keys]} from `{train,valid,test}_filtered.txt` (or train/val/test.txt)."""
    d = Path(splits_dir)
    if not d.is_dir():
        raise DatasetError(f"{d}: split-list folder not found")
    out: dict[str, list[str]] = {}
    for split, names in _LIST_NAMES.items():
        for name in names:
            f = d / name
            if f.is_file():
                out[split] = [track_key(line.strip()) for line in f.read_text().splitlines() if line.strip()]
                break
    if "train" not in out:
        raise DatasetError(f"{d}: no train_filtered.txt or train.txt split list")
    keys = [k for v in out.values() for k in v]
    dup = [k for k, c in Counter(keys).items() if c > 1]
    if dup:
        raise DatasetError(f"{d}: {len(dup)} tracks are in more than one split list (e.g. {dup[0]})")
    return out


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Refuse split fractions that leave no training tracks, before any file is read.

    Each fraction must be in [0, 1) and together they must leave something to train on
    (val + test < 1); otherwise the run would end, after feature extraction, in a confusing
    "need train and validation rows". The one exception is val 0 with test 1, which scores every
    track (what ``genrekit evaluate`` asks for when the data has no split of its own).
    """
    v, t = float(val_fraction), float(test_fraction)
    if v == 0.0 and t == 1.0:
        return
    ok = 0.0 <= v < 1.0 and 0.0 <= t < 1.0 and v + t < 1.0
    if not ok:
        raise DatasetError(f"--val-fraction {v:g} and --test-fraction {t:g}: each must be in [0, 1) and together "
                           f"under 1 so tracks are left for training (they add up to {v + t:g})")


def stratified_group_split(groups: np.ndarray, y: np.ndarray, fractions: dict[str, float],
                           seed: int = 0) -> dict[str, np.ndarray]:
    """Boolean row masks per split; whole tracks are assigned, per label, in seeded random order.

    Each label's tracks are shuffled and cut by the fractions (rounded), so every split keeps the
    label balance; a label with few tracks still gets at least one in each split when it can.
    """
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    track_label: dict[str, int] = {}
    for g, lab in zip(groups.tolist(), np.asarray(y).tolist(), strict=True):
        track_label.setdefault(g, lab)
    names = list(fractions)
    assign: dict[str, str] = {}
    for lab in sorted(set(track_label.values())):
        tracks = sorted(t for t, v in track_label.items() if v == lab)
        rng.shuffle(tracks)
        n = len(tracks)
        counts = [int(round(fractions[s] * n)) for s in names]
        # every split after the first gets >= 1 track when there are enough tracks
        for i in range(1, len(names)):
            if counts[i] == 0 and n > len(names) - 1 and fractions[names[i]] > 0:
                counts[i] = 1
        counts[0] = n - sum(counts[1:])
        pos = 0
        for s, c in zip(names, counts, strict=True):
            for t in tracks[pos:pos + c]:
                assign[t] = s
            pos += c
    return {s: np.array([assign[g] == s for g in groups.tolist()], dtype=bool) for s in names}


def _subset(X, y, groups, mask) -> Split:
    return Split(X[mask], y[mask], groups[mask])


def _finish_splits(X, y, groups, split_of_track: dict[str, str] | None, seed: int,
                   val_fraction: float, test_fraction: float, notes: list[str]) -> dict[str, Split]:
    """Split rows by list assignment (or stratified by track) and carve a val split when missing."""
    groups = np.asarray(groups)
    if split_of_track is None:
        masks = stratified_group_split(groups, y, {"train": 1 - val_fraction - test_fraction,
                                                   "val": val_fraction, "test": test_fraction}, seed)
        if val_fraction == 0 and test_fraction == 1:
            notes.append("no split lists: every track is scored")
        else:
            notes.append(f"stratified split by track, seed {seed}, val {val_fraction}, test {test_fraction}")
    else:
        which = np.array([split_of_track.get(g, "") for g in groups.tolist()])
        masks = {s: which == s for s in SPLITS}
        if not masks["val"].any() and masks["train"].any():
            tr = masks["train"]
            sub = stratified_group_split(groups[tr], y[tr], {"train": 1 - val_fraction, "val": val_fraction}, seed)
            idx = np.flatnonzero(tr)
            masks["train"] = np.zeros_like(tr)
            masks["train"][idx[sub["train"]]] = True
            masks["val"] = np.zeros_like(tr)
            masks["val"][idx[sub["val"]]] = True
            notes.append(f"no validation tracks: {val_fraction:.0%} of train tracks held out for validation (seed {seed})")
    return {s: _subset(X, y, groups, masks[s]) for s in SPLITS}


# Notebook arrays ------------------------------------------------------------------------------------

def load_notebook_arrays(root: str | os.PathLike[str]) -> DataBundle:
    """`<root>/{train,val,test}/{X.npy,labels.npy}` (labels are strings); one row per segment, no
    track ids, so each row is its own group (segment-level metrics only)."""
    root = Path(root)
    raw = {}
    for s in SPLITS:
        d = root / s
        if not (d / "X.npy").is_file():
            if s == "train":
                raise DatasetError(f"{root}: no train/X.npy")
            continue
        X = np.load(d / "X.npy", allow_pickle=False)
        lab = np.load(d / "labels.npy", allow_pickle=False)
        if len(X) != len(lab):
            raise DatasetError(f"{d}: X.npy has {len(X)} rows but labels.npy {len(lab)}")
        raw[s] = (X.astype(np.float32), np.asarray(lab).astype(str))
    labels = sorted({v for _, lab in raw.values() for v in lab.tolist()})
    index = {v: i for i, v in enumerate(labels)}
    splits = {}
    for s in SPLITS:
        if s in raw:
            X, lab = raw[s]
            splits[s] = Split(X, np.array([index[v] for v in lab], dtype=np.int64),
                              np.array([f"{s}:{i}" for i in range(len(X))]))
        else:
            splits[s] = Split(np.zeros((0,) + raw["train"][0].shape[1:], np.float32), np.zeros(0, np.int64),
                              np.zeros(0, dtype=str))
    n_feat = int(np.prod(raw["train"][0].shape[1:]))
    spec = {"kind": "table", "source": "notebook_arrays", "feature_names": [f"x{i}" for i in range(n_feat)]}
    return DataBundle("arrays", labels, splits, spec, "segment", track_ids=False)


# Feature tables (features_30_sec.csv) -----------------------------------------------------------------

def load_features_csv(path: str | os.PathLike[str], splits_dir=None, columns: str = "mfcc", seed: int = 0,
                      val_fraction: float = 0.15, test_fraction: float = 0.15) -> DataBundle:
    """A table with a `label` column, one row per track (features_30_sec.csv layout).

    columns="mfcc" keeps the 40 mfccN_mean/var columns, which MfccStatsSpec computes from audio,
    so the trained model can also classify any audio file; "all" keeps every numeric column
    except filename/length/label (a table-only model).
    """
    check_fractions(val_fraction, test_fraction)
    path = Path(path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "label" not in rows[0]:
        raise DatasetError(f"{path}: not a features table with a 'label' column")
    names = [c for c in rows[0] if c not in CSV_META_COLUMNS]
    if columns == "mfcc":
        from genrekit.features import MfccStatsSpec

        spec_obj = MfccStatsSpec()
        names_wanted = spec_obj.feature_names()
        missing = [c for c in names_wanted if c not in rows[0]]
        if missing:
            raise DatasetError(f"{path}: no {missing[0]} column for --columns mfcc (use --columns all)")
        names = names_wanted
        spec = spec_obj.to_dict()
    elif columns == "all":
        spec = {"kind": "table", "source": path.name, "feature_names": names}
    else:
        raise DatasetError(f"unknown column set {columns!r}; choose mfcc or all")
    X = np.array([[float(r[c]) for c in names] for r in rows], dtype=np.float32)
    lab = [r["label"] for r in rows]
    labels = sorted(set(lab))
    y = np.array([labels.index(v) for v in lab], dtype=np.int64)
    fname_col = "filename" if "filename" in rows[0] else None
    groups = np.array([f"{r['label']}/{Path(r[fname_col]).stem}" if fname_col else f"row{i}"
                       for i, r in enumerate(rows)])
    notes: list[str] = [f"{len(names)} feature columns ({columns})"]
    skipped: list[dict] = []
    assignment = None
    if splits_dir is not None:
        assignment, missing = _assign_from_lists(splits_dir, groups)
        for s, miss in missing.items():
            skipped += [{"path": k, "reason": f"in {s} list but not in {path.name}"} for k in miss]
        outside = sum(1 for g in groups.tolist() if g not in assignment)
        if outside:
            notes.append(f"{outside} table rows are in no split list and were left out")
    splits = _finish_splits(X, y, groups, assignment, seed, val_fraction, test_fraction, notes)
    return DataBundle("table", labels, splits, spec, "track", skipped, notes)


def _assign_from_lists(splits_dir: str | os.PathLike, groups: np.ndarray) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Track key -> split from the split lists, and per split the listed keys absent from ``groups``."""
    lists = read_split_lists(splits_dir)
    assignment = {k: s for s, keys in lists.items() for k in keys}
    present = set(groups.tolist())
    return assignment, {s: [k for k in keys if k not in present] for s, keys in lists.items()}


def read_clip_mfcc_table(path: str | os.PathLike[str], n_mfcc: int = 20,
                         hop_length: int = 512) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """{file stem: (MFCC means [n_mfcc], variances [n_mfcc], frame count)} from a
    ``features_30_sec.csv``-style table (``filename``, ``length`` in samples, ``mfccN_mean/var``):
    the whole-clip MFCC statistics that stored taggrams lack (``attach_clip_mfcc``)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read MFCC table ({exc.strerror or exc})") from None
    from genrekit.features import MfccStatsSpec

    names = MfccStatsSpec(n_mfcc=n_mfcc).feature_names()  # mfcc1_mean, mfcc1_var, mfcc2_mean, ...
    missing = [c for c in ["filename", "length", *names] if not rows or c not in rows[0]]
    if missing:
        raise DatasetError(f"{path}: not an MFCC statistics table (no {missing[0]} column)")
    out = {}
    for r in rows:
        v = np.array([float(r[c]) for c in names])
        out[Path(r["filename"]).stem] = (v[0::2], v[1::2], 1 + int(float(r["length"])) // hop_length)
    return out


#: Where a taggram file's MFCC table lies in the shared data layout (``gtzan-musicnn/*.npz`` next to
#: ``gtzan-features/features_30_sec.csv``).
SIBLING_MFCC_TABLE = Path("..") / "gtzan-features" / "features_30_sec.csv"


def attach_clip_mfcc(X: np.ndarray, groups: np.ndarray, table: dict, source: object = "taggrams") -> np.ndarray:
    """Stored taggram rows [n, 50] + each track's whole-clip MFCC statistics as per-patch slot
    columns -> [n, 50 + 1 + 2 n_mfcc] ([n, 91] for the table's 20 MFCCs; ``default_model.clip_mfcc_rows``),
    the rows a ``ms_mfcc`` head reads."""
    from genrekit.models.default import clip_mfcc_rows

    n_mfcc = len(next(iter(table.values()))[0]) if table else 0
    out = np.zeros((len(X), X.shape[1] + 1 + 2 * n_mfcc), np.float32)
    out[:, : X.shape[1]] = X
    for g in dict.fromkeys(groups.tolist()):
        stem = Path(str(g)).name
        if stem not in table:
            raise DatasetError(f"{source}: track {g} has no row in the MFCC table")
        rows = np.flatnonzero(groups == g)
        out[rows, X.shape[1]:] = clip_mfcc_rows(len(rows), *table[stem])
    return out


# musicnn taggrams -----------------------------------------------------------------------------------

def _read_taggram_npz(path: Path):
    with np.load(path, allow_pickle=False) as z:
        for k in ("X", "Y", "IDS"):
            if k not in z:
                raise DatasetError(f"{path}: taggram file without {k}")
        return z["X"].astype(np.float32), z["Y"].astype(np.int64), z["IDS"].astype(str)


def load_taggrams(path: str | os.PathLike[str], splits_dir=None, seed: int = 0,
                  val_fraction: float = 0.15, test_fraction: float = 0.15) -> DataBundle:
    """musicnn taggrams: X [patches, 50], Y genre index, IDS track per patch.

    `path` is one .npz, or a folder with `*train*.npz` / `*test*.npz` whose file names give the
    split (validation is then carved out of train by track). Label names come from the IDS genre
    folder, ordered by Y.
    """
    check_fractions(val_fraction, test_fraction)
    path = Path(path)
    parts: dict[str, tuple] = {}
    if path.is_dir():
        for f in sorted(path.glob("*.npz")):
            s = "train" if "train" in f.stem else "test" if "test" in f.stem else ("val" if "val" in f.stem else None)
            if s:
                parts[s] = _read_taggram_npz(f)
        if not parts:
            raise DatasetError(f"{path}: no *train*.npz / *test*.npz taggram files")
    else:
        parts["all"] = _read_taggram_npz(path)
    X = np.concatenate([p[0] for p in parts.values()])
    y = np.concatenate([p[1] for p in parts.values()])
    ids = np.concatenate([p[2] for p in parts.values()])
    groups = np.array([track_key(i) for i in ids.tolist()])
    names: dict[int, str] = {}
    for yi, g in zip(y.tolist(), groups.tolist(), strict=True):
        names.setdefault(yi, g.split("/")[0] if "/" in g else str(yi))
    labels = [names.get(i, str(i)) for i in range(max(names) + 1)]
    notes: list[str] = []
    skipped: list[dict] = []
    if splits_dir is not None:
        assignment, missing = _assign_from_lists(splits_dir, groups)
        for s, miss in missing.items():
            if miss:
                notes.append(f"{len(miss)} tracks of the {s} list have no taggrams")
    elif "all" in parts:
        assignment = None
    else:
        assignment = {}
        for s, p in parts.items():
            for g in {track_key(i) for i in p[2].tolist()}:
                assignment[g] = s
    splits = _finish_splits(X, y, groups, assignment, seed, val_fraction, test_fraction, notes)
    spec = {"kind": "table", "source": "musicnn_taggram", "feature_names": [f"tag{i}" for i in range(X.shape[1])]}
    return DataBundle("taggram", labels, splits, spec, "segment", skipped, notes)


# Audio folders ----------------------------------------------------------------------------------------

def scan_audio_folder(root: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """[(file, genre)] for `<root>/<genre>/<files>`, sorted; hidden files and folders (macOS
    `._song.wav` sidecars, `.git`) are ignored, walked the same way as `genrekit predict` does."""
    from genrekit.audio import audio_files_under

    root = Path(root)
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out += [(f, d.name) for f in audio_files_under(d)]
    return out


def _extract_one(path: str, spec_dict: dict, cache_root: str | None, use_cache: bool):
    """Worker: features of one file through the cache, or the error message (raises only when a
    backbone's weights are missing, which no other file would escape either).

    Decoding runs with file descriptor 2 silenced: libmpg123 prints "Illegal Audio-MPEG-Header"
    notes straight to it for a non-audio .mp3, and the file is already listed in ``skipped``.
    """
    from genrekit.audio import quiet_native_stderr
    from genrekit.features import spec_from_dict

    spec = spec_from_dict(spec_dict)
    cache_error = None
    try:
        with quiet_native_stderr():
            if use_cache:
                from genrekit.cache import FeatureCache

                cache = FeatureCache(cache_root)
                feats = cache.extract(path, spec)
                cache_error = cache.write_error
            else:
                feats = spec.extract_file(path)
        if len(feats.values) == 0:
            return path, None, "no segments (file too short)", cache_error
        return path, feats.values, None, cache_error
    except BackboneWeightsError:  # the machine's weights, not this file: stop, said once
        raise
    except Exception as exc:  # noqa: BLE001 - any bad file is reported and skipped
        msg = detail(exc) or "cannot read this file"
        return path, None, msg, cache_error


def extract_files(paths: list[Path], spec, workers: int = 0, use_cache: bool = True, cache_root=None,
                  progress: bool = True) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Features of many files in parallel processes, with a progress bar.

    Returns ({path: values}, skipped) where skipped lists {"path", "reason"} of unreadable files.
    workers=0 uses min(cpu count, 8); 1 runs in this process (no pickling; easier debugging).
    """
    spec_dict = spec.to_dict()
    if workers <= 0:
        workers = min(os.cpu_count() or 1, 8)
    workers = max(1, min(workers, len(paths) or 1))
    results: dict[str, np.ndarray] = {}
    skipped: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc=f"features ({spec.kind})", unit="file", leave=False)
    croot = str(cache_root) if cache_root is not None else None

    cache_problems: list[str] = []

    def take(res):
        p, values, err, cache_error = res
        if cache_error and not cache_problems:  # once per run, not once per file
            cache_problems.append(cache_error)
            msg = f"genrekit: warning: {cache_error}; features are computed without it"
            (bar.write(msg, file=sys.stderr) if bar is not None else print(msg, file=sys.stderr))
        if err is None:
            results[p] = values
        else:
            skipped.append({"path": p, "reason": err})
        if bar is not None:
            bar.update(1)

    if workers == 1:
        for p in paths:
            take(_extract_one(str(p), spec_dict, croot, use_cache))
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = [ex.submit(_extract_one, str(p), spec_dict, croot, use_cache) for p in paths]
            for fut in as_completed(futs):
                take(fut.result())
    if bar is not None:
        bar.close()
    return results, skipped


def load_audio_folder(root: str | os.PathLike[str], spec, splits_dir=None, seed: int = 0,
                      val_fraction: float = 0.15, test_fraction: float = 0.15, workers: int = 0,
                      use_cache: bool = True, cache_root=None, progress: bool = True,
                      max_per_label: int | None = None) -> DataBundle:
    """A labelled folder `<root>/<genre>/<files>` -> features per segment, split by track."""
    check_fractions(val_fraction, test_fraction)
    root = Path(root)
    files = scan_audio_folder(root)
    if not files:
        raise DatasetError(f"{root}: no audio files in <genre>/ subfolders")
    if max_per_label:
        seen: Counter = Counter()
        kept = []
        for f, g in files:
            if seen[g] < max_per_label:
                kept.append((f, g))
                seen[g] += 1
        files = kept
    labels = sorted({g for _, g in files})
    notes: list[str] = []
    skipped: list[dict] = []
    assignment = None
    if splits_dir is not None:
        lists = read_split_lists(splits_dir)
        assignment = {k: s for s, keys in lists.items() for k in keys}
        present = {track_key(f) for f, _ in files}
        for s, keys in lists.items():
            miss = [k for k in keys if k not in present]
            if miss:
                notes.append(f"{len(miss)} of {len(keys)} tracks in the {s} list are not in {root}")
        outside = [f for f, _ in files if track_key(f) not in assignment]
        if outside:
            notes.append(f"{len(outside)} files are in no split list and were left out")
        files = [(f, g) for f, g in files if track_key(f) in assignment]
        if not files:  # say so before extraction, not as "none of 0 audio files could be read"
            raise DatasetError(f"{root}: none of its {len(outside)} audio files is named in the split lists in "
                               f"{splits_dir} (lists name files as <genre>/<file>, matched by genre folder and stem)")
    values, bad = extract_files([f for f, _ in files], spec, workers, use_cache, cache_root, progress)
    skipped += bad
    X_parts, y_parts, g_parts = [], [], []
    for f, g in files:
        v = values.get(str(f))
        if v is None:
            continue
        X_parts.append(v.astype(np.float32))
        y_parts.append(np.full(len(v), labels.index(g), dtype=np.int64))
        g_parts.append(np.full(len(v), track_key(f), dtype=object))
    if not X_parts:
        raise DatasetError(f"{root}: none of {len(files)} audio files could be read")
    X = np.concatenate(X_parts)
    y = np.concatenate(y_parts)
    groups = np.concatenate(g_parts).astype(str)
    splits = _finish_splits(X, y, groups, assignment, seed, val_fraction, test_fraction, notes)
    unit = "segment" if getattr(spec, "segment_hop_samples", 0) else "track"
    return DataBundle("audio", labels, splits, spec.to_dict(), unit, skipped, notes)


# Detection ------------------------------------------------------------------------------------------

def detect_kind(path: str | os.PathLike[str]) -> str:
    """'arrays' (folder with train/X.npy), 'table' (.csv), 'taggram' (.npz or folder of them),
    'audio' (folder of genre subfolders)."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return "table"
        if p.suffix.lower() == ".npz":
            return "taggram"
        raise DatasetError(f"{p}: expected a folder, a .csv table or a .npz taggram file")
    if (p / "train" / "X.npy").is_file():
        return "arrays"
    if any(p.glob("*.npz")) and not any(c.is_dir() for c in p.iterdir()):
        return "taggram"
    if any(c.is_dir() for c in p.iterdir()):
        return "audio"
    raise DatasetError(f"{p}: not a dataset (no train/X.npy, no .npz files, no genre subfolders)")


def load_data(path, splits_dir=None, spec=None, columns: str = "mfcc", seed: int = 0,
              val_fraction: float = 0.15, test_fraction: float = 0.15, workers: int = 0,
              use_cache: bool = True, progress: bool = True, max_per_label: int | None = None) -> DataBundle:
    """Load any supported dataset; `spec` (a FeatureSpec) is needed only for audio folders."""
    check_fractions(val_fraction, test_fraction)
    kind = detect_kind(path)
    if kind == "arrays":
        return load_notebook_arrays(path)
    if kind == "table":
        return load_features_csv(path, splits_dir, columns, seed, val_fraction, test_fraction)
    if kind == "taggram":
        return load_taggrams(path, splits_dir, seed, val_fraction, test_fraction)
    if spec is None:
        raise DatasetError(f"{path}: an audio folder needs a feature spec")
    return load_audio_folder(path, spec, splits_dir, seed, val_fraction, test_fraction, workers,
                             use_cache, progress=progress, max_per_label=max_per_label)
