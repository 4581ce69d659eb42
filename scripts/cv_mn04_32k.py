"""Investigation (retired after this commit): mn04 fed from audio decoded at 32 kHz instead of 22.05 kHz.

    MNSR=32000 python scripts/cv_mn04_32k.py     # MNSR=22050: the shipped reading

The default model reads every input at 22.05 kHz (GTZAN's rate) and resamples to mn04's 32 kHz,
so GTZAN clips and real songs reach mn04 with the same band; mn04 itself was trained on 32 kHz
audio up to 15 kHz. This reads the audio at ``MNSR`` for mn04 (musicnn unchanged) and runs the
leave-one-source-out CV of ``scripts/train_default_model.py`` (this commit's version) for mn04's
head alone, the shipped mix, the mix without the zero-shot vote and two zero-shot weights. The
mn04 rows are cached as ``mn04sr<MNSR>-<key>.npy`` beside the script's other features.
"""

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import audio_features as AF  # noqa: E402
import train_default_model as T  # noqa: E402

from genrekit.models import audioset as AS  # noqa: E402

SR = int(os.environ.get("MNSR", "22050"))


def mn04_rows_at(it, n_patches):
    from genrekit.audio import load_audio
    from genrekit.features import MusicnnMfccSpec

    spec = MusicnnMfccSpec()
    f = AF.cache_root() / f"mn04sr{SR}-{AF._key(it.path)}.npy"
    if f.exists():
        return np.load(f)
    y = load_audio(it.path, SR)
    starts = np.arange(n_patches) * spec.patch_hop_frames * spec.hop_length / spec.musicnn_sample_rate
    rows = AS.window_rows(y, SR, starts)
    np.save(f, rows)
    return rows


if __name__ == "__main__":
    if SR != 22050:
        T.mn04_rows = mn04_rows_at
    import torch

    torch.set_num_threads(1)
    D = T.collect(AF.DEFAULT_DATA)
    T.zero_shot(D)
    V = {"mn04 alone": T.v_mn(), "shipped": T.shipped_variant(), "no zs": T.v_late(0.5, audio_only=True)}
    for g in (1.0, 2.0):
        V[f"zs g={g}"] = T.v_late_zs(0.5, g, True)
    T.cross_validate(D, V, int(os.environ.get("KF", "0")))
