"""Helpers for the batch tests: a tiny model file, short WAVs, and worker specs that misbehave.

The specs live in a module (not a test function) because workers import them: spawned local
workers and Ray actors unpickle the spec, so its class must be importable there.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.batch.rows import Worker, WorkerSpec

LABELS = ["blues", "classical", "jazz", "metal", "rock"]
REPO = Path(__file__).resolve().parents[1]


def make_model_file(path: Path) -> Path:
    """A tiny FNN on per-second MFCC statistics at 11.025 kHz: loads and predicts in milliseconds."""
    import torch

    from genrekit.features import MfccSegmentSpec
    from genrekit.models.notebook import FNN, TorchGenreModel

    torch.manual_seed(0)
    spec = MfccSegmentSpec(sample_rate=11025)
    config = {"arch": "fnn", "input_shape": [26], "n_classes": len(LABELS), "hidden": [8],
              "activation": "relu", "dropout": 0.0}
    net = FNN(26, len(LABELS), (8,), "relu", 0.0)
    mean = np.zeros(26, np.float32)
    std = np.full(26, 50.0, np.float32)
    return TorchGenreModel(net, config, LABELS, spec.to_dict(), mean, std, info={"name": "toy-fnn"}).save(path)


def make_wavs(folder: Path, n: int, seconds: float = 2.0, sr: int = 11025) -> list[Path]:
    """``n`` short different tones (each its own pitch, so rows differ)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    out = []
    for i in range(n):
        f = 110.0 * (1.0 + i / 7.0)
        y = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 4)) * 0.2
        path = folder / f"tone{i:03d}.wav"
        sf.write(path, y.astype(np.float32), sr)
        out.append(path)
    return out


class _Wrapped:
    def __init__(self, spec: WorkerSpec, before) -> None:
        self.work = Worker(spec)
        self.before = before

    def __call__(self, task):
        self.before(task)
        return self.work(task)


@dataclass(frozen=True)
class CrashSpec(WorkerSpec):
    """Its worker SIGKILLs itself when it starts an input whose path contains ``crash_on``: every
    time, or only the first time when ``marker_dir`` is set (a file there remembers it happened)."""

    crash_on: str = "poison"
    marker_dir: str | None = None

    def build(self):
        def before(task):
            if self.crash_on not in task.input:
                return
            if self.marker_dir is not None:
                marker = Path(self.marker_dir) / "crashed"
                if marker.exists():
                    return
                marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

        return _Wrapped(self, before)


@dataclass(frozen=True)
class SlowSpec(WorkerSpec):
    """Its worker sleeps ``delay`` seconds per input, so a test can kill the driver mid-run."""

    delay: float = 0.15

    def build(self):
        return _Wrapped(self, lambda task: time.sleep(self.delay))
