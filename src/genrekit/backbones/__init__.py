"""Pretrained audio backbones: networks trained elsewhere whose outputs the genre heads read.

Each backbone module says where its weights come from (with their hash and licence), which front
end it needs, and what it gives per window. Weights are never part of this repository: they are
read from their published sources (and, for musicnn, converted) into the user cache on first use.

The registry below lists them by name, the way timm and torchvision list pretrained models::

    >>> from genrekit.backbones import list_backbones, get_backbone
    >>> list_backbones()
    ['efficientat_mn04', 'musicnn_msd']
    >>> net = get_backbone("efficientat_mn04").load()   # finds (or downloads) and checks the weights

Importing this package imports neither torch nor a network: ``load`` does.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from genrekit.backbones import efficientat as _eat
from genrekit.backbones import musicnn as _mnn
from genrekit.errors import GenrekitError


@dataclass(frozen=True)
class Backbone:
    """One pretrained backbone: its weights' provenance, the front end it needs and its outputs.

    ``outputs`` maps each per-window output key (as the backbone's run function returns it) to
    (width, meaning). ``sha256`` / ``size_bytes`` are None where the fetching tool checks the
    file itself (pip checks PyPI's hashes for the musicnn wheel)."""

    name: str
    title: str
    paper: str
    weights_url: str
    sha256: str | None
    size_bytes: int | None
    licence: str
    weights_env: str
    cli_flag: str
    sample_rate: int
    front_end: str
    window_s: float
    labels: tuple[str, ...]
    outputs: dict[str, tuple[int, str]]
    run: str  # "module:function" that runs it on a waveform or its front end's output
    _loader: Callable[..., object] = field(repr=False, compare=False, default=lambda **_: None)

    def load(self, weights: str | os.PathLike[str] | None = None):
        """The torch module in eval mode with the verified weights (memoised by the module)."""
        return self._loader(weights=weights)

    def runner(self) -> Callable[..., object]:
        mod, fn = self.run.split(":")
        return getattr(importlib.import_module(mod), fn)


def _load_musicnn_msd(weights: str | os.PathLike[str] | None = None):
    return _mnn.load_backbone("MSD_musicnn", weights)


def _load_efficientat(weights: str | os.PathLike[str] | None = None):
    return _eat.load_efficientat(weights)


BACKBONES: dict[str, Backbone] = {
    "musicnn_msd": Backbone(
        name="musicnn_msd",
        title="musicnn MSD_musicnn: 50 Million Song Dataset tags from 3 s log-mel patches",
        paper="Pons & Serra, 'musicnn: pre-trained convolutional neural networks for music audio tagging', ISMIR-LBD 2019",
        weights_url=f"https://pypi.org/project/musicnn/{_mnn.MUSICNN_VERSION}/ ({_mnn.WHEEL_NAME}, via pip)",
        sha256=None,
        size_bytes=None,
        licence="ISC, Copyright (c) Jordi Pons (https://github.com/jordipons/musicnn)",
        weights_env=_mnn.ENV_WHEEL,
        cli_flag="--musicnn-weights",
        sample_rate=_mnn.SR,
        front_end="log-mel, 16 kHz, n_fft 512, hop 256, 96 bands, patches of 187 frames (features.MusicnnSpec)",
        window_s=3.0,
        labels=_mnn.MSD_LABELS,
        outputs={"tags": (50, "sigmoid tag scores"), "penultimate": (200, "dense layer before the tags")},
        run="genrekit.backbones.musicnn:run_patches",
        _loader=_load_musicnn_msd,
    ),
    "efficientat_mn04": Backbone(
        name="efficientat_mn04",
        title="EfficientAT mn04_as: MobileNetV3 width 0.4, 527 AudioSet classes (mAP 0.432)",
        paper="Schmid, Koutini & Widmer, 'Efficient Large-Scale Audio Tagging via Transformer-to-CNN "
        "Knowledge Distillation', ICASSP 2023",
        weights_url=_eat.WEIGHTS_URL,
        sha256=_eat.WEIGHTS_SHA256,
        size_bytes=_eat.WEIGHTS_BYTES,
        licence=_eat.LICENCE,
        weights_env=_eat.ENV_WEIGHTS,
        cli_flag="--efficientat-weights",
        sample_rate=_eat.SR,
        front_end="Kaldi log-mel, 32 kHz, pre-emphasis 0.97, n_fft 1024, win 800, hop 320, 128 bands 0-15 kHz "
        "(efficientat.mel_frontend)",
        window_s=10.0,
        labels=_eat.AUDIOSET_LABELS,
        outputs={"logits": (527, "AudioSet logits (sigmoid: multi-label probabilities)"),
                 "embedding": (384, "last conv mean-pooled over frequency and time"),
                 "hidden": (512, "head's first Linear + Hardswish")},
        run="genrekit.backbones.efficientat:run_windows",
        _loader=_load_efficientat,
    ),
}


def list_backbones() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(BACKBONES)


def get_backbone(name: str) -> Backbone:
    """The registry entry for ``name``; an unknown name is one line naming the known ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise GenrekitError(f"{name}: unknown backbone (choose from {', '.join(list_backbones())})") from None
