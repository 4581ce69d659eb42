"""torch_zip: torch checkpoints read into numpy without torch, refusing anything but tensors."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from genrekit.backbones.torch_zip import TorchZipError, load, load_state_dict


def test_mn04_checkpoint_equals_torch_load(shared_data):
    """The EfficientAT release file (../shared/weights/efficientat) read both ways: same names,
    dtypes, shapes and bytes (a missing file fails: shared/ is there)."""
    torch = pytest.importorskip("torch")
    MN04 = shared_data.parent / "weights" / "efficientat" / "mn04_as_mAP_432.pt"
    ours = load_state_dict(MN04)
    ref = torch.load(MN04, map_location="cpu", weights_only=True)
    assert list(ours) == list(ref) and len(ours) == 312
    for k, v in ref.items():
        a = ours[k]
        assert a.dtype == v.numpy().dtype and a.shape == tuple(v.shape), k
        assert np.array_equal(a, v.numpy()), k


def test_views_dtypes_and_empty_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(10, dtype=torch.float64)
    saved = {"t": torch.arange(24, dtype=torch.float32).reshape(4, 6).t(),  # non-contiguous
             "view": base[2:7], "base": base,  # one storage, two offsets
             "bf16": torch.linspace(-3, 3, 7).bfloat16(), "long": torch.tensor([1, -2, 3]),
             "half": torch.tensor([0.5, 2.0]).half(), "bool": torch.tensor([True, False]),
             "empty": torch.zeros(0, 3), "param": torch.nn.Parameter(torch.ones(2, 2))}
    path = tmp_path / "x.pt"
    torch.save({"state_dict": saved, "epoch": 3}, path)
    got = load_state_dict(path)
    for k, v in saved.items():
        want = v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()
        assert got[k].shape == want.shape and got[k].dtype == want.dtype, k
        assert np.array_equal(got[k], want), k


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch SHOULD_NOT_EXIST",))


def _zip_with_pickle(path: Path, obj) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        zf.writestr("archive/version", "3\n")
    return path


def test_code_in_the_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _zip_with_pickle(tmp_path / "evil.pt", {"w": _Evil()})
    with pytest.raises(TorchZipError, match=r"evil\.pt: refused: the checkpoint asks for (posix|os|nt)\.system"):
        load(path)
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()
    with pytest.raises(TorchZipError, match="refused"):
        load(_zip_with_pickle(tmp_path / "eval.pt", {"w": io.BytesIO}))  # any class, not only calls


def test_not_a_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TorchZipError, match=r"bad\.pt: not a torch zip checkpoint"):
        load(bad)
    with pytest.raises(TorchZipError, match="holds no state dict"):
        load_state_dict(_zip_with_pickle(tmp_path / "s.pt", {"a": 1}))


def test_truncated_storage_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(100)}, path)
    out = tmp_path / "cut.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:40] if "/data/" in info.filename else data)
    with pytest.raises(TorchZipError, match="truncated"):
        load(out)
