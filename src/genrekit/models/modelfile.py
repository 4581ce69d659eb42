"""Model files: safetensors tensors plus one JSON metadata blob, written atomically.

safetensors holds only tensors and strings, so loading a model never executes code (no pickle).
The JSON under the metadata key ``"genrekit"`` carries everything predict needs besides weights:
``format`` (which loader), the feature spec, label names, normalisation statistics, metrics and
the training configuration.

Integrity: :func:`save_model_file` stores a SHA-256 of the metadata blob and every tensor (name,
dtype, shape, bytes) under a second metadata key, and :func:`read_model_file` checks it, so a
file whose bytes were flipped on disk or in transit is refused in one line instead of loading
silently and giving other answers. Files written before the checksum existed still load.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genrekit.errors import ModelFileError, with_detail

META_KEY = "genrekit"
#: safetensors metadata key of the checksum (outside the JSON, so the metadata reads back unchanged).
DIGEST_KEY = "genrekit_sha256"


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    A crash or Ctrl-C mid-write leaves the old file intact and no half-written one. The temporary
    file is created the way ``open(path, "w")`` creates one (mode 0666 less the user's umask, not
    mkstemp's 0600), so shared folders and web servers can read what genrekit writes; a file that
    already exists keeps its own mode. The data are fsync'ed before the rename and the folder after
    it, so a power cut leaves either the old file or the new one.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp, mode = _create_beside(dest, suffix)
    try:
        yield tmp
        os.chmod(tmp, mode)  # some writers (safetensors) replace the file they are given with a 0600 one
        fsync_path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def _create_beside(dest: Path, suffix: str) -> tuple[Path, int]:
    """A new, empty, uniquely named file in ``dest``'s folder, and ``dest``'s future mode."""
    try:
        mode = stat.S_IMODE(dest.stat().st_mode)  # replacing a file: keep the mode its owner gave it
    except OSError:
        mode = None
    for _ in range(100):
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        except FileExistsError:
            continue
        try:
            if mode is None:
                mode = stat.S_IMODE(os.fstat(fd).st_mode)  # 0666 less the umask, read without touching it
            else:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return tmp, mode
    raise FileExistsError(f"{dest.parent}: cannot create a temporary file beside {dest.name}")


def fsync_path(path: Path) -> None:
    """Flush a written file's data to disk (the writer may have used its own file object)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; best effort (some file systems refuse fsync on folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write a text file (metrics JSON, tables)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_model_file(path: str | os.PathLike[str], tensors: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``tensors`` (name -> torch.Tensor) and ``meta`` to ``path`` atomically."""
    from safetensors.torch import save_file

    if "format" not in meta:
        raise ValueError("model metadata needs a 'format' key")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    blob = json.dumps(meta, default=_json_default)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: blob, DIGEST_KEY: tensors_digest(tensors, blob)})
    return Path(path)


def tensors_digest(tensors: dict[str, Any], blob: str = "") -> str:
    """SHA-256 of a metadata string and of each tensor's name, dtype, shape and bytes (by name).

    Computed on the tensors, not the file's bytes, so it is independent of how safetensors lays
    them out; shared by model files and training checkpoints."""
    h = hashlib.sha256(blob.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name]
        if hasattr(t, "detach"):  # a torch tensor (training, tests): torch is imported already
            import torch

            t = t.detach().cpu().contiguous()
            h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode("utf-8"))
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        else:  # a numpy array (prediction reads model files without torch): the same digest
            import numpy as np

            a = np.asarray(t)
            a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
            h.update(json.dumps([name, f"torch.{a.dtype.name}", list(a.shape)]).encode("utf-8"))
            h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def check_digest(path: str | os.PathLike[str], tensors: dict[str, Any], blob: str, stored: str | None) -> None:
    """Raise :class:`ModelFileError` when ``stored`` (a file's checksum) does not match its contents;
    ``None`` (a file written before checksums) passes."""
    if stored is not None and tensors_digest(tensors, blob) != stored:
        raise ModelFileError(f"{path}: damaged file: its tensors or metadata do not match the checksum "
                             "saved with them (bytes changed on disk or in transit)")


def _read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str, str | None]:
    """(metadata dict, its JSON text, stored checksum or None), every failure one ModelFileError line."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such model file")
    try:
        with safe_open(str(p), framework="numpy") as f:
            header = f.metadata() or {}
    except Exception:
        raise ModelFileError(f"{p}: not a safetensors model file") from None
    raw = header.get(META_KEY)
    if raw is None:
        raise ModelFileError(f"{p}: safetensors file without genrekit metadata")
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ModelFileError(f"{p}: damaged model file: its genrekit metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{p}: damaged model file: its genrekit metadata is a JSON {type(meta).__name__}, "
                             "not an object")
    return meta, raw, header.get(DIGEST_KEY)


def read_model_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the JSON metadata (cheap: reads the safetensors header)."""
    return _read_header(path)[0]


def read_model_file(path: str | os.PathLike[str], numpy: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, meta) of a model file written by :func:`save_model_file`, its checksum checked.

    ``numpy``: the tensors as numpy arrays, read without importing torch (prediction: a light
    install has none); a file holding a dtype numpy lacks (bfloat16) is read through torch."""
    meta, raw, digest = _read_header(path)
    try:
        if numpy:
            from safetensors.numpy import load_file as load_np

            try:
                tensors = load_np(str(path))
            except (TypeError, ValueError):  # bfloat16 and other dtypes numpy cannot hold
                from safetensors.torch import load_file as load_pt

                tensors = load_pt(str(path))
        else:
            from safetensors.torch import load_file

            tensors = load_file(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: {with_detail('cannot read tensors', exc)}") from None
    check_digest(path, tensors, raw, digest)
    return tensors, meta


def tensor_shapes(path: str | os.PathLike[str]) -> dict[str, list[int]]:
    """{tensor name: shape} from the safetensors header alone (no tensor is read)."""
    from safetensors import safe_open

    read_model_meta(path)  # the same clear errors for a missing or foreign file
    with safe_open(str(path), framework="numpy") as f:
        return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
