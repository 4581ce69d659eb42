"""`genrekit train --model head` beside `--model fnn --features mfcc_stats` on the same grouped folds.

    python scripts/compare_head_fnn.py [--data ../shared/data] [--labels 5] [--folds 5] [--out runs/compare-head]

The visible real songs (``real-songs/labels.csv``) of the ``--labels`` genres with the most songs,
grouped by ``source_repo``: this script only writes the inputs (a symlinked ``<genre>/<file>``
folder, a manifest ``input,genre,group``, and per fold the split lists) and calls the public
commands. The head's figures are its own grouped CV (``genrekit train --model head --manifest``,
C chosen on those folds); the FNN (the seed notebook's approach: whole-clip MFCC statistics) is
trained once per fold with that fold's groups as its test split and one other group set as its
validation split, and its test confusion matrices are pooled over the folds.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from genrekit.heads.training import folds_for  # noqa: E402
from genrekit.heads.validation import scores  # noqa: E402
from genrekit.models.modelfile import read_model_meta  # noqa: E402


def genrekit(*args: str) -> None:
    cmd = [sys.executable, "-m", "genrekit.cli.main", *args]
    print("$ genrekit " + " ".join(args), file=sys.stderr)
    subprocess.run(cmd, check=True, env=None)


def pooled(confusions: list[np.ndarray], n: int) -> dict:
    cm = np.sum(confusions, axis=0)
    y = np.repeat(np.arange(n), cm.sum(1))
    pred = np.concatenate([np.repeat(np.arange(n), row) for row in cm])
    return scores(y, pred, n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--labels", type=int, default=5, help="how many of the largest genres (default 5)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("runs/compare-head"))
    a = ap.parse_args(argv)
    rows = list(csv.DictReader((a.data / "real-songs" / "labels.csv").open(encoding="utf-8")))
    count = Counter(r["genre"] for r in rows)
    keep = sorted(g for g, _ in sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))[: a.labels])
    rows = [r for r in rows if r["genre"] in keep]
    songs = a.out / "songs"
    manifest = a.out / "manifest.csv"
    songs.mkdir(parents=True, exist_ok=True)
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["input", "genre", "group"])
        for r in rows:
            link = songs / r["genre"] / Path(r["file"]).name
            link.parent.mkdir(exist_ok=True)
            if not link.is_symlink():
                link.symlink_to((a.data / "real-songs" / r["file"]).resolve())
            w.writerow([link.resolve(), r["genre"], r["source_repo"]])  # absolute: the manifest reader reads
            # relative paths from the manifest's folder
    print(f"{len(rows)} songs, {len({r['source_repo'] for r in rows})} sources: "
          + ", ".join(f"{g} {count[g]}" for g in keep), file=sys.stderr)

    genrekit("train", "--model", "head", "--manifest", str(manifest), "--out", str(a.out / "head"),
             "--cv-folds", str(a.folds), "--quiet")
    head = read_model_meta(a.out / "head" / "model.safetensors")["metrics"]

    groups = np.array([r["source_repo"] for r in rows])
    folds, protocol = folds_for(groups, a.folds)
    confusions = []
    for i, (_, fit_idx, held) in enumerate(folds):
        # validation split: the next fold's held-out groups (whole sources, never the test ones)
        val = folds[(i + 1) % len(folds)][2]
        train = np.setdiff1d(fit_idx, val)
        split_dir = a.out / "splits" / f"fold{i}"
        split_dir.mkdir(parents=True, exist_ok=True)
        for name, idx in (("train_filtered.txt", train), ("valid_filtered.txt", val), ("test_filtered.txt", held)):
            (split_dir / name).write_text("".join(f"{rows[j]['genre']}/{Path(rows[j]['file']).name}\n" for j in idx))
        out = a.out / "fnn" / f"fold{i}"
        genrekit("train", "--model", "fnn", "--features", "mfcc_stats", "--data", str(songs), "--splits",
                 str(split_dir), "--out", str(out), "--quiet")
        m = json.loads((out / "test_metrics.json").read_text())
        if m.get("labels", keep) != keep:
            raise SystemExit(f"fold {i}: the fnn's labels {m.get('labels')} are not {keep}")
        confusions.append(np.asarray(m["confusion_matrix"]))
    fnn = pooled(confusions, len(keep))
    result = {"labels": keep, "songs": len(rows), "protocol": protocol,
              "head": {k: head["cv"][k] for k in ("accuracy", "macro_f1", "n", "accuracy_ci95_over_groups")},
              "fnn_mfcc_stats": {k: fnn[k] for k in ("accuracy", "macro_f1", "n")}}
    print(json.dumps(result, indent=1))
    print(f"| `--model head` | {result['head']['accuracy']:.3f} | {result['head']['macro_f1']:.3f} |")
    print(f"| `--model fnn --features mfcc_stats` | {fnn['accuracy']:.3f} | {fnn['macro_f1']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
