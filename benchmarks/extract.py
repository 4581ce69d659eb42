"""Feature extraction speed: the notebook's per-segment librosa calls vs genrekit's one STFT per track.

    python benchmarks/extract.py [--clips DIR] [--limit N]

The notebook cut each clip into 1 s segments and called librosa.feature.mfcc (13 coefficients)
once per segment, then took mean/std. genrekit computes one MFCC matrix per track and slices it
(MfccSegmentSpec). Both sides include decoding the file; librosa is warmed up first so its numba
compile is not counted. BLAS threads are pinned to 1, so single-process timings are per core.
Prints the one-core ratio, the ratio of genrekit's parallel dataset extraction (datasets.extract_files,
one process per core, as `genrekit train` runs it) to the notebook's serial loop (goal >= 5x), and
genrekit's real-time factor per core. Timings on a loaded machine are noisy: rerun to compare.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
SR = 22050


def notebook_mfcc(path: Path) -> np.ndarray:
    """The notebook's way: load, then one librosa call per 1 s segment."""
    import librosa

    y, _ = librosa.load(path, sr=SR)
    out = []
    for start in range(0, len(y) - SR + 1, SR):
        m = librosa.feature.mfcc(y=y[start:start + SR], sr=SR, n_mfcc=13)
        out.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    return np.array(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=str(REPO.parent / "shared" / "data" / "gtzan-clips"))
    ap.add_argument("--limit", type=int, default=0, help="at most N clips (0 = all)")
    args = ap.parse_args()
    clips = Path(args.clips)
    if not clips.is_dir():
        print(f"benchmarks/extract.py: no clips at {clips}; skipped")
        return 0
    from genrekit.audio import audio_info
    from genrekit.datasets import scan_audio_folder
    from genrekit.features import MfccSegmentSpec

    files = [f for f, _ in scan_audio_folder(clips)]
    if args.limit:
        files = files[: args.limit]
    try:
        import librosa
    except ImportError:
        print("librosa not installed (pip install -e '.[dev]'); skipped")
        return 0
    librosa.feature.mfcc(y=np.zeros(SR, np.float32), sr=SR, n_mfcc=13)  # numba compile, not timed
    spec = MfccSegmentSpec()
    spec.extract(np.zeros(SR * 2, np.float32))
    audio_s = sum(audio_info(f).duration_s for f in files)

    t0 = time.perf_counter()
    for f in files:
        spec.extract_file(f)
    t_gk = time.perf_counter() - t0

    t0 = time.perf_counter()
    for f in files:
        notebook_mfcc(f)
    t_nb = time.perf_counter() - t0

    from genrekit.datasets import extract_files

    workers = os.cpu_count() or 1
    t0 = time.perf_counter()
    extract_files(files, spec, workers=workers, use_cache=False, progress=False)
    t_par = time.perf_counter() - t0

    print(f"clips: {len(files)} ({audio_s / 60:.1f} min of audio)")
    print(f"notebook (librosa per 1 s segment): {t_nb:7.2f} s  ({t_nb / len(files) * 1000:.0f} ms/clip)")
    print(f"genrekit (one STFT per track):      {t_gk:7.2f} s  ({t_gk / len(files) * 1000:.0f} ms/clip)")
    print(f"genrekit dataset extraction, {workers} processes: {t_par:5.2f} s wall")
    print(f"speed-up, one core each:           {t_nb / t_gk:.1f}x")
    print(f"speed-up, genrekit's parallel extraction vs the notebook's serial loop: {t_nb / t_par:.1f}x (goal >= 5x)")
    print(f"genrekit real-time factor per core: {audio_s / t_gk:.0f}x real time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
