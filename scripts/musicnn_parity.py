"""Parity of genrekit's PyTorch musicnn with the stored musicnn 0.1.0 taggrams.

For every shared GTZAN clip that has rows in ``gtzan-musicnn/msd_taggram_{train,test}.npz`` (78),
compute the MSD_musicnn taggram from the audio with genrekit's front end and compare the
track-mean taggram with the stored one (max-abs difference over the 50 tags). Variants show
where residual differences come from (resampler, STFT pad mode):

    python scripts/musicnn_parity.py [--data ../shared/data] [--variants soxr_hq-constant,...]
        [--limit N] [--json out.json]

Variant names: ``<resampler>-<pad mode>[-plain]``; resamplers: soxr_hq (genrekit's runtime path,
librosa>=0.10's default), soxr_vhq, kaiser_best (resampy; librosa<0.10's default; needs resampy).
``-plain`` turns off the spec's band-edge correction (``MusicnnSpec.band_edge_hz = None``): the
stored taggrams were computed from 16 kHz audio band-limited at ~7.6 kHz, ~50 Hz below soxr HQ's
edge, and the correction reproduces that edge (see ``features.band_edge_gain``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def clip_table(data: Path) -> list[tuple[str, Path, np.ndarray]]:
    """(id, audio path, stored [28, 50] taggram) for every shared clip with stored taggrams."""
    from genrekit.datasets import DatasetError, clip_by_stem

    out = []
    for split in ("train", "test"):
        d = np.load(data / "gtzan-musicnn" / f"msd_taggram_{split}.npz")
        ids = np.array([str(i).rsplit(".", 1)[0] for i in d["IDS"]])
        for key in sorted(set(ids)):
            try:
                out.append((key, clip_by_stem(data / "gtzan-clips", key), d["X"][ids == key]))
            except DatasetError:
                pass
    return out


def resample(y: np.ndarray, sr: int, how: str) -> np.ndarray:
    if how == "kaiser_best":
        import resampy

        return resampy.resample(y, sr, 16000, filter="kaiser_best").astype(np.float32)
    import soxr

    return soxr.resample(y, sr, 16000, quality={"soxr_hq": "HQ", "soxr_vhq": "VHQ"}[how]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--variants", default="soxr_hq-constant,soxr_hq-constant-plain")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--weights", default=None, help="musicnn wheel/folder (default: lookup order)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from genrekit.audio import decode
    from genrekit.backbones.musicnn import load_backbone, run_patches
    from genrekit.features import MusicnnSpec

    net = load_backbone("MSD_musicnn", args.weights, precision=args.precision)
    clips = clip_table(Path(args.data))
    if args.limit:
        clips = clips[: args.limit]
    report: dict = {}
    for variant in args.variants.split(","):
        res, pad, *flags = variant.split("-")
        spec = MusicnnSpec(pad_mode=pad, band_edge_hz=None if "plain" in flags else MusicnnSpec.band_edge_hz)
        diffs, worst_patch = [], []
        t0 = time.perf_counter()
        for _key, path, ref in clips:
            y, sr = decode(path)
            y = resample(y.mean(axis=0), sr, res)
            tags = run_patches(net, spec.extract(y).values, hop=spec.patch_hop_frames)["tags"]
            n = min(len(tags), len(ref))
            diffs.append(float(np.abs(tags[:n].mean(0) - ref[:n].mean(0)).max()))
            worst_patch.append(float(np.abs(tags[:n] - ref[:n]).max()))
        d = np.array(diffs)
        report[variant] = {
            "clips": len(d),
            "mean_max_abs_track_mean": float(d.mean()),
            "worst_max_abs_track_mean": float(d.max()),
            "worst_clip": clips[int(d.argmax())][0],
            "median_max_abs_patch": float(np.median(worst_patch)),
            "per_clip": dict(zip([c[0] for c in clips], diffs, strict=False)),
            "seconds": time.perf_counter() - t0,
        }
        r = report[variant]
        print(f"{variant:24s} clips={r['clips']} mean={r['mean_max_abs_track_mean']:.4f} "
              f"worst={r['worst_max_abs_track_mean']:.4f} ({r['worst_clip']}) "
              f"median patch max={r['median_max_abs_patch']:.4f} [{r['seconds']:.0f}s]", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
