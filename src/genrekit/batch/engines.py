"""Engines run the per-input work function (:mod:`.rows`) over many inputs, behind one interface.

``engine.rows(spec, tasks)`` yields one row dict per task, in completion order, and ``None`` now
and then while nothing finished (so the caller can refresh its progress line and commit parts on
time). ``engine.stats`` says how long start-up took (until the first worker had its model loaded).

- :class:`LocalEngine`: ``workers`` processes on this machine (forked from a clean forkserver,
  never from the driver), each loading the model once. Each worker has its own pipe; the driver keeps two
  inputs queued per worker so none waits for the next path. A worker that dies (a decoder crash,
  the OOM killer, ``kill -9``) is replaced; the input it was reading is retried once on a fresh
  worker and then written as a failed row, inputs only queued to it are handed to others untouched.
- :class:`~genrekit.batch.ray_engine.RayEngine`: Ray Data over an actor pool (a module of its own
  so Ray is imported only when asked for).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait
from typing import Any, Protocol

from genrekit.batch.rows import WorkerSpec, error_row
from genrekit.batch.sources import Task
from genrekit.errors import GenrekitError, one_line

QUEUED_PER_WORKER = 2
MAX_ATTEMPTS = 2  # a worker death while reading an input: retried once, then a failed row


class Engine(Protocol):
    name: str
    stats: dict[str, Any]

    def rows(self, spec: WorkerSpec, tasks: Iterable[Task]) -> Iterator[dict[str, Any] | None]: ...


def _worker_main(conn: Any, spec: WorkerSpec) -> None:
    """A local worker: load the model once, then classify what the driver sends until it says stop
    or goes away (a killed driver leaves no orphan working on)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it commits first
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(spec.threads)  # before torch/numpy load their thread pools
    t0 = time.perf_counter()
    try:
        work = spec.build()
    except BaseException as exc:  # noqa: BLE001 - reported to the driver as the run's error
        msg = str(exc) if isinstance(exc, GenrekitError) else one_line(exc)
        try:
            conn.send(("fatal", msg))
        except OSError:
            pass
        return
    conn.send(("ready", time.perf_counter() - t0))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        idx, task = msg
        try:
            conn.send(("start", idx))
            conn.send(("row", idx, work(task)))
        except (BrokenPipeError, OSError):
            return


