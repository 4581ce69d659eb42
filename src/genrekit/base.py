"""The interface every genre model offers, and the registry that loads one from a reference.

Training (FNN/CNN), the pretrained musicnn default and any later model all answer the same calls,
so prediction, evaluation and the web service never branch on the model type: features come from
``model.spec`` (the spec stored with the model), probabilities from ``segment_probs`` /
``track_probs``.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import ModelFileError
from .features import Features, FeatureSpec

#: Model-file ``format`` -> module that registers its loader on import (lazy, to keep start-up cheap).
FORMAT_MODULES: dict[str, str] = {
    "genrekit-torch": "genrekit.models",
    "genrekit-musicnn-head": "genrekit.default_model",
}

_LOADERS: dict[str, Callable[[dict[str, Any], dict[str, Any], Path], GenreModel]] = {}


def register_loader(fmt: str, loader: Callable[[dict[str, Any], dict[str, Any], Path], GenreModel]) -> None:
    """Called by a model module at import: ``loader(tensors, meta, path)`` builds the model."""
    _LOADERS[fmt] = loader


class GenreModel(ABC):
    """A trained genre classifier bound to its feature spec and label names."""

    format: ClassVar[str] = ""

    def __init__(self, labels: list[str], spec: FeatureSpec, metrics: dict[str, Any] | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.labels = list(labels)
        self.spec = spec
        self.metrics = dict(metrics or {})
        self.info = dict(info or {})

    def features(self, y: np.ndarray) -> Features:
        """Model input of a mono signal at ``self.spec.sample_rate``."""
        return self.spec.extract(y)

    @abstractmethod
    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        """[n_segments, n_labels] class probabilities of a track's segments (``Features.values``)."""

    def track_probs(self, values: np.ndarray) -> np.ndarray:
        """[n_labels] probabilities of the whole track: by default the mean of its segments'."""
        return self.segment_probs(values).mean(axis=0)

    def tag_probs(self, values: np.ndarray) -> dict[str, float] | None:
        """Extra zero-shot tags (name -> probability) when the model has them, else None."""
        return None

    def card(self) -> dict[str, Any]:
        """What the model is: shown by ``GET /api/model`` and stored in reports."""
        return {
            "format": self.format,
            "labels": self.labels,
            "feature_spec": self.spec.to_dict(),
            "metrics": self.metrics,
            **self.info,
        }


def model_path(ref: str | os.PathLike[str] | None = None) -> Path:
    """The file a model reference names: ``None`` / ``"default"`` -> the committed default head,
    a folder -> its ``model.safetensors`` (as ``genrekit train --out`` writes), else the path."""
    if ref is None or str(ref) == "default":
        from .default_model import HEAD_PATH

        return HEAD_PATH
    path = Path(ref)
    return path / "model.safetensors" if path.is_dir() else path


def load_model(ref: str | os.PathLike[str] | None = None) -> GenreModel:
    """Load a model: ``None`` or ``"default"`` gives the pretrained default, else a model file path
    (or a folder holding ``model.safetensors``, as ``genrekit train --out`` writes)."""
    if ref is None or str(ref) == "default":
        from .default_model import load_default_model

        return load_default_model()
    from .modelfile import read_model_file

    path = model_path(ref)
    tensors, meta = read_model_file(path)
    fmt = meta.get("format", "")
    if fmt not in _LOADERS and fmt in FORMAT_MODULES:
        importlib.import_module(FORMAT_MODULES[fmt])
    if fmt not in _LOADERS:
        raise ModelFileError(f"{path}: unknown model format {fmt!r}")
    return _LOADERS[fmt](tensors, meta, path)
