"""onnx_graphs and musicnn_onnx: weight-free structures filled on the protobuf bytes, the cache
with its checksum, and parity of the ONNX Runtime path with the torch path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genrekit.backbones import musicnn_onnx, onnx_graphs
from genrekit.backbones.onnx_graphs import OnnxGraphError, fill_graph, structure_initializers

REPO = Path(__file__).resolve().parents[1]


def _tiny_structure(path: Path) -> Path:
    """y = relu(x @ w + b), built with onnx.helper and stripped like an exported graph."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]),
         helper.make_node("Relu", ["z"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        initializer=[numpy_helper.from_array(rng.standard_normal((3, 2)).astype(np.float32), "w"),
                     numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", onnx_graphs.OPSET)])
    model.ir_version = 8
    path.write_bytes(onnx_graphs.strip_initializers(model).SerializeToString())
    return path


def test_fill_graph_runs_and_equals_numpy(tmp_path):
    onnx = pytest.importorskip("onnx")
    structure = _tiny_structure(tmp_path / "tiny.onnx")
    assert structure_initializers(structure.read_bytes()) == {"w": ((3, 2), np.dtype("<f4")), "b": ((2,), np.dtype("<f4"))}
    w = np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5
    b = np.array([0.5, -1.0], np.float32)
    blob = fill_graph(structure, {"w": w, "b": b})
    onnx.checker.check_model(onnx.load_from_string(blob))
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    (y,) = onnx_graphs.session(blob, threads=1).run(None, {"x": x})
    np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-6, atol=1e-6)


def test_fill_graph_is_strict(tmp_path):
    structure = _tiny_structure(tmp_path / "tiny.onnx")
    w, b = np.zeros((3, 2), np.float32), np.zeros(2, np.float32)
    with pytest.raises(OnnxGraphError, match=r"missing \['b'\]"):
        fill_graph(structure, {"w": w})
    with pytest.raises(OnnxGraphError, match=r"unused \['extra'\]"):
        fill_graph(structure, {"w": w, "b": b, "extra": b})
    with pytest.raises(OnnxGraphError, match=r"w has shape \(2, 3\), the graph wants \(3, 2\)"):
        fill_graph(structure, {"w": w.T, "b": b})


def test_committed_structures_are_weight_free_and_current():
    """The committed musicnn graphs hold names and shapes only, split the state dict between
    them, and are what the code builds now."""
    inits = {}
    for path in musicnn_onnx.STRUCTURES.values():
        blob = path.read_bytes()
        assert len(blob) < 64_000
        part = structure_initializers(blob)
        assert not set(part) & set(inits)
        inits |= part
    assert {k: v[0] for k, v in inits.items()} == musicnn_onnx.initializer_shapes()
    onnx = pytest.importorskip("onnx")
    for path in musicnn_onnx.STRUCTURES.values():
        m = onnx.load(str(path))
        assert all(not (i.raw_data or i.float_data) for i in m.graph.initializer)
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "export_onnx_graphs.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_converted_models_cached_with_checksum(musicnn_source, tmp_path, monkeypatch):
    import hashlib

    onnx = pytest.importorskip("onnx")
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "cache"))
    blobs = onnx_graphs.converted_models("MSD_musicnn")
    assert set(blobs) == {"frontend", "backend"}
    for part, blob in blobs.items():
        onnx.checker.check_model(onnx.load_from_string(blob))
        path = onnx_graphs.converted_path("MSD_musicnn", part)
        assert path.read_bytes() == blob and path.parent == tmp_path / "cache" / "onnx"
        meta = json.loads(path.with_name(path.name + ".json").read_text())
        assert meta["sha256"] == hashlib.sha256(blob).hexdigest() and "ISC" in meta["weights"]
        assert onnx_graphs.read_checked(path) == blob
    assert not [p for p in (tmp_path / "cache" / "onnx").iterdir() if p.name.startswith(".")]  # no temp file left
    path = onnx_graphs.converted_path("MSD_musicnn", "frontend")
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"x" * 10)  # damaged on disk: the checksum catches it
    assert onnx_graphs.read_checked(path) is None
    assert onnx_graphs.converted_models("MSD_musicnn") == blobs  # converted again
    assert onnx_graphs.read_checked(path) == good


