"""Time to train your own genres: `genrekit train --model head` on N songs, cold and warm.

    python benchmarks/train_head.py [--songs 200] [--runs 2] [--backbone musicnn+mn04|mn04] [--predict]
                                    [--data ../shared/data] [--json OUT.json]

The songs are GTZAN clips (``gtzan-clips``, the first N / 10 of each genre, 30 s each; the shared
data holds 147) topped up to N with real songs of the ten genres (``real-songs``), linked into a
``<genre>/<file>`` folder. Each run is ``python -m genrekit.cli.main train --model head`` in a
fresh process, wall time from start to exit:

* cold: an empty cache folder (``GENREKIT_CACHE_DIR``), so every file's embeddings are extracted
  (the ``--backbone`` given: both backbones by default, or mn04 alone as the default model reads
  it; the converted musicnn network is linked in from the user cache when there, so
  what is timed is extraction, not the one-time weight conversion);
* warm: the same folder again, every embedding read from the cache: the refit a user gets after
  adding a few songs (cross-validation over three values of C plus the final fit).

* predict (``--predict``, first run only): ``genrekit predict --model OUT FOLDER`` with the head
  just trained, the same backbones on the same files: what "about as long as predicting them" means.

Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def run_train(songs: Path, out: Path, cache: Path, backbone: str) -> float:
    env = dict(os.environ, GENREKIT_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "genrekit.cli.main", "train", "--model", "head", "--data", str(songs),
                    "--backbone", backbone, "--out", str(out), "--quiet"], check=True, env=env)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    from genrekit.cache import cache_dir
    from genrekit.datasets import clips_in

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--songs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--backbone", default="musicnn+mn04", choices=("musicnn+mn04", "mn04"))
    ap.add_argument("--predict", action="store_true", help="also time predict on the same folder (first run)")
    a = ap.parse_args(argv)
    weights = a.data.parent / "weights" / "efficientat" / "mn04_as_mAP_432.pt"
    if weights.is_file():
        os.environ.setdefault("GENREKIT_EFFICIENTAT_WEIGHTS", str(weights))
    res: dict = {"songs": a.songs, "backbone": a.backbone, "cold_s": [], "warm_s": []}
    with tempfile.TemporaryDirectory(prefix="genrekit-bench-head-") as tmp:
        songs = Path(tmp) / "songs"
        per = max(1, a.songs // len(GENRES))
        n = 0
        for g in GENRES:
            (songs / g).mkdir(parents=True)
            for clip in clips_in(a.data / "gtzan-clips", g)[:per]:
                (songs / g / clip.name).symlink_to(clip.resolve())
                n += 1
        if n < a.songs:  # the shared data holds 147 GTZAN clips: the rest are real songs of the ten genres
            import csv

            with open(a.data / "real-songs" / "labels.csv", newline="", encoding="utf-8") as fh:
                real = [r for r in csv.DictReader(fh) if r["in_gtzan_ten"] == "yes"][: a.songs - n]
            for r in real:
                f = a.data / "real-songs" / r["file"]
                (songs / r["genre"] / f"real-{f.name}").symlink_to(f.resolve())
            print(f"{n + len(real)} songs: {n} GTZAN clips (30 s) and {len(real)} real songs of the ten genres", flush=True)
            n += len(real)
        res["songs"] = n
        user_cache = cache_dir()
        for r in range(a.runs):
            cache = Path(tmp) / f"cache{r}"
            cache.mkdir()
            for part in ("musicnn", "onnx", "efficientat"):  # converted weights: not what is timed
                if (user_cache / part).is_dir():
                    (cache / part).symlink_to(user_cache / part)
            cold = run_train(songs, Path(tmp) / f"out{r}", cache, a.backbone)
            warm = run_train(songs, Path(tmp) / f"out{r}", cache, a.backbone)
            res["cold_s"].append(round(cold, 1))
            res["warm_s"].append(round(warm, 1))
            print(f"run {r + 1} ({a.backbone}): {n} songs: cold {cold:.1f} s ({cold / n:.2f} s per "
                  f"song), warm {warm:.1f} s", flush=True)
            if a.predict and r == 0:
                env = dict(os.environ, GENREKIT_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT / "src"))
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "genrekit.cli.main", "predict", "--model", str(Path(tmp) / "out0"),
                                str(songs), "--format", "csv", "--no-progress"], check=True, env=env,
                               stdout=subprocess.DEVNULL)
                res["predict_s"] = round(time.perf_counter() - t0, 1)
                print(f"predict on the same {n} songs: {res['predict_s']:.1f} s", flush=True)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
