"""How much lossy coding moves the built-in models' answers: WAV against MP3 of the same audio.

    python scripts/lossy_coding.py [--data ../shared/data] [--models default,musicnn] [--rates 22050,44100]

For the first shared GTZAN clip of each genre, at each rate: the clip (read at 22.05 kHz,
resampled to the rate) is written as WAV and as MP3 (libsndfile's LAME encoder, its default VBR
quality), both are read back as prediction reads them, and each model's ten track probabilities
are compared. Prints, per model and rate, the largest change of a genre probability on each clip
and how many of the ten clips keep their genre. The default model's numbers back the model card's
"What it costs"; ``tests/test_formats.py`` checks one clip.
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
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--models", default="default,musicnn")
    ap.add_argument("--rates", default="22050,44100")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import soundfile as sf

    from genrekit.audio import load_audio, quiet_native_stderr, resample
    from genrekit.datasets import clips_in
    from genrekit.models.base import load_model
    from genrekit.models.default import GENRES

    clips = {g: load_audio(clips_in(args.data / "gtzan-clips", g)[0], 22050) for g in GENRES}  # decoded once
    with tempfile.TemporaryDirectory(prefix="genrekit-lossy-") as tmp_dir:
        tmp = Path(tmp_dir)
        for name in args.models.split(","):
            model = load_model(name)
            for rate in (int(r) for r in args.rates.split(",")):
                shifts, kept = [], 0
                for y in clips.values():
                    z = resample(y, 22050, rate) if rate != 22050 else y
                    probs = []
                    for ext in ("wav", "mp3"):
                        sf.write(tmp / f"clip.{ext}", z, rate)
                        with quiet_native_stderr():  # libmpg123's notes on LAME's frames
                            back = load_audio(tmp / f"clip.{ext}", 22050)
                        probs.append(model.track_probs(model.features(back).values))
                    shifts.append(float(np.abs(probs[0] - probs[1]).max()))
                    kept += int(np.argmax(probs[0]) == np.argmax(probs[1]))
                print(f"{name:8s} MP3 at {rate} Hz: largest change of a genre probability per clip "
                      f"{' '.join(f'{s:.3f}' for s in shifts)} (max {max(shifts):.3f}); same genre on {kept}/10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
