"""Prediction throughput and long-file memory, measured in one run.

1. Throughput on N GTZAN clips (../shared/data/gtzan-clips): the model loaded once for the batch
   (``genrekit predict a.wav b.wav ...``) versus a fresh ``genrekit predict FILE`` process per file
   (what a shell loop does: interpreter, torch and model load every time). Reports tracks/minute,
   the real-time factor (processing seconds per second of audio) and their ratio.
2. Memory of a 2-hour input: a 2-hour WAV is synthesised block by block in a temp folder, predicted
   in a child process, and the child's peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``) is
   reported next to the peak RSS of a child predicting one 30 s clip. It must stay under 1 GB.

    python benchmarks/predict.py [--n 20] [--per-file-n 5] [--hours 2] [--model PATH|default]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO.parent / "shared" / "data"))

CHILD = """
import json, resource, sys, time
t = time.perf_counter()
from genrekit.prediction import Classifier
clf = Classifier.load(None if sys.argv[2] == "default" else sys.argv[2])
p = clf.predict(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t, "genre": p.genre, "duration_s": p.duration_s,
                  "segments": len(p.segments),
                  "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def pick_clips(n: int) -> list[Path]:
    from genrekit.datasets import clips_in

    root = SHARED / "gtzan-clips"
    if not root.is_dir():
        sys.exit(f"shared data not found at {root}")
    by_genre = [clips_in(root, g.name) for g in sorted(root.iterdir()) if g.is_dir()]
    out: list[Path] = []
    i = 0
    while len(out) < n and any(i < len(g) for g in by_genre):
        out += [g[i] for g in by_genre if i < len(g)]
        i += 1
    return out[:n]


def audio_seconds(paths: list[Path]) -> float:
    from genrekit.audio import audio_info

    return sum(audio_info(p).duration_s for p in paths)


def throughput(clips: list[Path], per_file_n: int, model: str) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "genrekit.cli.main", "predict", "--format", "jsonl", "--no-progress"]
    if model != "default":
        cmd += ["--model", model]
    # warm the OS file cache and the converted-weights cache so neither side pays first-run costs
    subprocess.run(cmd + [str(clips[0])], capture_output=True, env=env, check=True)

    t = time.perf_counter()
    r = subprocess.run(cmd + [str(c) for c in clips], capture_output=True, text=True, env=env)
    batch_s = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"batch predict failed: {r.stderr.strip()}")
    sub = clips[:per_file_n]
    t = time.perf_counter()
    for c in sub:
        subprocess.run(cmd + [str(c)], capture_output=True, env=env, check=True)
    per_file_s = time.perf_counter() - t
    audio_all, audio_sub = audio_seconds(clips), audio_seconds(sub)
    res = {
        "clips": len(clips),
        "audio_s": round(audio_all, 1),
        "one_load": {"wall_s": round(batch_s, 2), "tracks_per_min": round(60 * len(clips) / batch_s, 1),
                     "rtf": round(batch_s / audio_all, 4)},
        "load_per_file": {"clips": len(sub), "wall_s": round(per_file_s, 2),
                          "tracks_per_min": round(60 * len(sub) / per_file_s, 1),
                          "rtf": round(per_file_s / audio_sub, 4)},
    }
    res["speedup_one_load_vs_per_file"] = round(res["one_load"]["tracks_per_min"] / res["load_per_file"]["tracks_per_min"], 2)
    return res


def write_long_wav(path: Path, hours: float, sr: int = 22050) -> float:
    """A long WAV built block by block (never whole in memory): GTZAN clips of several genres in
    turn, so the timeline has something to find; falls back to noise bursts without shared data."""
    import soundfile as sf

    clips = pick_clips(10)
    total = int(hours * 3600 * sr)
    written = 0
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        i = 0
        while written < total:
            if clips:
                y, csr = sf.read(clips[i % len(clips)], dtype="float32")
                if y.ndim == 2:
                    y = y.mean(axis=1)
                if csr != sr:
                    from genrekit.audio import resample

                    y = resample(y, csr, sr)
            else:
                y = (rng.standard_normal(sr * 30) * 0.1).astype(np.float32)
            y = y[: total - written]
            f.write(y)
            written += len(y)
            i += 1
    return written / sr


def child_peak(path: Path, model: str) -> dict:
    """Predict ``path`` in a fresh child; the child's own peak RSS and the RUSAGE_CHILDREN peak."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), model], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"child failed on {path}: {r.stderr.strip()[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["children_maxrss_mb"] = round(max(peak, before) / 1024, 1)
    out["wall_s"] = round(wall, 1)
    out["self_maxrss_mb"] = round(out["self_maxrss_mb"], 1)
    out["seconds"] = round(out["seconds"], 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="clips for the one-load batch (default 20)")
    ap.add_argument("--per-file-n", type=int, default=5, help="clips predicted one process each (default 5)")
    ap.add_argument("--hours", type=float, default=2.0, help="length of the long file (default 2)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    results: dict = {"model": args.model, "cpu_count": os.cpu_count()}

    if not args.skip_throughput:
        clips = pick_clips(args.n)
        tp = throughput(clips, min(args.per_file_n, len(clips)), args.model)
        results["throughput"] = tp
        print(f"throughput on {tp['clips']} GTZAN clips ({tp['audio_s']:.0f} s of audio), model {args.model}:")
        o, p = tp["one_load"], tp["load_per_file"]
        print(f"  model loaded once:     {o['tracks_per_min']:7.1f} tracks/min  real-time factor {o['rtf']:.4f}"
              f"  ({o['wall_s']:.1f} s wall)")
        print(f"  model loaded per file: {p['tracks_per_min']:7.1f} tracks/min  real-time factor {p['rtf']:.4f}"
              f"  ({p['clips']} clips, {p['wall_s']:.1f} s wall)")
        print(f"  one load is {tp['speedup_one_load_vs_per_file']:.1f}x faster per track")

    if not args.skip_long:
        with tempfile.TemporaryDirectory(prefix="genrekit-bench-") as tmp:
            long_wav = Path(tmp) / "long.wav"
            t = time.perf_counter()
            secs = write_long_wav(long_wav, args.hours)
            print(f"\nsynthesised {secs / 3600:.2f} h WAV ({long_wav.stat().st_size / 1e6:.0f} MB) "
                  f"in {time.perf_counter() - t:.0f} s")
            short = pick_clips(1)
            base = child_peak(short[0], args.model) if short else None
            big = child_peak(long_wav, args.model)
        results["long_file"] = {"hours": round(secs / 3600, 3), "predict": big, "one_clip": base}
        if base:
            print(f"  one 30 s clip: peak RSS {base['self_maxrss_mb']:.0f} MB ({base['seconds']:.1f} s)")
        print(f"  {secs / 3600:.2f} h file:   peak RSS {big['self_maxrss_mb']:.0f} MB "
              f"(RUSAGE_CHILDREN {big['children_maxrss_mb']:.0f} MB), {big['seconds']:.0f} s, "
              f"{big['segments']} segments, genre {big['genre']}, real-time factor {big['seconds'] / secs:.4f}")
        ok = big["children_maxrss_mb"] < 1024
        print(f"  under 1 GB: {'yes' if ok else 'NO'}")
        results["long_file"]["under_1gb"] = ok
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
