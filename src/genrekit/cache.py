"""On-disk feature cache keyed by file identity and feature spec.

Feature extraction dominates training set-up on audio folders, so results are kept in the user
cache (``GENREKIT_CACHE_DIR`` or ``$XDG_CACHE_HOME/genrekit`` or ``~/.cache/genrekit``). The key is
a hash of the absolute path, size, mtime, ctime and the spec's dict, so editing a file or changing any
feature setting misses the cache instead of returning stale features. Writes are atomic.

``cache_usage`` / ``clear_cache`` (``genrekit cache info|clear``) list and delete what genrekit
keeps there: this feature cache, the converted musicnn weights (``musicnn.converted_path``) and the
downloaded EfficientAT weights (``efficientat.cached_path``) and backbone networks converted to ONNX
models (``onnx_graphs.converted_path``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrekit.errors import GenrekitError
from genrekit.features import Features, FeatureSpec
from genrekit.models.modelfile import atomic_path

#: Part of every key: raise it whenever what ``extract_file`` returns or refuses changes, so old
#: entries miss instead of answering for code that no longer exists (2: inputs under 1 s and
#: digital silence are refused, as prediction refuses them).
CACHE_VERSION = 2


def cache_dir() -> Path:
    """The user cache root for genrekit (features, converted weights, downloads)."""
    env = os.environ.get("GENREKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "genrekit"


class FeatureCache:
    """``get(path, spec)`` / ``put(path, spec, features)``; ``None`` directory disables caching."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "features"
        #: Why the last write failed (cache folder not writable, disk full), or None: a cache that
        #: cannot be written costs speed, never an input, so ``extract`` carries on without it.
        self.write_error: str | None = None

    def key(self, path: str | os.PathLike[str], spec: FeatureSpec) -> str:
        p = Path(path).resolve()
        st = p.stat()
        # ctime too: rewriting a file in place and restoring its mtime (cp -p, rsync -t, untar) keeps
        # size and mtime, but the system moves ctime on every write, and nothing can set it back
        ident = {"v": CACHE_VERSION, "path": str(p), "size": st.st_size, "mtime": st.st_mtime_ns,
                 "ctime": st.st_ctime_ns, "spec": spec.to_dict()}
        return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, path: str | os.PathLike[str], spec: FeatureSpec) -> Features | None:
        f = self._file(self.key(path, spec))
        if not f.exists():
            return None
        try:
            with np.load(f) as z:
                return Features(z["values"], z["starts"], z["ends"])
        except Exception:  # a damaged entry is a miss, never an error
            return None

    def put(self, path: str | os.PathLike[str], spec: FeatureSpec, feats: Features) -> None:
        f = self._file(self.key(path, spec))
        with atomic_path(f, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, values=feats.values, starts=feats.starts, ends=feats.ends)

    def extract(self, path: str | os.PathLike[str], spec: FeatureSpec) -> Features:
        """Cached ``spec.extract_file(path)``."""
        hit = self.get(path, spec)
        if hit is not None:
            return hit
        feats = spec.extract_file(path)
        try:
            self.put(path, spec, feats)
        except OSError as exc:
            self.write_error = f"{self.root}: cannot write the feature cache ({exc.strerror or exc})"
        return feats


# What is in the cache, and clearing it ------------------------------------------------------------

#: The parts of the cache genrekit writes: (name, folder under the cache root, file-name patterns of
#: what genrekit itself writes there, what it is). Only files matching these patterns are ever
#: deleted; anything else under the root (another tool's files, a script's own cache) is listed
#: as "other" and left alone.
CACHE_PARTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("features", "features",
     (r"[0-9a-f]{40}\.npz", r"\.[0-9a-f]{40}\.npz\.\w+\.npz"),  # entries, and temp files a crash left
     "feature cache of train / evaluate / compare (rebuilt when needed)"),
    ("weights", "musicnn",
     (r"(MSD|MTT)_(musicnn|vgg)-[0-9.]+\.safetensors", r"\.?(MSD|MTT)_(musicnn|vgg)-[0-9.]+\.safetensors.*\.tmp",
      r"musicnn-[0-9.]+-py3-none-any\.whl"),
     "musicnn weights converted to safetensors, and the downloaded wheel (converted again when needed)"),
    ("efficientat", "efficientat",
     (r"mn04_as_mAP_432\.pt", r"\.mn04_as_mAP_432\.pt\..*\.tmp"),  # the release file, and a download a crash left
     "EfficientAT mn04 weights downloaded from their release (downloaded again when needed)"),
    ("networks", "onnx",
     (r"[A-Za-z0-9_]+-[0-9A-Za-z.\-]+\.onnx(\.json)?", r"\.[A-Za-z0-9_]+-[0-9A-Za-z.\-]+\.onnx(\.json)?.*\.tmp"),
     "backbone networks filled with their published weights for ONNX Runtime (converted again when needed)"),
)


