"""The VGG ports against an independently trained network with the same tags.

No stored VGG taggrams exist, so ``MTT_vgg`` is compared with ``MTT_musicnn`` (both trained on
MagnaTagATune's 50 tags): per clip, the correlation over the 50 tags of the two track-mean
taggrams, and whether their top tags overlap. A mis-ported layer gives unrelated tags.

    python scripts/vgg_agreement.py [--data ../shared/data] [--glob '*/*.0009[0-9].wav'] [--limit 20]
        [--models MTT_vgg,MTT_musicnn]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--glob", default="*/*.0009[0-9].wav")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--models", default="MTT_vgg,MTT_musicnn")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.audio import load_audio
    from genrekit.backbones.musicnn import LABELS, load_backbone, run_patches
    from genrekit.features import MusicnnSpec

    a_name, b_name = args.models.split(",")
    a_net, b_net = load_backbone(a_name, precision="fp32"), load_backbone(b_name, precision="fp32")
    spec = MusicnnSpec(patch_hop_frames=183)
    corrs, overlap = [], 0
    clips = sorted((Path(args.data) / "gtzan-clips").glob(args.glob))[: args.limit]
    for clip in clips:
        v = spec.extract(load_audio(clip, 16000)).values
        a, b = run_patches(a_net, v)["tags"].mean(0), run_patches(b_net, v)["tags"].mean(0)
        c = float(np.corrcoef(a, b)[0, 1])
        shared = set(np.argsort(-a)[:2]) & set(np.argsort(-b)[:2])
        overlap += bool(shared)
        corrs.append(c)
        print(f"{clip.stem:18s} r = {c:.3f}  top: {LABELS[a_name][int(np.argmax(a))]:12s} / "
              f"{LABELS[b_name][int(np.argmax(b))]}")
    r = np.array(corrs)
    print(f"{len(r)} clips: correlation min {r.min():.3f}, median {np.median(r):.3f}, max {r.max():.3f}; "
          f"top-2 tags overlap on {overlap} of {len(r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
