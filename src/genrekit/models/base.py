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

from genrekit.errors import ModelFileError, one_line
from genrekit.features import Features, FeatureSpec

#: Model-file ``format`` -> module that registers its loader on import (lazy, to keep start-up cheap).
FORMAT_MODULES: dict[str, str] = {
    "genrekit-torch": "genrekit.models.notebook",
    "genrekit-musicnn-head": "genrekit.models.default",
    "genrekit-audioset-head": "genrekit.models.audioset_head",
}

_ASSETS = Path(__file__).parent / "assets"
#: The built-in models, by the name ``--model`` takes. ``default``: EfficientAT mn04 (AudioSet) on
#: 10 s windows + one head (``models.audioset_head``), the fast one; ``musicnn``: the two-backbone
#: model (musicnn's MSD tags per 3 s patch + mn04), for MSD tags and a timeline of 3 s segments.
BUILTIN_MODELS: dict[str, Path] = {"default": _ASSETS / "default_head.safetensors",
                                   "musicnn": _ASSETS / "musicnn_head.safetensors"}
_BUILTIN_LOADED: dict[str, GenreModel] = {}

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
    """The file a model reference names: ``None`` / a built-in name (``BUILTIN_MODELS``) -> that
    committed head, a folder -> its ``model.safetensors`` (as ``genrekit train --out`` writes),
    else the path."""
    if ref is None or str(ref) in BUILTIN_MODELS:
        return BUILTIN_MODELS[str(ref or "default")]
    path = Path(ref)
    return path / "model.safetensors" if path.is_dir() else path


def load_model(ref: str | os.PathLike[str] | None = None) -> GenreModel:
    """Load a model: ``None`` or ``"default"`` gives the pretrained default, ``"musicnn"`` the
    two-backbone built-in, else a model file path (or a folder holding ``model.safetensors``, as
    ``genrekit train --out`` writes). Built-ins are loaded once per process (their backbones load
    lazily at first prediction)."""
    from genrekit.models.modelfile import read_model_file

    name = "default" if ref is None else str(ref)
    if name in BUILTIN_MODELS and name in _BUILTIN_LOADED:
        return _BUILTIN_LOADED[name]
    path = model_path(ref)
    tensors, meta = read_model_file(path, numpy=True)  # torch only for a model that needs it
    model = model_from_data(tensors, meta, path)
    if name in BUILTIN_MODELS:
        _BUILTIN_LOADED[name] = model
    return model


def model_from_data(tensors: dict[str, Any], meta: dict[str, Any], path: Path) -> GenreModel:
    """Build the model a file's tensors and metadata describe, or say in one line what is wrong.

    A damaged or hand-edited file (labels missing or shortened, a config that does not match the
    tensors, an unknown feature spec) is refused here, naming the file, rather than failing later
    with a traceback or, worse, blaming each input ("unexpected ValueError: zip()")."""
    fmt = meta.get("format", "")
    if isinstance(fmt, str) and fmt not in _LOADERS and fmt in FORMAT_MODULES:
        importlib.import_module(FORMAT_MODULES[fmt])
    if not isinstance(fmt, str) or fmt not in _LOADERS:
        raise ModelFileError(f"{path}: unknown model format {fmt!r}")
    labels = meta.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ModelFileError(f"{path}: damaged model file: 'labels' is missing or not a list of genre names")
    if len(set(labels)) != len(labels):
        raise ModelFileError(f"{path}: damaged model file: 'labels' names a genre twice")
    try:
        model = _LOADERS[fmt](tensors, meta, path)
        check_outputs(model)
    except ModelFileError:
        raise
    except KeyError as exc:
        raise ModelFileError(f"{path}: damaged model file: {exc.args[0]!r} is missing") from None
    except (ValueError, TypeError, IndexError, RuntimeError, AttributeError) as exc:
        raise ModelFileError(f"{path}: damaged model file: {_why(exc)}") from None
    return model


def check_outputs(model: GenreModel) -> None:
    """Raise ValueError when a model's probabilities do not have one column per label: run its
    own ``probe`` (a tiny forward pass on zeros) when it has one."""
    probe = getattr(model, "probe_outputs", None)
    if probe is None:
        return
    n = int(probe())
    if n != len(model.labels):
        raise ValueError(f"'labels' names {len(model.labels)} genres but the model gives {n} probabilities")


def _why(exc: BaseException) -> str:
    """One line for a loader's exception; torch's state-dict errors put the useful part on line 2."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if isinstance(exc, RuntimeError) and len(lines) > 1 and "state_dict" in lines[0]:
        return f"its tensors do not match the network its config describes ({lines[1][:160]})"
    if isinstance(exc, ValueError) and lines:  # the loaders' own checks: already a sentence
        return lines[0][:200]
    return one_line(exc)
