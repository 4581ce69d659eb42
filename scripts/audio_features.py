"""Per-patch musicnn outputs of every shared audio file, computed once and cached.

    python scripts/audio_features.py [--data ../shared/data]

The open-set and real-song work (``scripts/train_default_head.py``, ``scripts/cv_real_songs.py``,
``scripts/open_set_logo.py``) reads, for each audio file with a label:

* ``msd`` [n, 50]: MSD_musicnn tag probabilities per 3 s patch, 1 s apart (the default model's
  backbone), computed through ``MusicnnMfccSpec`` exactly as prediction computes them;
* ``mfcc`` [n, 41]: the MFCC slot statistics of the same patches (the ``ms_mfcc`` columns);
* ``mtt`` [n, 50]: MTT_musicnn tag probabilities of the same patches (classical, techno, opera,
  indian, new age...), and ``msd_emb`` / ``mtt_emb`` [200]: the mean penultimate embeddings.

Files: the 169 real songs (``real-songs/labels.csv``: genre, in-the-ten flag, ``source_repo``)
and the 147 GTZAN clips (``gtzan-clips``; their split from ``gtzan-splits``). The cache lives in
``$GENREKIT_CACHE_DIR`` (default ``~/.cache/genrekit``)/``audio-features-v1/``, keyed by the
file's path, size and mtime; never in the repository or in shared/.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from genrekit.audio import is_audio_path, load_audio  # noqa: E402
from genrekit.features import MusicnnMfccSpec  # noqa: E402
from genrekit.models.default import GENRES  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
CACHE_NAME = "audio-features-v1"


@dataclass
class Item:
    """One labelled audio file. ``genre`` is one of GENRES or, outside the ten, the style name;
    ``group`` is the cross-validation group (the real song's ``source_repo``, or ``gtzan``)."""

    path: Path
    genre: str
    in_ten: bool
    group: str
    kind: str  # "real" or "gtzan"
    split: str  # GTZAN fault-filtered split ("train", "valid", "test", "none"); "real" for real songs


def real_songs(data: Path) -> list[Item]:
    root = data / "real-songs"
    out = []
    with open(root / "labels.csv", newline="") as f:
        for r in csv.DictReader(f):
            in_ten = r["in_gtzan_ten"] == "yes"
            out.append(Item(root / r["file"], r["genre"], in_ten, r["source_repo"], "real", "real"))
    return out


def gtzan_clips(data: Path) -> list[Item]:
    split_of: dict[str, str] = {}
    for split, name in (("train", "train"), ("valid", "valid"), ("test", "test")):
        for line in (data / "gtzan-splits" / f"{name}_filtered.txt").read_text().split():
            split_of[Path(line).stem] = split
    out = []
    for p in sorted((data / "gtzan-clips").glob("*/*")):
        if p.is_file() and is_audio_path(p):  # WAV, FLAC and the Sun .au: found by stem, not extension
            out.append(Item(p, p.parent.name, True, "gtzan", "gtzan", split_of.get(p.stem, "none")))
    assert all(i.genre in GENRES for i in out)
    return out


def cache_root() -> Path:
    base = Path(os.environ.get("GENREKIT_CACHE_DIR") or Path.home() / ".cache" / "genrekit")
    return base / CACHE_NAME


def _key(p: Path) -> str:
    st = p.stat()
    return hashlib.sha1(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]


_NETS: dict[str, object] = {}


def compute(path: Path, spec: MusicnnMfccSpec | None = None) -> dict[str, np.ndarray]:
    """The cached outputs of one file (see the module docstring)."""
    from genrekit.backbones.musicnn import load_backbone, run_patches

    spec = spec or MusicnnMfccSpec()
    y = load_audio(path, spec.sample_rate)
    values = spec.extract(y).values
    patches, stats = values[:, : spec.patch_frames], values[:, spec.patch_frames, : spec.stat_columns]
    out: dict[str, np.ndarray] = {"mfcc": stats.astype(np.float32)}
    for name, key in (("MSD_musicnn", "msd"), ("MTT_musicnn", "mtt")):
        if name not in _NETS:
            _NETS[name] = load_backbone(name)
        o = run_patches(_NETS[name], patches, hop=spec.patch_hop_frames)
        out[key] = o["tags"].astype(np.float32)
        out[f"{key}_emb"] = o["penultimate"].mean(0).astype(np.float32)
    return out


def features(item: Item) -> dict[str, np.ndarray]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    f = root / f"{_key(item.path)}.npz"
    if f.exists():
        with np.load(f) as z:
            return {k: z[k] for k in z.files}
    out = compute(item.path)
    tmp = f.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, f)
    return out


def load_all(data: Path = DEFAULT_DATA, kinds: tuple[str, ...] = ("real", "gtzan"),
             verbose: bool = True) -> list[tuple[Item, dict[str, np.ndarray]]]:
    items = (real_songs(data) if "real" in kinds else []) + (gtzan_clips(data) if "gtzan" in kinds else [])
    out = []
    t0 = time.time()
    for i, it in enumerate(items):
        out.append((it, features(it)))
        if verbose and (i + 1) % 50 == 0:
            print(f"  features {i + 1}/{len(items)} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rows = load_all(a.data)
    print(f"{len(rows)} files; cache {cache_root()}")


if __name__ == "__main__":
    main()
