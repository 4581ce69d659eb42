"""Throughput and latency of ``genrekit serve`` for 30 s uploads on loopback, then the same
service under hostile clients.

Starts the server in a subprocess (this file with ``--serve-only``, i.e. ``create_app`` + uvicorn, the
same code ``genrekit serve`` runs), then for 1, 4 and 16 concurrent clients posts shared GTZAN clips
(30 s wav) and prints requests per second and p50/p95 latency. Bounded: at most ``--requests`` per
level (default 20) and ``--budget`` seconds of issuing requests in all (default 120, shared equally
by the levels left); requests already sent when a level's share runs out are waited for.

Hostile phase (``--hostile-seconds``, default 40; 0 skips it): ``--hostile-clients`` normal clients
(default 4) post clips for that long, first alone (baseline), then alongside ``--slow-clients`` (default
2) that upload at 1 byte a second (reconnecting after each 408, for that long at most) and one client
that keeps uploading an Opus-in-Matroska file holding ``--lying-minutes`` (default 30) of audio whose
header claims 10 s (``tests/hostile_media.py``), against a server started with ``--max-duration``
(default 60 s), so an upload is cut at 60 s of decoded audio whatever its header says. Reported: the normal clients' p50/p95 in both runs,
what the hostile clients got, and the server's peak RSS (VmHWM) after each run. The bounds checked:
p95 <= 2 x baseline p95 x (clients + 1) / clients + 0.5 s (the lying-header client is one more client
sharing the slots, slow uploaders must cost nothing; the factor 2 is room for a shared machine's noise)
and peak RSS <= ``--max-rss-mb`` (default 1000, the memory promised for a 2-hour file); ``--check`` exits 1 when one is exceeded.

    python benchmarks/serve.py                      # default model (toy stand-in if it is missing)
    python benchmarks/serve.py --model runs/cnn --max-in-flight 2 --json out/serve-bench.json
    python benchmarks/serve.py --clients 4 --budget 30 --hostile-seconds 40
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


def _toy_classifier():
    """A tiny MFCC model, used when the default model's files are missing, so the benchmark still
    measures the service (upload, decode, features, JSON) around a cheap model."""
    import numpy as np

    from genrekit.features import MfccSegmentSpec
    from genrekit.models.base import GenreModel
    from genrekit.prediction import Classifier

    class Toy(GenreModel):
        format = "bench-toy"

        def segment_probs(self, values: np.ndarray) -> np.ndarray:
            w = np.random.default_rng(0).standard_normal((values.shape[1], len(self.labels)))
            z = (values - values.mean(1, keepdims=True)) / (values.std(1, keepdims=True) + 1e-6) @ w / 3
            e = np.exp(z - z.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)

    labels = "blues classical country disco hiphop jazz metal pop reggae rock".split()
    return Classifier.load(Toy(labels, MfccSegmentSpec(segment_seconds=3.0, hop_seconds=1.0), info={"name": "toy"}))


def serve_only(args: argparse.Namespace) -> None:
    import torch
    import uvicorn

    from genrekit.errors import GenrekitError
    from genrekit.prediction import Classifier
    from genrekit.serve import ServeLimits, create_app

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.max_in_flight))
    if args.model == "toy":
        clf = _toy_classifier()
    else:
        try:
            clf = Classifier.load(args.model)
        except GenrekitError as exc:
            if args.model != "default":
                raise
            print(f"serve bench: default model unavailable ({exc}); using the toy model", file=sys.stderr)
            clf = _toy_classifier()
    limits = ServeLimits(max_in_flight=args.max_in_flight, max_queue=64, queue_timeout_s=args.budget,
                         request_timeout_s=args.budget, upload_timeout_s=args.upload_timeout,
                         max_duration_s=args.max_duration)
    uvicorn.run(create_app(clf, limits), host="127.0.0.1", port=args.port, log_level="warning")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def run_level(base: str, clips: list[tuple[str, bytes]], clients: int, n: int, deadline: float,
              timeout_s: float) -> dict:
    """``clients`` threads post until ``n`` requests were issued or ``deadline`` passed; requests
    already sent are waited for (up to ``timeout_s``), so slow levels report fewer, not failed, ones."""
    import httpx

    lat: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    issued = 0

    def worker(i: int) -> None:
        nonlocal issued
        with httpx.Client(base_url=base, timeout=timeout_s) as c:
            while True:
                with lock:
                    if issued >= n or time.monotonic() > deadline:
                        return
                    k = issued
                    issued += 1
                name, data = clips[k % len(clips)]
                t0 = time.monotonic()
                try:
                    r = c.post("/api/predict", files={"file": (name, data, "audio/wav")})
                    code = r.status_code
                except httpx.HTTPError:
                    code = 0
                dt = time.monotonic() - t0
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                    if code == 200:
                        lat.append(dt)

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    wall = time.monotonic() - t0
    return {"clients": clients, "requests": sum(codes.values()), "ok": len(lat), "codes": codes,
            "wall_s": round(wall, 3), "rps": round(len(lat) / wall, 3) if wall else 0.0,
            "p50_s": round(pct(lat, 0.5), 3), "p95_s": round(pct(lat, 0.95), 3),
            "mean_s": round(statistics.fmean(lat), 3) if lat else float("nan")}


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB; NaN where /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def slow_upload(base: str, until: float, codes: dict, lock: threading.Lock) -> None:
    """Upload at 1 byte a second until ``until``; after an answer (408 expected) start again. Every
    loop is bounded by ``until``; each connection sends at most one byte per second."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    boundary = "slowclient"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    while time.monotonic() < until:
        code = 0
        try:
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall((f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
                           f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                           f"Content-Length: {len(head) + 1_000_000}\r\n\r\n").encode() + head)
                s.settimeout(1.0)
                while time.monotonic() < until:
                    try:
                        answer = s.recv(256)
                    except TimeoutError:
                        s.sendall(b"\0")  # one byte a second
                        continue
                    parts = answer.split(b" ", 2)
                    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
                    break
        except OSError:
            code = -1
        if code:
            with lock:
                codes[code] = codes.get(code, 0) + 1
        time.sleep(0.2)


