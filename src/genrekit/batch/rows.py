"""The row schema of a batch dataset and the one per-input work function both engines run.

A row is built from ``Prediction.to_dict()`` (the record ``genrekit predict --format jsonl``
prints), so fields the record gains later flow through: ``nearest``, ``in_set`` and ``style`` are
read with ``.get()`` and stay null for models or versions that do not give them. Probabilities
become ``labels`` as a list of ``{label, score}`` best first (the Hugging Face pipeline
convention), tags ``{tag, score}``. The schema is fixed, ``segments`` included (null unless
``--segments``), so every part of a dataset has the same columns and pandas, polars, DuckDB and
Spark read the folder as one table.

:class:`WorkerSpec` is what travels to a worker (a local process or a Ray actor): small and
picklable. ``spec.build()`` loads the model there, once, and returns the work function.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrekit.batch.sources import Task
from genrekit.errors import GenrekitError, one_line


def schema():
    """The pyarrow schema of every part (imported lazily: ``genrekit --help`` stays fast)."""
    import pyarrow as pa

    labels = pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())]))
    segment = pa.struct([("start_s", pa.float64()), ("end_s", pa.float64()), ("genre", pa.string()),
                         ("confidence", pa.float64()), ("in_set", pa.float64()), ("labels", labels)])
    return pa.schema([
        ("input", pa.string()), ("size", pa.int64()), ("mtime", pa.float64()),
        ("model", pa.string()), ("model_hash", pa.string()),
        ("duration_s", pa.float64()), ("genre", pa.string()), ("confidence", pa.float64()),
        ("labels", labels),
        ("tags", pa.list_(pa.struct([("tag", pa.string()), ("score", pa.float64())]))),
        ("nearest", pa.string()), ("in_set", pa.float64()), ("style", pa.string()),
        ("error", pa.string()), ("seconds", pa.float64()),
        ("segments", pa.list_(segment)),
    ])


COLUMNS = ["input", "size", "mtime", "model", "model_hash", "duration_s", "genre", "confidence", "labels",
           "tags", "nearest", "in_set", "style", "error", "seconds", "segments"]


def _labels(probs: dict[str, float]) -> list[dict[str, Any]]:
    return [{"label": k, "score": float(v)} for k, v in sorted(probs.items(), key=lambda kv: -kv[1])]


def row_from_record(rec: dict[str, Any], task: Task, model: str, model_hash: str, seconds: float,
                    segments: bool) -> dict[str, Any]:
    """A dataset row from a prediction record (``Prediction.to_dict()``)."""
    tags = rec.get("tags")
    segs = None
    if segments:
        segs = [{"start_s": s["start_s"], "end_s": s["end_s"], "genre": s["genre"],
                 "confidence": s["confidence"], "in_set": s.get("in_set"),
                 "labels": _labels(s["probabilities"])} for s in rec.get("segments") or []]
    return {
        "input": task.input, "size": task.size, "mtime": task.mtime, "model": model, "model_hash": model_hash,
        "duration_s": float(rec["duration_s"]), "genre": rec["genre"], "confidence": float(rec["confidence"]),
        "labels": _labels(rec["probabilities"]),
        "tags": None if tags is None else [{"tag": t["tag"], "score": float(t.get("probability", t.get("score", 0.0)))}
                                          for t in tags],
        "nearest": rec.get("nearest"), "in_set": rec.get("in_set"), "style": rec.get("style"),
        "error": "", "seconds": float(seconds), "segments": segs,
    }


def error_row(task: Task, model: str, model_hash: str, reason: str, seconds: float = 0.0) -> dict[str, Any]:
    """The row of an input that failed: key, model and the reason; every result column null."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(input=task.input, size=task.size, mtime=task.mtime, model=model, model_hash=model_hash,
               error=reason or "failed", seconds=float(seconds))
    return row


def _reason(exc: BaseException, name: str) -> str:
    """The reason of an error about ``name`` without the ``<input>: `` prefix (the row names it)."""
    msg = str(exc) if isinstance(exc, GenrekitError) else one_line(exc)
    return msg[len(name) + 2:] if msg.startswith(f"{name}: ") else msg


