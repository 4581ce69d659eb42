"""Read a PyTorch checkpoint (``torch.save``'s zip format) into numpy arrays, without torch and
without running code from the file.

Why: a light install converts published ``.pt`` weights (EfficientAT's ``mn04_as_mAP_432.pt``)
into ONNX models with no torch at hand; and ``torch.load`` without ``weights_only`` runs whatever
the pickle names. This reader runs the pickle with a restricted unpickler that knows exactly
what a state dict needs: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` /
``_rebuild_parameter`` and the typed storage markers (``torch.FloatStorage``, ...). Anything
else (``os.system``, ``builtins.eval``, an arbitrary class) is refused with one line naming the
file and the global. Tensors are rebuilt as numpy views of the zip's storage records
(``<prefix>/data/<key>``) with the pickle's offset, size and stride, then copied.

Layout of the zip (``torch/serialization.py``): ``<prefix>/data.pkl`` (the pickle, protocol 2),
``<prefix>/data/<key>`` (raw little-endian storage bytes, one record per storage),
``<prefix>/byteorder`` (optional: ``little`` or ``big``), ``<prefix>/version``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.errors import GenrekitError

#: torch's legacy typed-storage names -> the numpy dtype of their elements (bfloat16 is read as
#: uint16 and widened to float32 by :func:`_storage_array`).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class TorchZipError(GenrekitError):
    """Not a readable torch checkpoint, or one that asks for more than tensors."""


class _StorageType:
    """What ``torch.FloatStorage`` & co. stand for in the pickle: the element type only."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                       requires_grad: bool = False, backward_hooks: Any = None, metadata: Any = None) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: a strided view of ``storage`` (elements), copied."""
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    if any(s < 0 for s in size + stride) or offset < 0:
        raise TorchZipError("negative tensor size, stride or offset")
    last = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=True)) if all(size) else offset - 1
    if last >= len(storage):
        raise TorchZipError(f"a tensor of size {size} reaches past its storage ({len(storage)} elements)")
    if not all(size):
        return np.zeros(size, storage.dtype)
    base = storage[offset:]
    item = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(base, size, tuple(st * item for st in stride)).copy()


def _rebuild_parameter(data: np.ndarray, requires_grad: bool = False, backward_hooks: Any = None) -> np.ndarray:
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str, byteorder: str, name: str) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self.zf, self.prefix, self.byteorder, self.name = zf, prefix, byteorder, name
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchZipError(f"{self.name}: refused: the checkpoint asks for {module}.{name} "
                            "(only tensors and dicts are read)")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise TorchZipError(f"{self.name}: unknown persistent record {str(pid)[:60]}")
        _, stype, key, _location, numel = pid
        key = str(key)
        if key not in self.storages:
            self.storages[key] = self._storage_array(key, stype.dtype, int(numel))
        return self.storages[key]

    def _storage_array(self, key: str, dtype: np.dtype, numel: int) -> np.ndarray:
        try:
            raw = self.zf.read(f"{self.prefix}/data/{key}")
        except KeyError:
            raise TorchZipError(f"{self.name}: storage record {key} is missing") from None
        dt = dtype.newbyteorder("<" if self.byteorder == "little" else ">") if dtype.itemsize > 1 else dtype
        if len(raw) < numel * dt.itemsize:
            raise TorchZipError(f"{self.name}: storage record {key} is truncated")
        a = np.frombuffer(raw, dtype=dt, count=numel).astype(dt.newbyteorder("="))
        if dtype == np.uint16:  # bfloat16: the upper half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a


def load(path: str | os.PathLike[str]) -> Any:
    """The object ``torch.save`` wrote to ``path`` (dicts of tensors), tensors as numpy arrays."""
    name = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise TorchZipError(f"{name}: not a torch zip checkpoint ({exc})") from None
    with zf:
        pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise TorchZipError(f"{name}: not a torch zip checkpoint (no single <prefix>/data.pkl)")
        prefix = pkls[0].split("/")[0]
        try:
            byteorder = zf.read(f"{prefix}/byteorder").decode().strip()
        except KeyError:
            byteorder = "little"  # torch writes the record only since 2.1; older files are little-endian
        try:
            return _Unpickler(zf.read(pkls[0]), zf, prefix, byteorder, name).load()
        except TorchZipError:
            raise
        except Exception as exc:
            raise TorchZipError(f"{name}: damaged checkpoint ({type(exc).__name__}: {str(exc)[:100]})") from None


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The flat {name: array} state dict of a checkpoint: the object itself, or its
    ``state_dict`` / ``model`` entry when the file wraps one (as training scripts often save)."""
    obj = load(path)
    if isinstance(obj, dict) and not all(isinstance(v, np.ndarray) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise TorchZipError(f"{Path(path)}: holds no state dict of tensors")
    return {str(k): v for k, v in obj.items()}
