"""FNN / CNN shapes, ensembles, and the model-file round trip (no pickle, spec + stats kept)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genrekit.features import LogMelSpec, MfccSegmentSpec
from genrekit.models.base import load_model
from genrekit.models.modelfile import read_model_meta
from genrekit.models.notebook import CNN, FNN, TorchGenreModel, build_model, default_config


def test_fnn_shapes_and_activation() -> None:
    net = FNN(26, 4, (128, 32), "elu", 0.2)
    assert net(torch.zeros(5, 26)).shape == (5, 4)
    assert any(isinstance(m, torch.nn.ELU) for m in net.modules())
    with pytest.raises(ValueError, match="unknown activation"):
        FNN(26, 4, (8,), "nope")


@pytest.mark.parametrize("shape", [(128, 129), (64, 44), (20, 9)])
def test_cnn_flatten_size_follows_input(shape) -> None:
    net = CNN(shape, 10).eval()
    assert net(torch.zeros(2, *shape)).shape == (2, 10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128] and convs[0].kernel_size == (5, 5)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 4
    dense = [m.out_features for m in net.classifier if isinstance(m, torch.nn.Linear)]
    assert dense == [1024, 256, 32, 10]


def test_ensemble_averages_member_probabilities() -> None:
    torch.manual_seed(0)
    net = build_model(dict(default_config("fnn"), input_shape=[6], n_classes=3, ensemble=3)).eval()
    x = torch.randn(4, 6)
    mean_p = torch.softmax(net.member_logits(x), -1).mean(0)
    torch.testing.assert_close(torch.softmax(net(x), -1), mean_p)


def _model(arch: str, spec, shape) -> TorchGenreModel:
    torch.manual_seed(0)
    cfg = dict(default_config(arch), input_shape=list(shape), n_classes=3)
    net = build_model(cfg)
    mean = np.full(shape[:1] + ((1,) if len(shape) == 2 else ()), 0.5, np.float32)
    std = np.full_like(mean, 2.0)
    return TorchGenreModel(net, cfg, ["a", "b", "c"], spec.to_dict(), mean, std, {"test": {"accuracy": 0.7}})


@pytest.mark.parametrize("arch,spec,shape", [("fnn", MfccSegmentSpec(), (26,)),
                                             ("cnn", LogMelSpec(n_mels=32, segment_seconds=1.0), (32, 43))])
def test_model_file_round_trip(tmp_path: Path, arch, spec, shape) -> None:
    m = _model(arch, spec, shape)
    path = m.save(tmp_path / "model.safetensors")
    assert b"pickle" not in path.read_bytes()[:200]
    meta = read_model_meta(path)
    assert meta["format"] == "genrekit-torch" and meta["labels"] == ["a", "b", "c"]
    loaded = load_model(tmp_path)  # the folder form, as `train --out` writes it
    assert isinstance(loaded, TorchGenreModel)
    assert loaded.spec == spec and loaded.metrics["test"]["accuracy"] == 0.7
    np.testing.assert_array_equal(loaded.mean, m.mean)
    x = np.random.default_rng(0).normal(size=(5, *shape)).astype(np.float32)
    np.testing.assert_allclose(loaded.segment_probs(x), m.segment_probs(x), rtol=1e-5, atol=1e-6)
    p = loaded.track_probs(x)
    assert p.shape == (3,) and p.sum() == pytest.approx(1.0, abs=1e-5)
    assert loaded.card()["arch"] == arch


def test_table_model_has_no_audio_spec(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = dict(default_config("fnn"), input_shape=[4], n_classes=2, log_columns=[1])
    m = TorchGenreModel(build_model(cfg), cfg, ["x", "y"], {"kind": "table", "feature_names": list("abcd")},
                        np.zeros(4, np.float32), np.ones(4, np.float32))
    loaded = load_model(m.save(tmp_path / "t.safetensors"))
    assert loaded.spec is None and loaded.spec_dict["feature_names"] == list("abcd")
    x = np.array([[1, np.e, 0, 0]], np.float32)
    np.testing.assert_allclose(loaded.normalise(x)[0, 1], 1.0, atol=1e-5)  # log applied to column 1
