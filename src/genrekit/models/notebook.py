"""FNN and CNN genre classifiers, and TorchGenreModel: a trained net plus everything to use it.

A model file (safetensors, see modelfile.py) holds the weights and, as JSON metadata, the
architecture config, the feature spec, the labels, the normalisation statistics and the metrics;
loading rebuilds the net from the config, so no code from the file is ever executed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genrekit.errors import ModelFileError
from genrekit.features import spec_from_dict
from genrekit.models.base import GenreModel, register_loader

FORMAT = "genrekit-torch"

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


def activation(name: str) -> nn.Module:
    """An activation module by name (see ACTIVATIONS)."""
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None


class FNN(nn.Module):
    """Feed-forward net on feature vectors; the notebook's is 26 -> 128 -> 32 -> classes, ReLU."""

    def __init__(self, n_inputs: int, n_classes: int, hidden: Sequence[int] = (128, 32),
                 activation_name: str = "relu", dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        prev = n_inputs
        for h in hidden:
            layers += [nn.Linear(prev, h), activation(activation_name), nn.Dropout(dropout)]
            prev = h
        layers.append(nn.Linear(prev, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class CNN(nn.Module):
    """The notebook's CNN on [n_mels, n_frames] log-mel segments.

    Four conv blocks (5x5 conv 'same', BatchNorm, activation, 2x2 max-pool) with 16/32/64/128
    channels, then dropout and dense 1024 -> 256 -> 32 -> classes. The flatten size is measured
    with a dummy forward pass so any segment length / mel count works.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int,
                 channels: Sequence[int] = (16, 32, 64, 128), dense: Sequence[int] = (1024, 256, 32),
                 activation_name: str = "relu", dropout: float = 0.3, kernel_size: int = 5):
        super().__init__()
        blocks: list[nn.Module] = []
        prev = 1
        for c in channels:
            blocks += [nn.Conv2d(prev, c, kernel_size, padding=kernel_size // 2), nn.BatchNorm2d(c),
                       activation(activation_name), nn.MaxPool2d(2, ceil_mode=True)]
            prev = c
        self.features = nn.Sequential(*blocks)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, *input_shape)).numel()
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        prev = flat
        for d in dense:
            layers += [nn.Linear(prev, d), activation(activation_name), nn.Dropout(dropout)]
            prev = d
        layers.append(nn.Linear(prev, n_classes))
        self.classifier = nn.Sequential(*layers)
        self.flatten_size = flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.classifier(self.features(x))


class Ensemble(nn.Module):
    """K independently initialised copies of a net trained side by side on the same batches.

    forward() returns log of the mean member probability, so softmax(forward(x)) is the
    ensemble's averaged probability; training uses member_logits() so each member keeps its
    own loss (averaging seeds is the cheapest variance reduction for small tabular data).
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self.member_logits(x), dim=-1)
        return torch.logsumexp(logp, dim=0) - float(np.log(len(self.members)))


def default_config(arch: str) -> dict:
    """Architecture defaults (the notebook's) that the CLI overrides."""
    if arch == "fnn":
        return {"arch": "fnn", "hidden": [128, 32], "activation": "relu", "dropout": 0.3}
    if arch == "cnn":
        return {"arch": "cnn", "channels": [16, 32, 64, 128], "dense": [1024, 256, 32],
                "activation": "relu", "dropout": 0.3, "kernel_size": 5}
    raise ValueError(f"unknown model {arch!r}; choose fnn or cnn")


def build_model(config: dict) -> nn.Module:
    """Net from a JSON-able config holding arch, input_shape, n_classes and the arch's options."""
    k = int(config.get("ensemble", 1) or 1)
    if k > 1:
        return Ensemble([build_model(dict(config, ensemble=1)) for _ in range(k)])
    arch = config["arch"]
    shape = list(config["input_shape"])
    n_classes = int(config["n_classes"])
    if arch == "fnn":
        return FNN(int(np.prod(shape)), n_classes, config.get("hidden", (128, 32)),
                   config.get("activation", "relu"), float(config.get("dropout", 0.3)))
    if arch == "cnn":
        if len(shape) != 2:
            raise ValueError(f"cnn needs 2-D [mels, frames] inputs, got shape {shape}; use --features mel")
        return CNN(shape, n_classes, config.get("channels", (16, 32, 64, 128)),
                   config.get("dense", (1024, 256, 32)), config.get("activation", "relu"),
                   float(config.get("dropout", 0.3)), int(config.get("kernel_size", 5)))
    raise ValueError(f"unknown model {arch!r}; choose fnn or cnn")


class TorchGenreModel(GenreModel):
    """A trained FNN/CNN with its spec, labels and normalisation, usable as a GenreModel.

    `spec` is a FeatureSpec for models whose inputs can be computed from audio, or None for
    models trained on precomputed tables without an extractor (their metadata keeps a
    {"kind": "table", "feature_names": ...} dict in `spec_dict`). Inputs are standardised with
    the training mean/std before the net sees them.
    """

    format = FORMAT

    def __init__(self, net: nn.Module, config: dict, labels: Sequence[str], spec_dict: dict | None,
                 mean: np.ndarray, std: np.ndarray, metrics: dict | None = None, info: dict | None = None):
        spec = None
        if spec_dict and spec_dict.get("kind") != "table":
            spec = spec_from_dict(spec_dict)
        super().__init__(list(labels), spec, metrics, info)
        self.net = net.eval()
        self.config = dict(config)
        self.spec_dict = spec_dict
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def card(self) -> dict:
        return {"format": self.format, "arch": self.config.get("arch"), "labels": self.labels,
                "feature_spec": self.spec_dict, "metrics": self.metrics, **self.info}

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """log of variance-like columns (config "log_columns"), then the training mean/std."""
        return standardise(values, self.mean, self.std, self.config.get("log_columns"))

    @torch.no_grad()
    def segment_probs(self, values: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Softmax probabilities [n_segments, n_labels] for raw (unnormalised) feature values."""
        x = self.normalise(values)
        if len(x) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        self.net.eval()
        out = []
        for i in range(0, len(x), batch_size):
            out.append(torch.softmax(self.net(torch.from_numpy(x[i:i + batch_size])), dim=1).numpy())
        return np.concatenate(out).astype(np.float32)

    def track_probs(self, values: np.ndarray) -> np.ndarray:
        """Mean of the segment probabilities: one [n_labels] vector for a whole track."""
        p = self.segment_probs(values)
        return p.mean(axis=0) if len(p) else np.full(len(self.labels), 1.0 / len(self.labels), np.float32)

    def probe_outputs(self) -> int:
        """Probabilities per segment on one input of zeros (``base.check_outputs`` compares it
        with the labels): also fails when the stored mean/std do not fit the input shape."""
        shape = [int(d) for d in self.config["input_shape"]]
        return int(self.segment_probs(np.zeros([1, *shape], np.float32)).shape[1])

    # Files ------------------------------------------------------------------------------------
    def meta(self) -> dict:
        return {"format": FORMAT, "config": self.config, "labels": self.labels, "spec": self.spec_dict,
                "metrics": self.metrics, "info": self.info}

    def save(self, path: Path) -> Path:
        from genrekit.models.modelfile import save_model_file

        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors["norm.mean"] = torch.from_numpy(self.mean.copy())
        tensors["norm.std"] = torch.from_numpy(self.std.copy())
        save_model_file(Path(path), tensors, self.meta())
        return Path(path)

    @classmethod
    def from_file_data(cls, tensors: dict, meta: dict) -> TorchGenreModel:
        net = build_model(meta["config"])
        # read_model_file(numpy=True) (load_model) gives numpy arrays; the module wants tensors
        state = {k[4:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("net.")}
        net.load_state_dict(state)
        return cls(net, meta["config"], meta["labels"], meta.get("spec"),
                   _np(tensors["norm.mean"]), _np(tensors["norm.std"]), meta.get("metrics"), meta.get("info"))

    @classmethod
    def load(cls, path: Path) -> TorchGenreModel:
        from genrekit.models.base import model_from_data
        from genrekit.models.modelfile import read_model_file

        tensors, meta = read_model_file(Path(path))
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a {FORMAT} model file (format {meta.get('format')!r})")
        return model_from_data(tensors, meta, Path(path))  # type: ignore[return-value]


def log_columns(x: np.ndarray, columns) -> np.ndarray:
    """x with log(x + 1e-8) applied to the given feature columns (heavy-tailed variances)."""
    x = np.asarray(x, dtype=np.float32)
    if columns:
        x = x.copy()
        idx = np.asarray(columns, dtype=np.int64)
        x[:, idx] = np.log(np.maximum(x[:, idx], 0.0) + 1e-8)
    return x


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray, columns=None) -> np.ndarray:
    return ((log_columns(x, columns) - mean) / std).astype(np.float32)


def _np(t) -> np.ndarray:
    return t.numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


register_loader(FORMAT, lambda tensors, meta, path: TorchGenreModel.from_file_data(tensors, meta))
