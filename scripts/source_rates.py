"""The default model on copies of the shared clips at other sample rates and in stereo.

    python scripts/source_rates.py [--data ../shared/data] [--rates 16000,44100,48000] [--lists valid,test]

GTZAN clips are 22.05 kHz mono. Each clip of the lists is resampled (soxr VHQ) to every rate,
written as a stereo FLAC (both channels the same) and predicted through ``Classifier.predict``,
the path ``genrekit predict`` runs. Printed per rate: accuracy, how many predictions equal the
original clip's, and the mean top probability. Why: the model reads every file at 22.05 kHz; a
source below that has nothing above its own Nyquist frequency, where the MFCCs (0-11 kHz) and the
training table still had content.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--rates", default="16000,44100,48000")
    ap.add_argument("--lists", default="valid,test")
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "src")]
    import soundfile as sf
    import soxr
    from eval_default_audio import shared_clips

    from genrekit.audio import decode
    from genrekit.prediction import Classifier

    data = Path(args.data)
    clips = [p for _lst, _stem, p in shared_clips(data, args.lists.split(","))]
    clf = Classifier.load(None)
    base = {p: clf.predict(p) for p in clips}
    truth = {p: p.parent.name for p in clips}
    rows = [("original (22.05 kHz mono)", [base[p].genre for p in clips], [base[p].confidence for p in clips])]
    with tempfile.TemporaryDirectory(prefix="genrekit-rates-") as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            genres, confs = [], []
            for p in clips:
                y, sr = decode(p)
                z = soxr.resample(np.asarray(y, np.float32).reshape(-1), sr, rate, quality="VHQ")
                f = Path(tmp) / f"{p.stem}.{rate}.flac"
                sf.write(f, np.stack([z, z], axis=1), rate)
                pred = clf.predict(f)
                genres.append(pred.genre)
                confs.append(pred.confidence)
            rows.append((f"{rate} Hz stereo FLAC", genres, confs))
    n = len(clips)
    print(f"{n} clips ({args.lists}); default model through Classifier.predict")
    for name, genres, confs in rows:
        right = sum(g == truth[p] for g, p in zip(genres, clips, strict=True))
        same = sum(g == base[p].genre for g, p in zip(genres, clips, strict=True))
        print(f"  {name:28s} accuracy {right}/{n} = {right / n:.3f}   same genre as the original {same}/{n}"
              f"   mean top probability {np.mean(confs):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