def _context() -> Any:
    """Workers fork from a forkserver that has imported the inference engine (ONNX Runtime, or
    torch when ``GENREKIT_ENGINE=torch``) and genrekit once: a fresh, clean process (never the
    driver's state), and a worker replacing a dead one starts in milliseconds instead of
    re-importing them. Plain spawn where there is no forkserver (Windows)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    engine = "torch" if os.environ.get("GENREKIT_ENGINE") == "torch" else "onnxruntime"
    ctx.set_forkserver_preload([engine, "genrekit.prediction", "genrekit.batch.rows"])
    return ctx


class LocalEngine:
    """Worker processes on this machine (see the module doc)."""

    name = "local"

    def __init__(self, workers: int = 1, max_respawns: int | None = None) -> None:
        self.workers = max(1, int(workers))
        self.max_respawns = max_respawns if max_respawns is not None else 10 + 2 * self.workers
        self.stats: dict[str, Any] = {}

    def rows(self, spec: WorkerSpec, tasks: Iterable[Task]) -> Iterator[dict[str, Any] | None]:
        ctx = _context()
        pending: deque[int] = deque()
        items = list(tasks)
        pending.extend(range(len(items)))
        attempts = [0] * len(items)
        workers: dict[Any, dict[str, Any]] = {}  # conn -> {proc, queued: deque[idx], started: idx|None, ready}
        respawns = 0
        t0 = time.perf_counter()
        remaining = len(items)

        def spawn() -> None:
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker_main, args=(child, spec), daemon=True, name="genrekit-batch-worker")
            proc.start()
            child.close()
            workers[parent] = {"proc": proc, "queued": deque(), "started": None, "ready": False}

        def feed(conn: Any) -> None:
            w = workers[conn]
            while w["ready"] and pending and len(w["queued"]) < QUEUED_PER_WORKER:
                idx = pending.popleft()
                try:
                    conn.send((idx, items[idx]))
                except OSError:
                    pending.appendleft(idx)
                    return
                w["queued"].append(idx)

        def bury(conn: Any) -> Iterator[dict[str, Any]]:
            """A worker died: retry or fail the input it was reading, hand back the others."""
            w = workers.pop(conn)
            proc = w["proc"]
            proc.join(timeout=5)
            code = proc.exitcode
            conn.close()
            started = w["started"]
            rest = [i for i in w["queued"] if i != started]
            pending.extendleft(reversed(rest))
            if started is not None:
                attempts[started] += 1
                if attempts[started] >= MAX_ATTEMPTS:
                    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    yield error_row(items[started], spec.model_name, spec.model_hash,
                                    f"the worker process died while reading this input ({how}), twice")
                else:
                    pending.appendleft(started)

        for _ in range(min(self.workers, max(1, len(items)))):
            spawn()
        try:
            while remaining > 0:
                if not workers:
                    raise GenrekitError("batch workers keep dying; giving up")
                ready = wait(list(workers) + [w["proc"].sentinel for w in workers.values()], timeout=1.0)
                if not ready:
                    yield None
                    continue
                for conn in [c for c in list(workers) if c in ready]:
                    w = workers[conn]
                    try:
                        while conn.poll():
                            msg = conn.recv()
                            if msg[0] == "ready":
                                w["ready"] = True
                                self.stats.setdefault("startup_s", time.perf_counter() - t0)
                                self.stats.setdefault("model_load_s", msg[1])
                            elif msg[0] == "fatal":
                                raise GenrekitError(msg[1])
                            elif msg[0] == "start":
                                w["started"] = msg[1]
                            elif msg[0] == "row":
                                idx = msg[1]
                                w["queued"].remove(idx)
                                w["started"] = None
                                remaining -= 1
                                yield msg[2]
                    except (EOFError, OSError):
                        pass  # the sentinel tells below
                    if conn in workers:
                        feed(conn)
                for conn in [c for c, w in list(workers.items()) if w["proc"].sentinel in ready
                             or not w["proc"].is_alive()]:
                    while conn.poll() if not conn.closed else False:  # rows sent before dying still count
                        try:
                            msg = conn.recv()
                        except (EOFError, OSError):
                            break
                        if msg[0] == "row":
                            workers[conn]["queued"].remove(msg[1])
                            workers[conn]["started"] = None
                            remaining -= 1
                            yield msg[2]
                        elif msg[0] == "start":
                            workers[conn]["started"] = msg[1]
                        elif msg[0] == "fatal":
                            raise GenrekitError(msg[1])
                    for row in bury(conn):
                        remaining -= 1
                        yield row
                    if pending and len(workers) < self.workers:
                        if respawns >= self.max_respawns:
                            continue
                        respawns += 1
                        spawn()
                for conn in list(workers):
                    feed(conn)
        finally:
            for conn in workers:
                try:
                    conn.send(None)
                except OSError:
                    pass
            deadline = time.monotonic() + 5
            for w in workers.values():
                w["proc"].join(timeout=max(0.1, deadline - time.monotonic()))
                if w["proc"].is_alive():
                    w["proc"].kill()
                    w["proc"].join(timeout=5)
            for conn in workers:
                conn.close()
        self.stats["respawns"] = respawns


def make_engine(name: str, workers: int, ray_address: str | None = None, device: str = "cpu") -> Engine:
    """The engine a command line asks for."""
    if name == "local":
        if device != "cpu":
            raise GenrekitError("--device is for --engine ray (local workers run on the CPU)")
        return LocalEngine(workers)
    if name == "ray":
        from genrekit.batch.ray_engine import RayEngine

        return RayEngine(workers, address=ray_address, device=device)
    raise GenrekitError(f"unknown engine {name!r}; choose local or ray")