def test_ort_runner_equals_itself_shared_and_per_patch(musicnn_source):
    """Overlapping patches through the shared front end equal the same patches one by one, and
    patches that are not such cuts run one by one (checked, not trusted)."""
    from genrekit.backbones.musicnn_onnx import OrtMusicnnRunner

    rng = np.random.default_rng(0)
    seq = rng.standard_normal((187 + 5 * 61, 96)).astype(np.float32)
    patches = np.stack([seq[i * 61 : i * 61 + 187] for i in range(6)])
    r = OrtMusicnnRunner("MSD_musicnn", threads=1, chunk=4)
    shared, alone = r.run(patches, hop=61), r.run(patches)
    for k in ("tags", "penultimate"):
        np.testing.assert_allclose(shared[k], alone[k], atol=2e-5)
    shuffled = patches[[1, 0, 2, 3, 5, 4]]
    np.testing.assert_allclose(r.run(shuffled, hop=61)["tags"], alone["tags"][[1, 0, 2, 3, 5, 4]], atol=2e-5)
    assert r.run(patches[:0])["tags"].shape == (0, 50)


def test_unknown_engine_and_backbone_are_one_line(monkeypatch):
    from genrekit.backbones.runners import resolve_engine
    from genrekit.errors import GenrekitError

    monkeypatch.setenv("GENREKIT_ENGINE", "tpu")
    with pytest.raises(GenrekitError, match="GENREKIT_ENGINE=tpu: choose from auto, onnx, torch"):
        resolve_engine("MSD_musicnn")
    with pytest.raises(GenrekitError, match="no ONNX graph for this backbone"):
        onnx_graphs.get("MSD_vgg")


# -- parity with the torch path (the full 147 clips: benchmarks/onnx_parity.py) ---------------------------


def _clip_values(model, gtzan_clips, genres=("classical", "hiphop", "metal")):
    from genrekit.audio import load_audio
    from genrekit.datasets import clips_in

    for g in genres:
        clip = clips_in(gtzan_clips, g)[0]
        yield clip, model.features(load_audio(clip, model.spec.sample_rate)).values


def test_parity_with_torch_fp32(musicnn_source, gtzan_clips, monkeypatch):
    """Per-tag outputs of both networks within 1e-4 of torch in float32, and the same track genre."""
    pytest.importorskip("torch")
    from genrekit.backbones.runners import backbone_runner
    from genrekit.models.base import load_model

    monkeypatch.setenv("GENREKIT_MUSICNN_PRECISION", "fp32")
    model = load_model("musicnn")
    for clip, values in _clip_values(model, gtzan_clips):
        patches = model.split_values(values)[0]
        for name in ("MSD_musicnn", "MTT_musicnn"):
            ort = backbone_runner(name, engine="onnx").run(patches, hop=61)
            ref = backbone_runner(name, engine="torch").run(patches, hop=61)
            for k in ("tags", "penultimate"):
                diff = float(np.abs(ort[k] - ref[k]).max())
                assert diff <= 1e-4, f"{clip.name} {name} {k}: {diff}"
        probs = {}
        for engine in ("onnx", "torch"):
            monkeypatch.setenv("GENREKIT_ENGINE", engine)
            model._last = None
            probs[engine] = model.track_probs(values)
        assert np.argmax(probs["onnx"]) == np.argmax(probs["torch"]), clip.name
        np.testing.assert_allclose(probs["onnx"], probs["torch"], atol=1e-4)


NO_TORCH = r"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises: the test fails loudly, not only at the end
for name in ("scipy", "sklearn", "matplotlib"):  # nor in the light install (the train / plots extras)
    sys.modules[name] = None
from genrekit.cli.main import main
rc = main(["predict", sys.argv[1], "--format", "jsonl"])
from genrekit.batch.rows import limit_threads
limit_threads(1)
from genrekit.serve.app import create_app
for name in ("torch", "scipy", "sklearn", "matplotlib"):
    del sys.modules[name]
assert not {"torch", "scipy", "sklearn", "matplotlib"} & set(sys.modules), sorted(sys.modules)
assert "torch" not in sys.modules and "onnxruntime" in sys.modules, sorted(m for m in sys.modules if "torch" in m)
print("rc", rc)
"""


def test_prediction_never_imports_torch(musicnn_source, gtzan_clips, tmp_path):
    from genrekit.datasets import clips_in

    clip = clips_in(gtzan_clips, "jazz")[0]
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(clip)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**__import__("os").environ, "GENREKIT_ENGINE": "auto",
                                             "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("rc 0")
    record = json.loads(proc.stdout.strip().splitlines()[0])
    from genrekit.models.default import GENRES

    assert record["genre"] in [*GENRES, "other"]


NO_TORCH_TRAIN = r"""
import sys
sys.modules["torch"] = None  # as in the light install: `import torch` raises ModuleNotFoundError
from genrekit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["train", "--data", "nowhere", "--model", "fnn", "--out", "o"],
                                  ["compare", "--data", "nowhere", "--out", "o"],
                                  ["sweep", "--data", "nowhere", "--out", "o"]])