def model_files(ref: str | None) -> list[Path]:
    """The files a model reference loads: a built-in's head file, plus for the ``musicnn`` built-in
    the musicnn weights (EfficientAT's are pinned by their SHA-256 whatever file holds them)."""
    from genrekit.models.base import model_path

    files = [model_path(ref)]
    if ref == "musicnn":
        try:
            from genrekit.backbones.musicnn import find_weights

            src = find_weights("MSD_musicnn", None, False)
            if Path(src.path).is_file():
                files.append(Path(src.path))
        except Exception:  # no weights here: the workers will say so when they load the model
            pass
    return files


def model_hash(ref: str | None) -> str:
    """sha256 (first 16 hex digits) of the model's file(s): the resume key's model part, so a
    retrained file with the same name is a different model."""
    h = hashlib.sha256()
    for f in model_files(ref):
        try:
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as exc:
            raise GenrekitError(f"{f}: cannot read the model file ({exc.strerror or exc})") from None
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to classify inputs (picklable; the model itself is loaded by
    :meth:`build` in the worker)."""

    model: str | None
    model_name: str
    model_hash: str
    top_tags: int = 3
    tags: str | None = None  # the model's own vocabulary
    block_seconds: float = 300.0
    max_bytes: int | None = None
    max_duration_s: float | None = None
    timeout_s: float = 30.0
    segments: bool = False
    threads: int = 1
    device: str = "cpu"

    def build(self) -> Callable[[Task], dict[str, Any]]:
        """Load the model (once per worker) and return the per-input work function."""
        return Worker(self)


def limit_threads(n: int) -> None:
    """Pin this process's math libraries to ``n`` threads: N workers on N cores each run one
    thread instead of N*cores threads fighting for the same cores."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    from genrekit.backbones.runners import set_threads

    set_threads(max(1, n))  # ONNX Runtime sessions (or torch, when it runs the backbone)


class Worker:
    """The per-input work function: one loaded :class:`~genrekit.prediction.Classifier`.

    Never raises for a bad input: the error becomes the row's ``error`` (one line, the reason).
    """

    def __init__(self, spec: WorkerSpec) -> None:
        limit_threads(spec.threads)
        if spec.device.startswith("cuda"):
            from genrekit.backbones.runners import has_module

            if not has_module("torch"):
                raise GenrekitError(f"--device {spec.device} needs torch with CUDA: pip install 'genrekit[train]'")
            import torch

            if not torch.cuda.is_available():
                raise GenrekitError(f"--device {spec.device}: CUDA is not available on this machine")
        from genrekit.prediction import Classifier

        self.spec = spec
        self.clf = Classifier.load(spec.model, name=spec.model_name, top_tags=spec.top_tags, tags=spec.tags,
                                   block_seconds=spec.block_seconds, max_bytes=spec.max_bytes,
                                   max_duration_s=spec.max_duration_s, timeout_s=spec.timeout_s)
        self._warm_up()

    def _warm_up(self) -> None:
        """One prediction on a short synthetic tone, so lazily loaded parts of the model (the
        default model's backbone) load at start-up, not inside the first input's time."""
        import numpy as np

        sr = self.clf.sample_rate
        t = np.arange(int(4 * sr)) / sr
        y = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 331 * t)).astype(np.float32)
        try:
            self.clf.predict_signal(y, sr, name="warm-up")
        except GenrekitError:
            pass

    def __call__(self, task: Task) -> dict[str, Any]:
        spec = self.spec
        if task.error:
            return error_row(task, spec.model_name, spec.model_hash, task.error)
        from genrekit.audio import NativeNoise, quiet_native_stderr

        t0 = time.perf_counter()
        noise = NativeNoise()
        try:
            # what libmpg123 & co. print on fd 2 goes into this row's error, not the user's terminal
            with quiet_native_stderr() as noise:
                rec = self.clf.predict(task.input).to_dict()
        except GenrekitError as exc:
            return error_row(task, spec.model_name, spec.model_hash, _reason(exc, task.input) + noise.note(),
                             time.perf_counter() - t0)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # MemoryError included: one input must never stop the run
            return error_row(task, spec.model_name, spec.model_hash, one_line(exc) + noise.note(),
                             time.perf_counter() - t0)
        return row_from_record(rec, task, spec.model_name, spec.model_hash, time.perf_counter() - t0,
                               spec.segments)