@dataclass
class CachePart:
    """One part of the cache: its files genrekit recognises (``files``, ``bytes``) and the ones it
    does not (``other_files``, ``other_bytes``), which ``clear_cache`` never touches."""

    name: str
    path: Path
    description: str
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    other_files: int = 0
    other_bytes: int = 0


def _regular_files(folder: Path) -> Iterator[tuple[Path, int]]:
    """(path, size) of the regular files under ``folder``, never following a symbolic link (a
    link in the cache could point anywhere)."""
    for dirpath, _, filenames in os.walk(folder, followlinks=False):
        for name in filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue  # removed meanwhile
            if stat.S_ISREG(st.st_mode):
                yield p, st.st_size


def _inside(path: Path, root: Path) -> bool:
    """True when ``path`` is a real folder inside ``root`` (not a link leading elsewhere)."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def cache_usage(root: str | os.PathLike[str] | None = None) -> list[CachePart]:
    """The parts of the cache with their sizes, then one ``other`` part for everything else under
    the root (listed so nothing is hidden, never cleared)."""
    root = Path(root) if root is not None else cache_dir()
    parts: list[CachePart] = []
    known_dirs = set()
    for name, sub, patterns, description in CACHE_PARTS:
        folder = root / sub
        known_dirs.add(sub)
        part = CachePart(name, folder, description)
        if _inside(folder, root):
            rx = re.compile("|".join(f"(?:{p})" for p in patterns))
            for p, size in _regular_files(folder):
                if rx.fullmatch(p.name):
                    part.files.append(p)
                    part.bytes += size
                else:
                    part.other_files += 1
                    part.other_bytes += size
        parts.append(part)
    other = CachePart("other", root, "")
    seen: list[str] = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name in known_dirs and _inside(entry, root):
                continue
            seen.append(entry.name + ("/" if entry.is_dir() and not entry.is_symlink() else ""))
            if entry.is_symlink():
                other.other_files += 1
                continue
            items = _regular_files(entry) if entry.is_dir() else [(entry, entry.lstat().st_size)]
            for _, size in items:
                other.other_files += 1
                other.other_bytes += size
    other.description = (", ".join(seen[:3]) + (f" and {len(seen) - 3} more" if len(seen) > 3 else "")
                         + ": left alone by 'genrekit cache clear'") if seen else "nothing else"
    parts.append(other)
    return parts


def clear_cache(names: Iterable[str] = ("features",), root: str | os.PathLike[str] | None = None,
                dry_run: bool = False) -> tuple[int, int]:
    """Delete the recognised files of the named parts (``features``, ``weights``, ``efficientat``) and the folders
    they leave empty; return (files, bytes) removed (or that would be, with ``dry_run``).

    Care taken: only files whose names match what genrekit writes are deleted, only inside the
    part's own folder, and symbolic links are never followed, so a ``GENREKIT_CACHE_DIR`` pointed
    at the wrong folder loses nothing that genrekit did not put there."""
    names = list(names)
    known = {n for n, *_ in CACHE_PARTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GenrekitError(f"cache: unknown part {unknown[0]!r} (choose from {', '.join(sorted(known))})")
    files = nbytes = 0
    for part in cache_usage(root):
        if part.name not in names:
            continue
        for p in part.files:
            try:
                size = p.lstat().st_size
                if not dry_run:
                    p.unlink()
            except FileNotFoundError:
                continue
            files += 1
            nbytes += size
        if not dry_run and part.path.is_dir():
            for dirpath, _, _ in sorted(os.walk(part.path, followlinks=False), key=lambda w: -len(w[0])):
                if Path(dirpath) != part.path:
                    try:
                        os.rmdir(dirpath)  # only succeeds when empty
                    except OSError:
                        pass
    return files, nbytes
