"""Throughput of `genrekit batch` against `genrekit predict`, all engines in one run.

Inputs: the GTZAN clips in ../shared/data/gtzan-clips, repeated (as symlinks with distinct names in
a temp folder, so every input is its own row) until there are at least ``--n`` of them. Runs, each
a fresh command on the same inputs and the same model:

- ``predict``: ``genrekit predict --format jsonl`` (one process; torch uses the machine's cores);
- ``local-1`` / ``local-2``: ``genrekit batch --engine local --workers 1 / 2``;
- ``ray-2``: ``genrekit batch --engine ray --workers 2`` (a local Ray started for the run);
- with ``--cluster``: ``ray-1`` (one actor, local Ray) and ``cluster-2`` (a two-node Ray cluster on
  this machine, one CPU per node, joined with --ray-address): two-node efficiency =
  cluster-2 rate / (2 x ray-1 rate).

For each: start-up seconds (command start to the first finished row), steady tracks/min (rows after
the first / time between first and last row), end-to-end tracks/min (all rows / wall time), and the
peak RSS of each worker process (VmHWM of the processes doing the work, sampled from /proc).

- with ``--baseline MODEL``: ``baseline-local-2``, local-2 with another model (``musicnn``: the
  two-backbone built-in that was the default before), and the ratio of the two steady rates.

    python benchmarks/batch.py [--n 300] [--model default] [--cluster] [--baseline musicnn] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
GK = [sys.executable, "-m", "genrekit.cli.main"]


def make_inputs(folder: Path, n: int) -> list[Path]:
    from genrekit.audio import is_audio_path

    clips = sorted(p for p in (SHARED / "gtzan-clips").rglob("*") if p.is_file() and is_audio_path(p))
    if not clips:
        sys.exit(f"no clips under {SHARED / 'gtzan-clips'}")
    out = []
    k = 0
    while len(out) < n:
        for c in clips:
            link = folder / f"r{k}" / c.parent.name / c.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(c)
            out.append(link)
        k += 1
    return out[:n]


def _tree(root: int) -> dict[int, int]:
    """pid -> parent pid for every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


class RssSampler(threading.Thread):
    """Samples VmHWM (peak RSS) of every process below ``root`` (or matching ``extra``) every 0.3 s."""

    def __init__(self, root: int, extra: str | None = None) -> None:
        super().__init__(daemon=True)
        self.root, self.extra = root, extra
        self.peak: dict[int, tuple[str, float]] = {}
        self.ppid: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            parents = _tree(self.root)
            below = {self.root}
            changed = True
            while changed:
                new = {p for p, pp in parents.items() if pp in below and p not in below}
                below |= new
                changed = bool(new)
            for pid in parents:
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    if pid not in below and not (self.extra and self.extra in cmd):
                        continue
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
                self.peak[pid] = (cmd[:80], max(hwm / 1024, self.peak.get(pid, ("", 0.0))[1]))
                self.ppid[pid] = parents[pid]
            self.stop.wait(0.3)


def workers_rss(sampler: RssSampler, kind: str, root: int) -> list[float]:
    """Peak RSS (MB) of the processes that did the work."""
    if kind == "predict":
        return [round(v, 0) for pid, (_, v) in sampler.peak.items() if pid == root]
    if kind.startswith("local"):
        fs = {pid for pid, (cmd, _) in sampler.peak.items() if "forkserver" in cmd and sampler.ppid.get(pid) == root}
        return sorted(round(v, 0) for pid, (cmd, v) in sampler.peak.items() if "forkserver" in cmd and pid not in fs)
    return sorted(round(v, 0) for _, (cmd, v) in sampler.peak.items() if "MapWorker" in cmd)


def run_predict(inputs: list[Path], model: str) -> dict:
    cmd = GK + ["predict", "--format", "jsonl", "--no-progress", "--model", model] + [str(p) for p in inputs]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sampler = RssSampler(proc.pid)
    sampler.start()
    times = []
    for line in proc.stdout:
        if line.startswith("{"):
            times.append(time.perf_counter() - t0)
    proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    return _result("predict", len(inputs), wall, times[0], times[-1], len(times), workers_rss(sampler, "predict", proc.pid))


def _result(name: str, n: int, wall: float, first: float, last: float, rows: int, rss: list[float]) -> dict:
    steady = (rows - 1) / (last - first) * 60 if last > first else 0.0
    return {"run": name, "inputs": n, "rows": rows, "wall_s": round(wall, 1), "startup_s": round(first, 1),
            "steady_tracks_per_min": round(steady, 1), "end_to_end_tracks_per_min": round(rows / wall * 60, 1),
            "worker_peak_rss_mb": rss}


