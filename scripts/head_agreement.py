"""How often the default model's two heads disagree on a track: the track head's genre against
the timeline's (the segment head's probabilities averaged over the track, and its majority vote).

    python scripts/head_agreement.py [--data ../shared/data/gtzan-musicnn/msd_taggram_test.npz]

Analysis of the committed model on stored taggrams (every patch, 1 s apart, as prediction uses);
it selects nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/gtzan-musicnn/msd_taggram_test.npz"))
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "src")]
    from train_default_head import load_tracks

    from genrekit.datasets import SIBLING_MFCC_TABLE
    from genrekit.models.base import load_model

    model = load_model("musicnn")
    data = Path(args.data)
    tracks, _, _ = load_tracks(data, (data.parent / SIBLING_MFCC_TABLE).resolve())
    same_mean, same_vote, seg_share = [], [], []
    for taggram in tracks:
        track = int(model.track_probs_from_taggram(taggram).argmax())
        seg = model.segment_probs_from_taggram(taggram)
        same_mean.append(int(seg.mean(0).argmax()) == track)
        same_vote.append(int(np.bincount(seg.argmax(1), minlength=len(model.labels)).argmax()) == track)
        seg_share.append(float((seg.argmax(1) == track).mean()))
    n = len(same_mean)
    print(f"{n} tracks ({Path(args.data).name}):")
    print(f"  track genre = argmax of the mean segment probabilities: {np.mean(same_mean):.3f} ({n - sum(same_mean)} differ)")
    print(f"  track genre = the segments' majority genre:            {np.mean(same_vote):.3f} ({n - sum(same_vote)} differ)")
    print(f"  segments whose genre is the track's (mean over tracks): {np.mean(seg_share):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
