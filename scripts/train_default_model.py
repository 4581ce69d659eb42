"""Rebuild the default model with the public command, `genrekit train --model head`, and measure it.

    python scripts/train_default_model.py [--data ../shared/data] [--out FILE] [--cv-only]

All training logic is the command's (``genrekit.heads.training``); this script only writes the
manifest and the options the default is built with, then records how the result does on GTZAN's
test list. The manifest: GTZAN's clips of the fault-filtered train and valid lists (group
``gtzan``: in every fit, never scored) and every real song of ``real-songs/labels.csv`` (group: its
``source_repo``; songs outside the ten as ``other``). The command is::

    genrekit train --model head --manifest M --open-set --always-fit gtzan --cv-folds 0 \
        --c-grid 0.03 --class-weight none --max-false-other 0.13 \
        --backbone mn04 --zero-shot-weight 1.0 --name default --out DIR

i.e. leave one real-song source out (56 folds), the default's head (one LR fitted on mn04's
window rows, applied to their mean, with mn04's zero-shot genre vote at weight 1; the choices of
docs/model_card.md), "other" thresholds chosen on the other folds. ``--backbone musicnn+mn04``
builds the ``musicnn`` built-in instead (a musicnn LR and an AudioSet LR mixed half and half on
the log scale, zero-shot weight 0.5). The command prints the CV of the model and of each part
(each backbone alone, the zero-shot vote alone); the model card quotes them. After it: for the
musicnn built-in the 290 stored GTZAN test taggrams (its musicnn head alone: they carry no mn04
outputs), for both the 14 shared test clips from audio (the whole model) go into the file's
metrics, and the file is written to ``--out`` (default: the committed default head).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: The EfficientAT weights beside the shared data (what tests and CI use); a user's own copy wins.
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "efficientat" / "mn04_as_mAP_432.pt"
if SHARED_WEIGHTS.is_file():
    os.environ.setdefault("GENREKIT_EFFICIENTAT_WEIGHTS", str(SHARED_WEIGHTS))

#: The default's options of `genrekit train --model head` (chosen by grouped CV: docs/model_card.md).
OPTIONS = ["--open-set", "--always-fit", "gtzan", "--cv-folds", "0", "--c-grid", "0.03", "--class-weight", "none"]
#: mn04's zero-shot vote: weight 1 for the default (the head and the vote as equal experts; the
#: CV of 0.5 / 1 / 2 is in docs/model_card.md), 0.5 for the musicnn built-in (its earlier choice).
ZERO_SHOT_WEIGHT = {"mn04": "1.0", "musicnn+mn04": "0.5"}

#: The "other" operating point: at most 13% of the inside songs called "other" on the other folds'
#: out-of-fold scores. The bar is 15% on songs never seen; with 15% the two-backbone model's nested
#: estimate read 16.6% (a threshold fitted on a sample is optimistic on the next), with 13% 13.8%
#: at 51.0% caught; the default reads 13.1% at 56.1% (docs/model_card.md).
MAX_FALSE_OTHER = "0.13"

DESCRIPTION_MN04 = (
    "EfficientAT mn04_as (Schmid, Koutini & Widmer 2023; AudioSet; MIT) per 10 s window, read at 22.05 kHz. "
    "One logistic-regression head over the ten GTZAN genres + 'other', fitted on each window's logits and embedding "
    "and applied to their mean over the track, "
    "with mn04's zero-shot genre classes voting on the nearest genre; trained by `genrekit train --model head "
    "--backbone mn04` on GTZAN clips and real songs (scripts/train_default_model.py).")

DESCRIPTION = (
    "Two pretrained backbones: musicnn MSD_musicnn (Pons & Serra 2019; weights from the musicnn 0.1.0 wheel, ISC) "
    "per 3 s patch, and EfficientAT mn04_as (Schmid, Koutini & Widmer 2023; AudioSet; MIT) per 10 s window. "
    "Two logistic-regression heads over the ten GTZAN genres + 'other', mixed on the log scale, with mn04's "
    "zero-shot genre classes voting on the nearest genre; trained by `genrekit train --model head` on GTZAN clips "
    "and real songs (scripts/train_default_model.py).")


def split_of(data: Path) -> dict[str, str]:
    out = {}
    for split in ("train", "valid", "test"):
        for line in (data / "gtzan-splits" / f"{split}_filtered.txt").read_text().split():
            out[line.rsplit(".", 1)[0]] = split
    return out


def write_manifest(data: Path, path: Path, gtzan: bool = True) -> dict[str, int]:
    """The training manifest (absolute paths); returns its counts."""
    from genrekit.datasets import clips_in
    from genrekit.models.default import GENRES

    splits = split_of(data)
    rows, counts = [], {"gtzan": 0, "real_in_ten": 0, "real_outside": 0}
    for g in GENRES if gtzan else ():
        for clip in clips_in(data / "gtzan-clips", g):
            if splits.get(f"{g}/{clip.stem}") in ("train", "valid"):
                rows.append((str(clip), g, "gtzan"))
                counts["gtzan"] += 1
    with open(data / "real-songs" / "labels.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            inside = r["in_gtzan_ten"] == "yes"
            rows.append((str(data / "real-songs" / r["file"]), r["genre"] if inside else "other", r["source_repo"]))
            counts["real_in_ten" if inside else "real_outside"] += 1
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["input", "genre", "group"])
        w.writerows(rows)
    return counts


def gtzan_test(model_path: Path, data: Path) -> dict[str, dict]:
    """The model on GTZAN's test list: the stored taggrams and the shared clips from audio."""
    from train_default_head import load_tracks  # the stored-taggram reader of the GTZAN head's script

    from genrekit.datasets import clip_by_stem
    from genrekit.heads.validation import scores
    from genrekit.models.base import load_model
    from genrekit.models.default import GENRES, N_TAGS
    from genrekit.prediction import Classifier

    model = load_model(str(model_path))
    keep = ("accuracy", "macro_f1", "n", "confusion")
    out = {}
    if hasattr(model, "backbone_name"):  # stored MSD taggrams feed the musicnn head only
        tracks, y, _ = load_tracks(data / "gtzan-musicnn" / "msd_taggram_test.npz")
        pred = [int(np.argmax(model.track_probs_from_taggram(t[:, :N_TAGS]))) for t in tracks]
        stored = scores(np.asarray(y), np.asarray(pred), len(GENRES))
        out["test_track"] = {k: stored[k] for k in keep}
    clf = Classifier(model, open_set=False)
    truth, got = [], []
    for stem, split in split_of(data).items():
        if split != "test":
            continue
        try:
            clip = clip_by_stem(data / "gtzan-clips", stem)
        except Exception:
            continue
        r = clf.predict(clip)
        truth.append(GENRES.index(stem.split("/")[0]))
        got.append(GENRES.index(r.genre))
    audio = scores(np.asarray(truth), np.asarray(got), len(GENRES))
    return out | {"test_audio_clips": {k: audio[k] for k in keep}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None, help="model file to write (default: the committed default head)")
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation and stop (nothing written)")
    ap.add_argument("--max-false-other", default=None,
                    help=f"an investigation: another operating point for 'other' than {MAX_FALSE_OTHER} (implies --cv-only)")
    ap.add_argument("--backbone", choices=("mn04", "musicnn+mn04"), default="mn04",
                    help="mn04: the default (EfficientAT alone); musicnn+mn04: the `musicnn` built-in (both backbones)")
    ap.add_argument("--zero-shot-weight", default=None,
                    help="an investigation: another weight of mn04's zero-shot vote (implies --cv-only)")
    ap.add_argument("--without-gtzan", action="store_true",
                    help="an investigation: the manifest without GTZAN's clips (real songs alone; implies --cv-only)")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "scripts"))
    from genrekit.cli.main import main as genrekit
    from genrekit.models.base import BUILTIN_MODELS
    from genrekit.models.modelfile import read_model_file, save_model_file

    with tempfile.TemporaryDirectory(prefix="genrekit-default-") as tmp:
        manifest = Path(tmp) / "default.csv"
        counts = write_manifest(a.data, manifest, gtzan=not a.without_gtzan)
        print(f"manifest: {counts}")
        options = [o for o in OPTIONS if o not in ("--always-fit", "gtzan")] if a.without_gtzan else OPTIONS
        options = [*options, "--max-false-other", a.max_false_other or MAX_FALSE_OTHER]
        options += ["--backbone", a.backbone, "--zero-shot-weight", a.zero_shot_weight or ZERO_SHOT_WEIGHT[a.backbone],
                    "--name", "default" if a.backbone == "mn04" else "musicnn"]
        rc = genrekit(["train", "--model", "head", "--manifest", str(manifest), *options, "--out", tmp])
        if rc or a.cv_only or a.without_gtzan or a.max_false_other is not None or a.zero_shot_weight is not None:
            return rc
        built = Path(tmp) / "model.safetensors"
        tensors, meta = read_model_file(built)
        meta["description"] = DESCRIPTION_MN04 if a.backbone == "mn04" else DESCRIPTION
        meta["training"]["driver"] = "scripts/train_default_model.py"
        # where the songs came from, said without this machine's paths
        meta["training"]["source"] = ("shared data: GTZAN clips of the train and valid lists + real-songs/labels.csv "
                                      "(grouped by source_repo)")
        root = a.data.resolve()
        for f in meta["training"]["fit_files"]:
            p = Path(f["path"])
            f["path"] = str(p.resolve().relative_to(root)) if p.resolve().is_relative_to(root) else p.name
        meta["metrics"] |= gtzan_test(built, a.data)
        if "test_track" in meta["metrics"]:
            meta["metrics"]["test_track_note"] = ("stored MSD taggrams of the fault-filtered test tracks: the musicnn "
                                                  "head alone (they carry no mn04 outputs)")
        for k in ("test_track", "test_audio_clips"):
            if k not in meta["metrics"]:
                continue
            r = meta["metrics"][k]
            print(f"GTZAN test, {k}: accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}, n={r['n']}")
        out = a.out or BUILTIN_MODELS["default" if a.backbone == "mn04" else "musicnn"]
        save_model_file(out, tensors, meta)  # atomic: temp file beside it, fsync, rename
    print(f"wrote {out}")
    print(json.dumps({k: meta["metrics"][k] for k in ("cv", "other_caught", "in_set_called_other", "auroc_other")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
