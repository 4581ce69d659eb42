"""genrekit batch --engine ray: a local Ray started for the run, and a two-node cluster on this
machine (``ray start --head`` + ``ray start --address``, one CPU each) joined with --ray-address,
where an actor is killed mid-run and the job still writes every input exactly once.

Skipped only when Ray is not importable (the Makefile installs it, so CI runs these).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray.data")

from genrekit.batch.rows import Worker, WorkerSpec, model_hash  # noqa: E402
from genrekit.batch.sources import stat_task  # noqa: E402
from genrekit.cli.main import main  # noqa: E402

from .batch_toy import REPO, make_model_file, make_wavs  # noqa: E402

RAY = Path(sys.executable).parent / "ray"


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_model_file(tmp_path_factory.mktemp("model") / "toy.safetensors")


@pytest.fixture(scope="module")
def short_tmp():
    """Ray's sockets live in its temp dir and Unix socket paths are short: keep it near /."""
    d = tempfile.mkdtemp(prefix="gkr", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
                **extra)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pids: list[int]) -> set[int]:
    """Every live process below ``pids`` (Ray puts its workers in sessions of their own, so a
    process-group kill misses them; the parent links do not)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = list(pids)
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out).to_pylist()


def _expected(toy: Path, wavs: list[Path]) -> dict[str, list]:
    spec = WorkerSpec(model=str(toy), model_name=str(toy), model_hash=model_hash(str(toy)))
    work = Worker(spec)
    return {str(w): work(stat_task(str(w)))["labels"] for w in wavs}


def test_ray_engine_on_a_local_ray(tmp_path, toy, short_tmp):
    wavs = make_wavs(tmp_path / "lib", 6)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "genrekit.cli.main", "batch", str(tmp_path / "lib"), "--model", str(toy),
           "--out", str(out), "--engine", "ray", "--workers", "2"]
    r = subprocess.run(cmd, env=_env(RAY_TMPDIR=str(short_tmp)), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "6 classified, 0 skipped, 0 failed" in r.stderr
    rows = _rows(out)
    want = _expected(toy, wavs)
    assert sorted(x["input"] for x in rows) == sorted(want)
    assert all(x["labels"] == want[x["input"]] and x["error"] == "" for x in rows)  # the same work function
    r = subprocess.run(cmd, env=_env(RAY_TMPDIR=str(short_tmp)), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and "0 classified, 6 skipped" in r.stderr  # resume works the same on Ray


def test_device_cuda_without_a_gpu_is_one_line(tmp_path, toy, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    wav = make_wavs(tmp_path / "lib", 1)[0]
    argv = ["batch", str(wav), "--model", str(toy), "--out", str(tmp_path / "o"), "--device", "cuda"]
    assert main(argv + ["--engine", "ray"]) == 1  # refused before any Ray is started
    assert capsys.readouterr().err.strip().endswith("--device cuda: CUDA is not available on this machine")
    assert main(argv) == 1 and "--device is for --engine ray" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_node_cluster(short_tmp):
    """A head and a second node on this machine, one CPU each; torn down by PID whatever happens."""
    port = _free_port()
    env = _env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    common = ["--block", "--num-cpus", "1", "--object-store-memory", str(80 * 2**20), "--node-ip-address", "127.0.0.1",
              "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []
    logs = [short_tmp / "head.log", short_tmp / "node.log"]
    try:
        for i, args in enumerate([["--head", "--port", str(port), "--temp-dir", str(short_tmp / "c"),
                                   "--include-dashboard", "false"],
                                  ["--address", f"127.0.0.1:{port}"]]):
            with open(logs[i], "w") as log:
                procs.append(subprocess.Popen([str(RAY), "start", *args, *common,
                                               "--dashboard-agent-listen-port", str(_free_port())],
                                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.monotonic() + 120
            while "Ray runtime started" not in logs[i].read_text() and time.monotonic() < deadline:
                assert procs[i].poll() is None, logs[i].read_text()[-2000:]
                time.sleep(0.2)
            assert "Ray runtime started" in logs[i].read_text(), logs[i].read_text()[-2000:]
        yield f"127.0.0.1:{port}", env
    finally:
        pids = _descendants([p.pid for p in procs]) | {p.pid for p in procs}
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        deadline = time.monotonic() + 5
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:  # whatever is left of what these two nodes started
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for p in procs:
            p.wait(timeout=10)


DRIVER = """
import sys
import genrekit.batch.rows as rows
from tests.batch_toy import CrashSpec
marker = sys.argv.pop(1)
rows.WorkerSpec = lambda **kw: CrashSpec(**kw, crash_on="tone003", marker_dir=marker)
from genrekit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_node_cluster_actor_killed_every_input_once(tmp_path, toy, two_node_cluster):
    address, env = two_node_cluster
    wavs = make_wavs(tmp_path / "lib", 8)
    out = tmp_path / "out"
    marker = tmp_path / "marker"
    marker.mkdir()
    cmd = [sys.executable, "-c", DRIVER, str(marker), "batch", str(tmp_path / "lib"), "--model", str(toy),
           "--out", str(out), "--engine", "ray", "--workers", "2", "--ray-address", address]
    r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (marker / "crashed").exists()  # an actor did die mid-run (SIGKILL on tone003)
    rows = _rows(out)
    want = _expected(toy, wavs)
    assert sorted(x["input"] for x in rows) == sorted(want)  # every input exactly once
    assert all(x["error"] == "" and x["labels"] == want[x["input"]] for x in rows)
