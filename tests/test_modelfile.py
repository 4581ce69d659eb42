"""Model files: safetensors + JSON metadata, atomic writes, clear errors, no pickle."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from genrekit.errors import ModelFileError
from genrekit.models.modelfile import (
    atomic_path,
    read_model_file,
    read_model_meta,
    save_model_file,
    write_json_atomic,
    write_text_atomic,
)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    t = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    meta = {"format": "x", "labels": ["a", "b"], "metrics": {"acc": 0.5}}
    save_model_file(path, t, meta)
    tensors, got = read_model_file(path)
    assert got == meta and torch.equal(tensors["w"], t["w"])
    assert read_model_meta(path)["labels"] == ["a", "b"]
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model_file(path, {"w": torch.zeros(1)}, {"format": "x", "v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert read_model_meta(path)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_not_a_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="not a safetensors"):
        read_model_meta(bad)
    with pytest.raises(ModelFileError, match="no such model file"):
        read_model_meta(tmp_path / "missing.safetensors")


def test_metadata_needs_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_model_file(tmp_path / "m.safetensors", {"w": torch.zeros(1)}, {})


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_new_files_get_the_users_umask(tmp_path: Path, umask_022) -> None:
    """Shared folders and web servers must be able to read model files, metrics and PNGs: a new file
    is 0666 & ~umask (0644 here), as open() would make it, not mkstemp's 0600."""
    save_model_file(tmp_path / "m.safetensors", {"w": torch.zeros(1)}, {"format": "x"})
    write_json_atomic(tmp_path / "metrics.json", {"a": 1})
    write_text_atomic(tmp_path / "report.md", "# hi\n")
    for name in ("m.safetensors", "metrics.json", "report.md"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    os.umask(0o077)
    write_text_atomic(tmp_path / "private.md", "x")
    assert stat.S_IMODE((tmp_path / "private.md").stat().st_mode) == 0o600


def test_replacing_a_file_keeps_its_mode(tmp_path: Path, umask_022) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_atomic_write_syncs_before_the_rename(tmp_path: Path, monkeypatch) -> None:
    """The data reach the disk before the new name does: fsync of the temp file, then rename."""
    import genrekit.models.modelfile as modelfile

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(modelfile.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(modelfile.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    write_text_atomic(tmp_path / "a.txt", "data")
    assert events[:2] == ["fsync", "replace"] and (tmp_path / "a.txt").read_text() == "data"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_numpy_read_gives_the_same_tensors_and_checksum(tmp_path: Path) -> None:
    """Prediction reads model files as numpy (no torch): same values, same checksum check, for
    every dtype and shape a model holds (0-d counters of BatchNorm included)."""
    from genrekit.models.modelfile import tensors_digest

    path = tmp_path / "m.safetensors"
    t = {"w": torch.randn(3, 4), "n": torch.tensor(7, dtype=torch.int64), "b": torch.tensor([True, False]),
         "h": torch.ones(2, dtype=torch.float16), "t": torch.arange(6.0).reshape(2, 3).t().contiguous()}
    save_model_file(path, t, {"format": "x"})
    arrays, meta = read_model_file(path, numpy=True)
    assert meta == {"format": "x"} and all(isinstance(v, np.ndarray) for v in arrays.values())
    for k, v in t.items():
        assert arrays[k].shape == tuple(v.shape) and np.array_equal(arrays[k], v.numpy())
    assert tensors_digest(arrays, "m") == tensors_digest(t, "m")