def lying_uploads(base: str, path: Path, until: float, codes: dict, lock: threading.Lock) -> None:
    """Post the lying-header file again and again until ``until``."""
    import httpx

    data = path.read_bytes()
    with httpx.Client(base_url=base, timeout=300) as c:
        while time.monotonic() < until:
            try:
                code = c.post("/api/predict", files={"file": ("lying.mka", data, "audio/x-matroska")}).status_code
            except httpx.HTTPError:
                code = 0
            with lock:
                codes[code] = codes.get(code, 0) + 1


def hostile_phase(args: argparse.Namespace, base: str, clips: list, pid: int) -> dict:
    """Normal clients alone, then alongside slow uploaders and a lying-header upload."""
    sys.path.insert(0, str(REPO / "tests"))
    import tempfile

    from hostile_media import lying_matroska

    with tempfile.TemporaryDirectory(prefix="genrekit-bench-") as tmp:
        t0 = time.monotonic()
        lying = None
        if args.lying_minutes > 0:
            lying = lying_matroska(Path(tmp) / "lying.mka", real_seconds=args.lying_minutes * 60, claimed_seconds=10)
            print(f"hostile phase: lying-header file {lying.stat().st_size / 1e6:.1f} MB, "
                  f"{args.lying_minutes:g} min of Opus claiming 10 s (built in {time.monotonic() - t0:.0f} s)",
                  flush=True)
        else:
            print("hostile phase: slow uploaders only (--lying-minutes 0)", flush=True)
        n = 10_000  # the phase is bounded by time
        c = args.hostile_clients
        base_run = run_level(base, clips, c, n, time.monotonic() + args.hostile_seconds, 300)
        rss_base = peak_rss_mb(pid)
        print(f"  baseline   {c} clients: ok {base_run['ok']}/{base_run['requests']}, p50 {base_run['p50_s']:.3f} s, "
              f"p95 {base_run['p95_s']:.3f} s; server peak RSS {rss_base:.0f} MB", flush=True)
        until = time.monotonic() + args.hostile_seconds
        slow_codes: dict[int, int] = {}
        lying_codes: dict[int, int] = {}
        lock = threading.Lock()
        threads = [threading.Thread(target=slow_upload, args=(base, until, slow_codes, lock), daemon=True)
                   for _ in range(args.slow_clients)]
        if lying is not None:
            threads.append(threading.Thread(target=lying_uploads, args=(base, lying, until, lying_codes, lock),
                                            daemon=True))
        for t in threads:
            t.start()
        time.sleep(0.5)
        hostile_run = run_level(base, clips, c, n, until, 300)
        for t in threads:
            t.join(320)
        rss_hostile = peak_rss_mb(pid)
    # the lying-header client is one more client sharing the slots; x2 leaves room for a shared machine's noise
    p95_bound = 2 * base_run["p95_s"] * (c + (1 if lying is not None else 0)) / c + 0.5
    ok_p95 = hostile_run["p95_s"] <= p95_bound
    ok_rss = rss_hostile <= args.max_rss_mb
    print(f"  + hostile  {c} clients: ok {hostile_run['ok']}/{hostile_run['requests']}, p50 {hostile_run['p50_s']:.3f} s, "
          f"p95 {hostile_run['p95_s']:.3f} s; server peak RSS {rss_hostile:.0f} MB")
    print(f"    {args.slow_clients} slow uploaders (1 byte/s) got {slow_codes}; lying-header uploads got {lying_codes}")
    print(f"  bounds: p95 {hostile_run['p95_s']:.3f} <= {p95_bound:.3f} s: {'ok' if ok_p95 else 'EXCEEDED'}; "
          f"peak RSS {rss_hostile:.0f} <= {args.max_rss_mb:g} MB: {'ok' if ok_rss else 'EXCEEDED'}")
    return {"baseline": base_run, "hostile": hostile_run, "slow_codes": slow_codes, "lying_codes": lying_codes,
            "peak_rss_mb_baseline": round(rss_base, 1), "peak_rss_mb": round(rss_hostile, 1),
            "p95_bound_s": round(p95_bound, 3), "p95_ok": ok_p95, "rss_ok": ok_rss}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default', 'toy' or a model file/folder")
    ap.add_argument("--clients", default="1,4,16", help="concurrency levels")
    ap.add_argument("--requests", type=int, default=20, help="requests per level (at most)")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds for all levels together")
    ap.add_argument("--max-in-flight", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)))
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--hostile-seconds", type=float, default=40.0, help="length of each hostile-phase run (0: skip)")
    ap.add_argument("--hostile-clients", type=int, default=4, help="normal clients in the hostile phase")
    ap.add_argument("--slow-clients", type=int, default=2, help="1 byte/s uploaders in the hostile phase")
    ap.add_argument("--lying-minutes", type=float, default=30.0, help="audio in the lying-header file (0: none)")
    ap.add_argument("--upload-timeout", type=float, default=20.0, help="the server's --upload-timeout")
    ap.add_argument("--max-duration", type=float, default=60.0, help="the server's --max-duration (s)")
    ap.add_argument("--max-rss-mb", type=float, default=1000.0, help="bound on the server's peak RSS")
    ap.add_argument("--check", action="store_true", help="exit 1 when a hostile-phase bound is exceeded")
    ap.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_only:
        serve_only(args)
        return 0

    import httpx

    from genrekit.audio import is_audio_path
    from genrekit.serve.runner import free_port

    clip_dir = SHARED / "gtzan-clips"
    files = sorted(p for p in clip_dir.glob("*/*") if p.is_file() and is_audio_path(p))
    if not files:
        print(f"no clips under {clip_dir}", file=sys.stderr)
        return 2
    step = max(1, len(files) // 16)  # 16 clips across the genres
    clips = [(p.name, p.read_bytes()) for p in files[::step][:16]]

    port = free_port()
    cmd = [sys.executable, __file__, "--serve-only", "--port", str(port), "--model", args.model,
           "--max-in-flight", str(args.max_in_flight), "--budget", str(max(args.budget, 300.0)),
           "--upload-timeout", str(args.upload_timeout), "--max-duration", str(args.max_duration)]
    t_start = time.monotonic()
    server = subprocess.Popen(cmd, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                print("server exited during start-up", file=sys.stderr)
                return 1
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - t_start > 120:
                print("server did not start within 120 s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        startup = time.monotonic() - t_start
        card = httpx.get(base + "/api/model", timeout=10).json()
        httpx.post(base + "/api/predict", files={"file": clips[0]}, timeout=120)  # warm-up, not counted
        end = time.monotonic() + args.budget
        levels = [int(c) for c in args.clients.split(",") if c.strip()]
        print(f"model {card.get('name')!r}, {args.max_in_flight} in flight, server start {startup:.1f} s, "
              f"{os.cpu_count()} CPUs; 30 s wav uploads ({len(clips[0][1]) / 1e6:.2f} MB)")
        print(f"{'clients':>7} {'ok/req':>7} {'rps':>7} {'p50 s':>7} {'p95 s':>7} {'wall s':>7}  codes")
        results = []
        for i, c in enumerate(levels):
            left = end - time.monotonic()
            if left <= 0:
                print(f"{c:>7} skipped: time budget spent")
                continue
            # each remaining level gets an equal share of what is left for issuing requests
            deadline = time.monotonic() + left / (len(levels) - i)
            r = run_level(base, clips, c, max(args.requests, 1), deadline, args.budget)
            results.append(r)
            print(f"{c:>7} {r['ok']:>3}/{r['requests']:<3} {r['rps']:>7.2f} {r['p50_s']:>7.3f} {r['p95_s']:>7.3f} "
                  f"{r['wall_s']:>7.1f}  {r['codes']}", flush=True)
        hostile = hostile_phase(args, base, clips, server.pid) if args.hostile_seconds > 0 else None
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"model": card.get("name"), "max_in_flight": args.max_in_flight,
                                             "cpus": os.cpu_count(), "levels": results, "hostile": hostile},
                                            indent=2))
        if args.check and hostile is not None and not (hostile["p95_ok"] and hostile["rss_ok"]):
            return 1
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
