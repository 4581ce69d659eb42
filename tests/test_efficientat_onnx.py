"""efficientat_onnx: mn04's weight-free graph, filled from the release file without torch, run by
ONNX Runtime; parity with the torch port and the stored reference; the default model's AudioSet
windows through the runner; a prediction with an AudioSet part never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genrekit.backbones import efficientat_onnx as EO
from genrekit.backbones import onnx_graphs
from genrekit.backbones.onnx_graphs import structure_initializers

REPO = Path(__file__).resolve().parents[1]


def test_committed_structure_is_weight_free_with_state_dict_names():
    """~75 KB of graph, no tensor data, one initializer per float tensor of the release's state
    dict (266 of its 312 keys: the 46 ``num_batches_tracked`` counters are training state), both
    the batch and the time axis dynamic."""
    blob = EO.STRUCTURE.read_bytes()
    assert len(blob) < 120_000
    inits = structure_initializers(blob)
    assert len(inits) == 266 and all(k.startswith(EO.PREFIX) for k in inits)
    assert inits["n.features.0.0.weight"][0] == (8, 1, 3, 3)
    assert inits["n.classifier.5.weight"][0] == (527, 512)
    onnx = pytest.importorskip("onnx")
    m = onnx.load(str(EO.STRUCTURE))
    assert all(not (i.raw_data or i.float_data) for i in m.graph.initializer)
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 128, "frames"]
    assert [o.name for o in m.graph.output] == list(EO.OUTPUTS)


def test_release_file_fills_the_structure_exactly(efficientat_dir):
    """Every float tensor of the release file finds its initializer (fill_graph is strict both
    ways), read by torch_zip: no torch."""
    arrays = EO.arrays(efficientat_dir / "mn04_as_mAP_432.pt")
    want = structure_initializers(EO.STRUCTURE.read_bytes())
    assert set(arrays) == set(want)
    assert all(arrays[k].shape == want[k][0] for k in want)


def test_parity_with_torch_and_reference(efficientat_dir, tmp_path, monkeypatch):
    """On the reference mel: ONNX Runtime within 1e-4 of the torch port (logits, embedding,
    hidden) and within 1e-3 of upstream's stored logits; a shorter window (the last one of a
    track) and a batch of mixed contents give the same per-window outputs as one by one."""
    pytest.importorskip("torch")
    from genrekit.backbones.runners import backbone_runner

    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "cache"))
    ref = np.load(efficientat_dir / "mn04_as_reference.npz")
    mel = ref["mel"].astype(np.float32)
    ort = backbone_runner("efficientat_mn04", engine="onnx")
    tch = backbone_runner("efficientat_mn04", engine="torch")
    assert (ort.engine, tch.engine) == ("onnx", "torch")
    a, b = ort.run_mel(mel), tch.run_mel(mel)
    for k in EO.OUTPUTS:
        assert a[k].shape == b[k].shape
        np.testing.assert_allclose(a[k], b[k], atol=1e-4)
    np.testing.assert_allclose(a["logits"], ref["logits"], atol=1e-3)
    short = mel[:, :, :317]
    np.testing.assert_allclose(ort.run_mel(short)["logits"], tch.run_mel(short)["logits"], atol=1e-4)
    one = ort.run_mel(mel[1])  # one [128, T] window
    np.testing.assert_allclose(one["hidden"][0], a["hidden"][1], atol=1e-5)
    chunked = ort.run_mel(mel, batch_size=2)
    np.testing.assert_allclose(chunked["embedding"], a["embedding"], atol=1e-5)
    assert ort.run_mel(mel[:0])["logits"].shape == (0, 527)
    with pytest.raises(ValueError, match=r"mn04 wants mel inputs \[n, 128, frames\]"):
        ort.run_mel(mel[:, :96])
    # converted once into the cache, with its checksum
    path = onnx_graphs.converted_path("efficientat_mn04", "net")
    assert onnx_graphs.read_checked(path) is not None
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert "MIT" in meta["weights"] and meta["backbone"] == "efficientat_mn04"
    from genrekit.cache import cache_usage  # `genrekit cache` lists (and clears) it under "networks"

    networks = {p.name: p for p in cache_usage()}["networks"]
    assert {path, path.with_name(path.name + ".json")} <= set(networks.files) and networks.other_files == 0


def test_window_rows_equal_on_both_engines(efficientat_dir, monkeypatch):
    """The default model's AudioSet rows (``audioset.window_rows``) through ONNX Runtime equal
    the torch path's, for full 10 s windows and a shorter last one."""
    pytest.importorskip("torch")
    from genrekit.models import audioset as AS
    from tests.conftest import tone

    sr = 22050
    y = tone(16.0, sr)
    starts = np.arange(16) * 1.0  # windows at 0 s (10 s) and 10 s (6 s, the tail)
    rows = {}
    for engine in ("onnx", "torch"):
        monkeypatch.setenv("GENREKIT_ENGINE", engine)
        rows[engine] = AS.window_rows(y, sr, starts, window_s=10.0, stride=10)
    ran = ~np.isnan(rows["onnx"]).any(axis=1)
    assert ran.nonzero()[0].tolist() == [0, 10]
    np.testing.assert_array_equal(np.isnan(rows["onnx"]), np.isnan(rows["torch"]))
    np.testing.assert_allclose(rows["onnx"][ran], rows["torch"][ran], atol=1e-4)


def test_offline_without_weights_is_one_line(tmp_path, monkeypatch):
    """No release file anywhere and downloads disabled: the ONNX path fails with the lookup's one
    line (and caches nothing), as the torch path does."""
    from genrekit.backbones.efficientat import WeightsNotFoundError
    from genrekit.backbones.runners import backbone_runner

    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("GENREKIT_EFFICIENTAT_WEIGHTS", raising=False)
    monkeypatch.setenv("GENREKIT_NO_DOWNLOAD", "1")
    with pytest.raises(WeightsNotFoundError, match=r"downloads disabled.*GENREKIT_EFFICIENTAT_WEIGHTS=PATH") as exc:
        backbone_runner("efficientat_mn04", engine="onnx")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "empty-cache" / "onnx").exists()


