"""Model files: safetensors + JSON metadata, atomic writes, clear errors, no pickle."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genrekit.errors import ModelFileError
from genrekit.modelfile import atomic_path, read_model_file, read_model_meta, save_model_file


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