def run_batch(name: str, inputs: list[Path], model: str, extra: list[str], env: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp:
        lst = Path(tmp) / "inputs.txt"
        lst.write_text("\n".join(str(p) for p in inputs) + "\n", encoding="utf-8")
        out = Path(tmp) / "out"
        cmd = GK + ["batch", f"@{lst}", "--out", str(out), "--model", model, "--quiet"] + extra
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        sampler = RssSampler(proc.pid, extra="MapWorker" if "ray" in extra else None)
        sampler.start()
        err = proc.communicate()[1]
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        if proc.returncode not in (0, 1) or not list(out.glob("part-*.parquet")):
            sys.exit(f"{name} failed: {err[-2000:]}")
        import pyarrow.parquet as pq

        rows = pq.read_table(out, columns=["input", "error"]).to_pydict()
        run = json.loads((out / "_genrekit_run.json").read_text())["runs"][-1]
        n = len(rows["input"])
        # start-up: process start to the first finished row (driver imports + engine start + first input)
        first = (wall - run["seconds"]) + run.get("first_row_s", 0.0)
        res = _result(name, len(inputs), wall, first, wall, n, workers_rss(sampler, name, proc.pid))
        res["steady_tracks_per_min"] = run.get("tracks_per_min", res["steady_tracks_per_min"])
        res["failed"] = sum(1 for e in rows["error"] if e)
        res["engine_stats"] = run["engine_stats"]
        return res


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(tmp: Path) -> tuple[str, dict, list[subprocess.Popen]]:
    """Two nodes on this machine, one CPU each (each its own dashboard-agent port: the default clashes)."""
    port = _port()
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    ray = str(Path(sys.executable).parent / "ray")
    common = ["--block", "--num-cpus", "1", "--object-store-memory", str(200 * 2**20), "--node-ip-address",
              "127.0.0.1", "--disable-usage-stats"]
    procs = []
    for i, args in enumerate([["--head", "--port", str(port), "--temp-dir", str(tmp / "c"), "--include-dashboard", "false"],
                              ["--address", f"127.0.0.1:{port}"]]):
        log = tmp / f"node{i}.log"
        with open(log, "w") as f:
            procs.append(subprocess.Popen([ray, "start", *args, *common, "--dashboard-agent-listen-port", str(_port())],
                                          env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            if time.monotonic() > deadline or procs[-1].poll() is not None:
                stop_cluster(procs)
                sys.exit(f"ray node {i} did not start: {log.read_text()[-1000:]}")
            time.sleep(0.2)
    return f"127.0.0.1:{port}", env, procs


def stop_cluster(procs: list[subprocess.Popen]) -> None:
    tree = _tree(0)
    pids = {p.pid for p in procs}
    changed = True
    while changed:
        new = {p for p, pp in tree.items() if pp in pids and p not in pids}
        pids |= new
        changed = bool(new)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    time.sleep(5)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in procs:
        p.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="inputs (clips repeated to reach it; default 300)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--cluster", action="store_true", help="also ray-1 and a two-node cluster-2")
    ap.add_argument("--baseline", default=None, metavar="MODEL",
                    help="also local-2 with this model (e.g. musicnn, the two-backbone built-in), same inputs, same run")
    ap.add_argument("--only", default=None, help="comma-separated run names (default: all)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(REPO / "src"))
    only = set(args.only.split(",")) if args.only else None
    results = []
    with tempfile.TemporaryDirectory(prefix="gk-bench-in-") as tmp:
        inputs = make_inputs(Path(tmp), args.n)
        print(f"{len(inputs)} inputs ({len({p.resolve() for p in inputs})} distinct clips), model {args.model}, "
              f"{os.cpu_count()} CPUs", flush=True)
        # warm the file cache and the converted-weights cache so no run pays first-run costs
        for p in {p.resolve() for p in inputs}:
            p.read_bytes()
        subprocess.run(GK + ["predict", "--format", "jsonl", "--no-progress", "--model", args.model, str(inputs[0])],
                       capture_output=True, check=True)
        runs = [("predict", None), ("local-1", ["--engine", "local", "--workers", "1"]),
                ("local-2", ["--engine", "local", "--workers", "2"]),
                ("ray-2", ["--engine", "ray", "--workers", "2"])]
        if args.cluster:
            runs += [("ray-1", ["--engine", "ray", "--workers", "1"]), ("cluster-2", None)]
        if args.baseline:
            runs += [("baseline-local-2", ["--engine", "local", "--workers", "2"])]
        for name, extra in runs:
            if only and name not in only:
                continue
            if name == "predict":
                r = run_predict(inputs, args.model)
            elif name == "cluster-2":
                ctmp = Path(tempfile.mkdtemp(prefix="gkb", dir="/tmp"))
                address, env, procs = start_cluster(ctmp)
                try:
                    r = run_batch(name, inputs, args.model, ["--engine", "ray", "--workers", "2",
                                                             "--ray-address", address], env=env)
                finally:
                    stop_cluster(procs)
            elif name == "baseline-local-2":
                subprocess.run(GK + ["predict", "--format", "jsonl", "--no-progress", "--model", args.baseline,
                                     str(inputs[0])], capture_output=True, check=True)  # its converted weights cached
                r = run_batch(name, inputs, args.baseline, extra) | {"model": args.baseline}
            else:
                r = run_batch(name, inputs, args.model, extra)
            results.append(r)
            print(json.dumps(r), flush=True)
    by = {r["run"]: r for r in results}
    summary = {}
    if "predict" in by:
        base = by["predict"]["steady_tracks_per_min"]
        for k in ("local-1", "local-2", "ray-2"):
            if k in by and base:
                summary[f"{k}_vs_predict_steady"] = round(by[k]["steady_tracks_per_min"] / base, 2)
                summary[f"{k}_vs_predict_end_to_end"] = round(by[k]["end_to_end_tracks_per_min"]
                                                               / by["predict"]["end_to_end_tracks_per_min"], 2)
    if "baseline-local-2" in by and "local-2" in by and by["baseline-local-2"]["steady_tracks_per_min"]:
        summary["local-2_vs_baseline_local-2_steady"] = round(by["local-2"]["steady_tracks_per_min"]
                                                              / by["baseline-local-2"]["steady_tracks_per_min"], 2)
    if "cluster-2" in by and "ray-1" in by and by["ray-1"]["steady_tracks_per_min"]:
        summary["two_node_efficiency"] = round(by["cluster-2"]["steady_tracks_per_min"]
                                               / (2 * by["ray-1"]["steady_tracks_per_min"]), 2)
    print(json.dumps(summary), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
