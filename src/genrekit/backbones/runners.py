"""Which engine runs a backbone network: ONNX Runtime (light install, the default) or torch.

A model asks ``backbone_runner(name, weights).run(patches, hop=...)`` (musicnn) or
``.run_mel(mel)`` (EfficientAT mn04, ``efficientat_onnx``) and gets numpy outputs; it never
imports an engine itself. ONNX Runtime is chosen whenever it is installed and the
backbone has a registered graph (:mod:`genrekit.backbones.onnx_graphs`), so prediction never
imports torch; torch (``genrekit[train]``) runs it otherwise, or when ``GENREKIT_ENGINE=torch``
asks for it (parity checks, benchmarks).

``set_threads(n)`` is the one place that sets how many threads inference uses, whatever the
engine: ``serve``, ``batch`` workers and benchmarks call it instead of ``torch.set_num_threads``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from genrekit.errors import GenrekitError

ENV_ENGINE = "GENREKIT_ENGINE"
#: Environment variables that steer a weights lookup (``musicnn.find_weights``).
LOOKUP_ENV = ("GENREKIT_MUSICNN_WHEEL", "GENREKIT_MUSICNN_DIR", "GENREKIT_NO_DOWNLOAD")
ENGINES = ("auto", "onnx", "torch")
_THREADS: int | None = None
_RUNNERS: dict[tuple[str, str, str, int | None], Any] = {}  # (name, weights, engine:precision, threads)


class BackboneRunner(Protocol):
    """What a model needs of a backbone: numpy in, numpy out."""

    name: str
    engine: str

    def run(self, patches: np.ndarray, hop: int | None = None) -> dict[str, np.ndarray]: ...


def set_threads(n: int | None) -> None:
    """Inference threads for every engine (None: the engine's default, every core). Runners made
    afterwards use it; torch, when already imported, is set now too."""
    global _THREADS
    _THREADS = max(1, int(n)) if n else None
    import sys

    torch = sys.modules.get("torch")
    if _THREADS and torch is not None:
        torch.set_num_threads(_THREADS)


def threads() -> int | None:
    return _THREADS


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def resolve_engine(name: str, engine: str | None = None) -> str:
    """"onnx" or "torch" for backbone ``name`` (``engine``, else ``GENREKIT_ENGINE``, else auto)."""
    engine = engine or os.environ.get(ENV_ENGINE, "") or "auto"
    if engine not in ENGINES:
        raise GenrekitError(f"{ENV_ENGINE}={engine}: choose from {', '.join(ENGINES)}")
    if engine == "auto":
        from genrekit.backbones import onnx_graphs

        if has_module("onnxruntime") and name in onnx_graphs.registered():
            return "onnx"
        if has_module("torch"):
            return "torch"
        raise GenrekitError(f"{name}: neither onnxruntime nor torch is installed (pip install onnxruntime)")
    if engine == "torch" and not has_module("torch"):
        raise GenrekitError(f"{ENV_ENGINE}=torch: torch is not installed (pip install 'genrekit[train]')")
    return engine


class TorchMusicnnRunner:
    """musicnn through torch (``musicnn.load_backbone`` + ``run_patches``): the training path and
    the reference the ONNX path is checked against."""

    engine = "torch"

    def __init__(self, name: str, weights: str | os.PathLike[str] | None = None, precision: str = "auto") -> None:
        from genrekit.backbones.musicnn import load_backbone

        self.name = name
        self.net = load_backbone(name, weights, precision=precision)

    def run(self, patches: np.ndarray, hop: int | None = None) -> dict[str, np.ndarray]:
        from genrekit.backbones.musicnn import run_patches

        return run_patches(self.net, patches, hop=hop)


@dataclass(frozen=True)
class RunnerFactories:
    """How to build backbone ``name``'s runner on each engine: ``onnx(name, weights, threads)``
    and ``torch(name, weights)``, each returning an object with the backbone's ``run`` method;
    ``lookup_env`` names the environment variables its weights lookup reads (part of the memo
    key). A backbone without an ``onnx`` factory runs on torch only."""

    onnx: Callable[..., Any] | None
    torch: Callable[..., Any] | None
    lookup_env: tuple[str, ...] = ()


def _ort_musicnn(name: str, weights: Any, threads: int | None) -> Any:
    from genrekit.backbones.musicnn_onnx import OrtMusicnnRunner

    return OrtMusicnnRunner(name, weights, threads=threads)


def _torch_musicnn(name: str, weights: Any) -> Any:
    return TorchMusicnnRunner(name, weights)


_FACTORIES: dict[str, RunnerFactories] = {}


def register_runner(name: str, factories: RunnerFactories) -> None:
    """Make ``backbone_runner(name)`` build ``factories``' runners (the one step a new backbone
    takes besides registering its ONNX graph with ``onnx_graphs.register``)."""
    _FACTORIES[name] = factories


for _name in ("MSD_musicnn", "MTT_musicnn"):
    register_runner(_name, RunnerFactories(_ort_musicnn, _torch_musicnn, LOOKUP_ENV))
for _name in ("MSD_vgg", "MTT_vgg"):  # musicnn's VGG baselines: no ONNX graph, torch only
    register_runner(_name, RunnerFactories(None, _torch_musicnn, LOOKUP_ENV))


def _ort_efficientat(name: str, weights: Any, threads: int | None) -> Any:
    from genrekit.backbones.efficientat_onnx import OrtEfficientatRunner

    return OrtEfficientatRunner(name, weights, threads=threads)


def _torch_efficientat(name: str, weights: Any) -> Any:
    from genrekit.backbones.efficientat_onnx import TorchEfficientatRunner

    return TorchEfficientatRunner(name, weights)


#: EfficientAT mn04: ``run_mel(mel [B, 128, T])`` -> logits / embedding / hidden (``efficientat_onnx``).
register_runner("efficientat_mn04", RunnerFactories(_ort_efficientat, _torch_efficientat,
                                                    ("GENREKIT_EFFICIENTAT_WEIGHTS", "GENREKIT_NO_DOWNLOAD")))


def backbone_runner(name: str, weights: str | os.PathLike[str] | None = None, engine: str | None = None) -> Any:
    """The runner of backbone ``name`` (memoised per weights, engine and thread count)."""
    try:
        factories = _FACTORIES[name]
    except KeyError:
        raise GenrekitError(f"{name}: unknown backbone (have {', '.join(sorted(_FACTORIES))})") from None
    engine = resolve_engine(name, engine)
    precision = os.environ.get("GENREKIT_MUSICNN_PRECISION", "auto") if engine == "torch" else "fp32"
    # where the weights would be looked up is part of the key: a changed --musicnn-weights /
    # GENREKIT_MUSICNN_WHEEL or cache folder must look again, never reuse another copy
    from genrekit.cache import cache_dir

    lookup = "|".join([str(cache_dir())] + [os.environ.get(v, "") for v in factories.lookup_env])
    key = (name, f"{weights}|{lookup}", f"{engine}:{precision}", _THREADS)
    if key not in _RUNNERS:
        factory = factories.onnx if engine == "onnx" else factories.torch
        if factory is None:
            raise GenrekitError(f"{name}: no {engine} runner (GENREKIT_ENGINE chooses the engine)")
        if engine == "onnx":
            _RUNNERS[key] = factory(name, weights, _THREADS)
        else:
            set_threads(_THREADS)
            _RUNNERS[key] = factory(name, weights)
    return _RUNNERS[key]
