"""``--engine ray``: the per-input work function on a Ray Data actor pool.

Paths go in, rows come out: the dataset holds only ``(input, size, mtime)`` per input, each actor
reads its audio from the (shared) file system itself and returns a small Arrow table of rows, so
audio never enters Ray's object store. Actors are a class-based UDF on an
``ActorPoolStrategy(size=N)`` pool, so each loads the model once. Ray restarts an actor whose
process dies and retries the task it was running (``max_restarts`` / ``max_task_retries``); the
driver keeps the first row of each input, so a retried task's repeated batches are dropped and
every input comes out exactly once.

Without an address a private local Ray is started for the run (``address="local"``: never an
unrelated cluster found on the machine) and stopped at the end; ``--ray-address HOST:PORT`` or
``auto`` joins an existing cluster, whose nodes must see the inputs at the same paths.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from genrekit.batch.rows import WorkerSpec
from genrekit.batch.sources import Task
from genrekit.errors import GenrekitError

INSTALL_HINT = "--engine ray needs Ray: pip install 'genrekit[ray]'"


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - ray without the [data] extra lacks it
    except ImportError:
        raise GenrekitError(INSTALL_HINT) from None
    return ray


class _RayWorker:
    """The Ray Data UDF: one per actor, the model loaded once in ``__init__``."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.work = spec.build()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from genrekit.batch.rows import schema

        d = batch.to_pydict()
        rows = [self.work(Task(i, s, m)) for i, s, m in zip(d["input"], d["size"], d["mtime"], strict=True)]
        return pa.Table.from_pylist(rows, schema=schema())


class RayEngine:
    """Ray Data over an actor pool of ``actors`` actors (see the module doc)."""

    name = "ray"

    def __init__(self, actors: int = 2, address: str | None = None, device: str = "cpu",
                 object_store_mb: int = 256, batch_size: int = 1) -> None:
        self.actors = max(1, int(actors))
        self.address = address
        self.device = device
        self.object_store_mb = object_store_mb
        self.batch_size = batch_size
        self.stats: dict[str, Any] = {}
        import_ray()  # fail before any work when Ray is missing

    def rows(self, spec: WorkerSpec, tasks: Iterable[Task]) -> Iterator[dict[str, Any] | None]:
        ray = import_ray()

        items = list(tasks)
        if not items:
            return
        if self.device.startswith("cuda") and not self.address:
            _check_local_cuda(self.device)
        t0 = time.perf_counter()
        started = False
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # C++ notices on stderr would tear the progress line
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        if not ray.is_initialized():
            env = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}} if os.environ.get("PYTHONPATH") else None
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False, logging_level="ERROR",
                             runtime_env=env)
                else:
                    ray.init(address="local", num_cpus=self.actors * spec.threads, include_dashboard=False,
                             object_store_memory=self.object_store_mb * 2**20, log_to_driver=False,
                             logging_level="ERROR", runtime_env=env)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local Ray"
                raise GenrekitError(f"cannot start or join {where}: {str(exc).splitlines()[0][:200]}") from None
            started = True
        try:
            self.stats["ray_init_s"] = time.perf_counter() - t0
            if self.address and self.device.startswith("cuda"):
                gpus = ray.cluster_resources().get("GPU", 0)
                if gpus < 1:
                    raise GenrekitError(f"--device {self.device}: the Ray cluster has no GPU")
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            # Blocks made here in the driver (no read tasks: the actors hold every CPU of a local Ray, a
            # repartition task would wait for one forever). Each block is one actor task; a few
            # blocks per actor keep them all busy to the end.
            # Ray Data hands a block's rows back together: small blocks (<= 8 inputs) keep the
            # progress line live and bound what a killed driver loses.
            per_block = max(1, min(8, math.ceil(len(items) / (self.actors * 4))))
            ds = ray.data.from_items([{"input": t.input, "size": t.size, "mtime": t.mtime} for t in items],
                                     override_num_blocks=math.ceil(len(items) / per_block))
            ds = ds.map_batches(
                _RayWorker, fn_constructor_kwargs={"spec": spec}, batch_format="pyarrow",
                batch_size=self.batch_size, compute=ray.data.ActorPoolStrategy(size=self.actors),
                num_cpus=spec.threads, num_gpus=1 if self.device.startswith("cuda") else 0,
            )  # Ray Data's actor pools restart dead actors and retry their tasks by default
            seen: set[str] = set()
            for out in ds.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=0):
                self.stats.setdefault("startup_s", time.perf_counter() - t0)
                for row in out.to_pylist():
                    if row["input"] not in seen:  # a retried task may emit a batch again: once each
                        seen.add(row["input"])
                        yield row
        except GenrekitError:
            raise
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            raise GenrekitError(f"the Ray job failed: {type(cause).__name__}: {str(cause).splitlines()[0][:200]}") from None
        finally:
            if started:
                ray.shutdown()


def _check_local_cuda(device: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise GenrekitError(f"--device {device}: CUDA is not available on this machine")
