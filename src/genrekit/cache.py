"""On-disk feature cache keyed by file identity and feature spec.

Feature extraction dominates training set-up on audio folders, so results are kept in the user
cache (``GENREKIT_CACHE_DIR`` or ``$XDG_CACHE_HOME/genrekit`` or ``~/.cache/genrekit``). The key is
a hash of the absolute path, size, mtime, ctime and the spec's dict, so editing a file or changing any
feature setting misses the cache instead of returning stale features. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .features import Features, FeatureSpec
from .modelfile import atomic_path

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
