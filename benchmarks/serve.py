"""Throughput and latency of ``genrekit serve`` for 30 s uploads on loopback.

Starts the server in a subprocess (this file with ``--serve-only``, i.e. ``create_app`` + uvicorn, the
same code ``genrekit serve`` runs), then for 1, 4 and 16 concurrent clients posts shared GTZAN clips
(30 s wav) and prints requests per second and p50/p95 latency. Bounded: at most ``--requests`` per
level (default 20) and ``--budget`` seconds of issuing requests in all (default 120, shared equally
by the levels left); requests already sent when a level's share runs out are waited for.

    python benchmarks/serve.py                      # default model (toy stand-in if it is missing)
    python benchmarks/serve.py --model runs/cnn --max-in-flight 2 --json out/serve-bench.json
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

    from genrekit.base import GenreModel
    from genrekit.features import MfccSegmentSpec
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
                         request_timeout_s=args.budget)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default', 'toy' or a model file/folder")
    ap.add_argument("--clients", default="1,4,16", help="concurrency levels")
    ap.add_argument("--requests", type=int, default=20, help="requests per level (at most)")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds for all levels together")
    ap.add_argument("--max-in-flight", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)))
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_only:
        serve_only(args)
        return 0

    import httpx

    from genrekit.serve.runner import free_port

    clip_dir = SHARED / "gtzan-clips"
    files = sorted(clip_dir.glob("*/*.wav"))
    if not files:
        print(f"no clips under {clip_dir}", file=sys.stderr)
        return 2
    step = max(1, len(files) // 16)  # 16 clips across the genres
    clips = [(p.name, p.read_bytes()) for p in files[::step][:16]]

    port = free_port()
    cmd = [sys.executable, __file__, "--serve-only", "--port", str(port), "--model", args.model,
           "--max-in-flight", str(args.max_in_flight), "--budget", str(args.budget)]
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
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"model": card.get("name"), "max_in_flight": args.max_in_flight,
                                             "cpus": os.cpu_count(), "levels": results}, indent=2))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