def test_training_commands_without_torch_say_so_in_one_line(argv, tmp_path):
    proc = subprocess.run([sys.executable, "-c", NO_TORCH_TRAIN, *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"genrekit: error: genrekit {argv[0]} needs torch, which is not installed: "
                                   "pip install 'genrekit[train]'")
    assert not (tmp_path / "o").exists()


def test_missing_optional_package_is_one_line():
    from genrekit.errors import GenrekitError, missing_extra, require

    err = missing_extra(ModuleNotFoundError(name="matplotlib.pyplot"), "--timeline")
    assert str(err) == "--timeline needs matplotlib, which is not installed: pip install 'genrekit[plots]'"
    assert missing_extra(ModuleNotFoundError(name="numpy"), "x") is None  # a core package: a real bug, not a hint
    with pytest.raises(GenrekitError, match=r"needs yt_dlp_nope"):
        require("yt_dlp_nope", "urls")


def test_a_new_backbone_is_one_registration_per_engine(tmp_path, monkeypatch):
    """A network registered with onnx_graphs.register + runners.register_runner runs through
    backbone_runner with its weights converted into the cache, as EfficientAT mn04 will."""
    from genrekit.backbones import runners

    structure = _tiny_structure(tmp_path / "tiny.onnx")
    w, b = np.eye(3, 2, dtype=np.float32), np.array([0.0, -1.0], np.float32)
    onnx_graphs.register(onnx_graphs.OnnxBackbone("tiny_test", {"net": structure}, "1",
                                                  arrays=lambda weights: {"w": w, "b": b}))

    class OrtTiny:
        engine = "onnx"

        def __init__(self, name, weights, threads):
            self.session = onnx_graphs.backbone_sessions(name, weights, threads)["net"]

        def run(self, x, hop=None):
            return {"y": self.session.run(None, {"x": x})[0]}

    runners.register_runner("tiny_test", runners.RunnerFactories(onnx=OrtTiny, torch=None))
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GENREKIT_ENGINE", raising=False)
    try:
        x = np.array([[1.0, 2.0, 3.0]], np.float32)
        np.testing.assert_allclose(runners.backbone_runner("tiny_test").run(x)["y"], np.maximum(x @ w + b, 0))
        assert onnx_graphs.read_checked(onnx_graphs.converted_path("tiny_test", "net")) is not None
        from genrekit.errors import GenrekitError

        with pytest.raises(GenrekitError, match="tiny_test: no torch runner"):
            runners.backbone_runner("tiny_test", engine="torch")
        with pytest.raises(GenrekitError, match="nope: unknown backbone"):
            runners.backbone_runner("nope")
    finally:
        onnx_graphs._REGISTRY.pop("tiny_test", None)
        runners._FACTORIES.pop("tiny_test", None)


LEAN = r"""
import sys
from genrekit.cli.main import main
rc = main(["predict", *sys.argv[1:], "--format", "jsonl"])
heavy = sorted({"torch", "scipy", "sklearn", "matplotlib"} & {m.split(".")[0] for m in sys.modules})
print("rc", rc, "heavy", heavy)
"""


@pytest.mark.parametrize("model", [[], ["--model", "musicnn"]], ids=["default", "musicnn"])
def test_prediction_imports_nothing_heavy_even_when_installed(musicnn_source, gtzan_clips, tmp_path, model):
    """With torch, scipy and scikit-learn installed (this environment), prediction with either
    built-in still imports none of them: importing scipy.fft and scipy.sparse cost 0.2-0.4 s of
    every cold start, and the light install, which has none, computes the very same features."""
    pytest.importorskip("scipy")
    from genrekit.datasets import clips_in

    clip = clips_in(gtzan_clips, "jazz")[0]
    proc = subprocess.run([sys.executable, "-c", LEAN, *model, str(clip)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**__import__("os").environ, "GENREKIT_ENGINE": "auto",
                                             "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "rc 0 heavy []", proc.stdout[-500:]