def test_a_named_weights_file_is_checked_even_when_cached(efficientat_dir, tmp_path, monkeypatch):
    """A converted mn04 in the cache is not used in place of a file the user names that is not
    the release file (``--efficientat-weights`` / ``GENREKIT_EFFICIENTAT_WEIGHTS``); the release
    file itself, named either way, uses that cached copy."""
    from genrekit.backbones.efficientat import WeightsNotFoundError
    from genrekit.backbones.efficientat_onnx import OrtEfficientatRunner

    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GENREKIT_EFFICIENTAT_WEIGHTS", raising=False)
    monkeypatch.setenv("GENREKIT_NO_DOWNLOAD", "1")
    release = efficientat_dir / "mn04_as_mAP_432.pt"
    OrtEfficientatRunner(weights=release, threads=1)  # checked, converted from it into the cache (no download)
    path = onnx_graphs.converted_path("efficientat_mn04", "net")
    blob = onnx_graphs.read_checked(path)
    assert blob is not None
    monkeypatch.setenv("GENREKIT_EFFICIENTAT_WEIGHTS", str(release))
    OrtEfficientatRunner(threads=1)  # the usual lookup: the cached copy
    assert onnx_graphs.read_checked(path) == blob
    monkeypatch.delenv("GENREKIT_EFFICIENTAT_WEIGHTS")
    other = tmp_path / "other.pt"
    other.write_bytes(b"not the release")
    with pytest.raises(WeightsNotFoundError, match="not the EfficientAT mn04_as_mAP_432.pt release file"):
        OrtEfficientatRunner(weights=other, threads=1)
    monkeypatch.setenv("GENREKIT_EFFICIENTAT_WEIGHTS", str(other))
    with pytest.raises(WeightsNotFoundError, match="given as GENREKIT_EFFICIENTAT_WEIGHTS"):
        OrtEfficientatRunner(threads=1)


def _model_with_audioset(path: Path) -> Path:
    """The committed default head plus an ``audioset`` part (random AudioSet head, alpha 0.5),
    written with numpy (no torch) the way model files are: a toy of the two-backbone default."""
    from safetensors.numpy import save_file

    from genrekit.models.audioset import ROW
    from genrekit.models.default import HEAD_PATH
    from genrekit.models.modelfile import DIGEST_KEY, META_KEY, read_model_file, tensors_digest

    tensors, meta = read_model_file(HEAD_PATH, numpy=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    n = len(meta.get("track_head_labels") or meta["labels"])
    rng = np.random.default_rng(0)
    tensors |= {"audioset.m0.w1": (0.01 * rng.standard_normal((n, ROW))).astype(np.float32),
                "audioset.m0.b1": np.zeros(n, np.float32), "audioset.m0.mu": np.zeros(ROW, np.float32),
                "audioset.m0.sigma": np.ones(ROW, np.float32)}
    meta = dict(meta, audioset={"window_seconds": 10.0, "patch_stride": 10, "feature": "all", "alpha": 0.5})
    meta["feature_spec"] = dict(meta["feature_spec"], context_seconds=10.0, context_stride=10)
    blob = json.dumps(meta)
    save_file(tensors, str(path), metadata={META_KEY: blob, DIGEST_KEY: tensors_digest(tensors, blob)})
    return path


NO_TORCH_AUDIOSET = r"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises: the test fails loudly, not only at the end
sys.modules["onnx"] = None  # nor is the onnx package needed (a light install has only onnxruntime)
from genrekit.cli.main import main
rc = main(["predict", sys.argv[1], "--model", sys.argv[2], "--format", "jsonl"])
from genrekit.models.base import load_model
m = load_model(sys.argv[2])
assert m.audioset is not None, "the toy model lost its AudioSet part"
from genrekit.backbones import runners
ran = [k for k in runners._RUNNERS if k[0] == "efficientat_mn04"]
assert ran and all(k[2].startswith("onnx") for k in ran), ran
del sys.modules["torch"]
assert "torch" not in sys.modules and "onnxruntime" in sys.modules, sorted(m for m in sys.modules if "torch" in m)
print("rc", rc)
"""


def test_prediction_with_audioset_part_never_imports_torch(efficientat_dir, gtzan_clips, tmp_path):
    """``genrekit predict`` with a model that runs mn04 answers through ONNX Runtime only."""
    from genrekit.backbones import musicnn as M
    from genrekit.datasets import clips_in

    try:
        M.find_weights("MSD_musicnn")
    except M.WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    model = _model_with_audioset(tmp_path / "toy_audioset.safetensors")
    clip = clips_in(gtzan_clips, "metal")[0]
    env = {**os.environ, "GENREKIT_ENGINE": "auto", "PYTHONPATH": str(REPO / "src"),
           "GENREKIT_CACHE_DIR": str(tmp_path / "fresh-cache"),  # converts mn04 (and musicnn) here, without onnx
           "GENREKIT_EFFICIENTAT_WEIGHTS": str(efficientat_dir / "mn04_as_mAP_432.pt")}
    proc = subprocess.run([sys.executable, "-c", NO_TORCH_AUDIOSET, str(clip), str(model)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("rc 0")
    record = json.loads(proc.stdout.strip().splitlines()[0])
    assert record["genre"]
    assert onnx_graphs.read_checked(tmp_path / "fresh-cache" / "onnx" / onnx_graphs.converted_path(
        "efficientat_mn04", "net").name) is not None
