"""Where do genrekit's musicnn taggrams differ from the stored musicnn 0.1.0 ones?

Runs the PyTorch MSD_musicnn backbone on log-mels computed with front-end variants (resampler,
resampling dtype, STFT pad mode / dtype, mel normalisation, float16 cast) for a subset of the
shared GTZAN clips and prints, per variant, the mean and worst per-clip max-abs difference of the
track-mean taggram against ``gtzan-musicnn/msd_taggram_*.npz`` (the metric of musicnn_parity.py):

    python scripts/parity_investigation.py [--data ../shared/data] [--clips a,b,...|all]
        [--variants v1,v2,...] [--hf-correlation] [--json out.json]

Resamplers (the part of a variant before any ``+``): librosa's ``res_type`` names (soxr_hq,
soxr_vhq, soxr_mq, soxr_lq, soxr_qq, kaiser_best, kaiser_fast, fft, polyphase, scipy), ``swr``
(FFmpeg's libswresample through PyAV, float output) and ``sinc<cutoff>:<width>`` (a Kaiser
windowed-sinc low-pass, -6 dB at ``cutoff`` Hz, ``width`` Hz from pass band to 120 dB, applied
by ``scipy.signal.resample_poly``; e.g. ``sinc7600:600``, the band edge genrekit reproduces).
``--edges`` only prints soxr HQ's band edge at 16 kHz (``audio.resampler_response``) for 22.05,
44.1 and 48 kHz sources and the windowed-sinc target's (``sinc7600:600``), and exits.
``--hf-correlation`` prints, per clip, the correlation over its patches between the per-patch
taggram error and the patch's mean log-mel in the top six mel bands (above ~7 kHz).

musicnn 0.1.0 (musicnn/extractor.py ``batch_data``) does: ``librosa.load(file, sr=16000)`` (no
offset/duration, no normalisation; librosa's default resampler), ``librosa.feature.melspectrogram(
y, sr, hop_length=256, n_fft=512, n_mels=96)`` (defaults otherwise: center=True, slaney mel, power 2),
``.astype(float16)``, ``log10(10000 x + 1)``, patches ``range(0, n - 187 + 1, 61)`` (the tail is
dropped, nothing is padded).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from musicnn_parity import clip_table  # noqa: E402

# 10 worst clips of the soxr_hq/constant run and 10 spread over the rest
DEFAULT_CLIPS = (
    "metal/metal.00005,disco/disco.00097,pop/pop.00098,metal/metal.00003,metal/metal.00021,"
    "rock/rock.00008,hiphop/hiphop.00000,pop/pop.00009,disco/disco.00001,metal/metal.00002,"
    "country/country.00099,pop/pop.00005,hiphop/hiphop.00007,rock/rock.00098,blues/blues.00097,"
    "rock/rock.00099,jazz/jazz.00017,classical/classical.00098,blues/blues.00028,country/country.00019"
)

RESAMPLERS = ("soxr_hq", "soxr_vhq", "soxr_qq", "kaiser_best", "kaiser_fast", "fft", "polyphase", "scipy")

DEFAULT_VARIANTS = (
    [f"{r}" for r in RESAMPLERS]
    + ["soxr_hq+f64", "kaiser_best+f64", "kaiser_best+reflect", "soxr_hq+reflect",
       "soxr_hq+stft64", "soxr_hq+no16", "soxr_hq+htk", "soxr_hq+normNone", "soxr_hq+load"]
)


def resample(y: np.ndarray, sr: int, how: str, f64: bool) -> np.ndarray:
    import librosa

    y = y.astype(np.float64 if f64 else np.float32)
    if how.startswith("sinc"):
        from math import gcd

        from scipy import signal

        cutoff, width = map(float, how[4:].split(":"))
        up, down = 16000 // gcd(16000, sr), sr // gcd(16000, sr)
        fs = up * sr
        taps, beta = signal.kaiserord(120, width / (fs / 2))
        h = signal.firwin(taps | 1, cutoff, window=("kaiser", beta), fs=fs)
        return signal.resample_poly(y.astype(np.float64), up, down, window=h).astype(np.float32)
    if how == "swr":
        import av

        frame = av.AudioFrame.from_ndarray(y.astype(np.float32)[None, :], format="flt", layout="mono")
        frame.sample_rate = sr
        rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
        out = [f.to_ndarray().reshape(-1) for f in rs.resample(frame)] + \
              [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
        return np.concatenate(out).astype(np.float32)
    return librosa.resample(y, orig_sr=sr, target_sr=16000, res_type=how)


def print_edges() -> int:
    """soxr HQ's magnitude response (dB) on the 512-point grid at 16 kHz from 7 kHz up, per source
    rate, its -6 dB point, and the same for the Kaiser windowed-sinc target."""
    from genrekit.audio import resampler_response
    from genrekit.features import band_edge_gain

    first = 224  # 7000 Hz
    freqs = np.arange(first, 257) * 16000 / 512
    rows = {f"soxr HQ from {sr}": resampler_response(sr, 16000, 512, first) for sr in (22050, 44100, 48000)}
    own = rows["soxr HQ from 22050"]
    rows["target sinc7600:600"] = np.sqrt(band_edge_gain(16000, 512, 7600.0, 600.0, 22050)[first:]) * own
    print("Hz      " + " ".join(f"{f:6.0f}" for f in freqs[::2]))
    for name, r in rows.items():
        db = 20 * np.log10(np.maximum(r, 1e-12))
        i = int(np.argmax(db < -6.0))  # first bin below -6 dB; interpolate with the one before
        f6 = freqs[i - 1] + (freqs[i] - freqs[i - 1]) * (db[i - 1] + 6.0) / (db[i - 1] - db[i])
        print(f"{name:22s} -6 dB at {f6:6.0f} Hz: "
              + " ".join(f"{v:6.1f}" for v in db[::2]))
    for sr in (44100, 48000):
        d = 20 * np.log10(np.maximum(rows[f"soxr HQ from {sr}"], 1e-12)) - 20 * np.log10(np.maximum(own, 1e-12))
        print(f"from {sr} minus from 22050, bins above -40 dB: max |diff| {np.abs(d[own > 0.01]).max():.2f} dB")
    return 0


def logmel(y16: np.ndarray, opts: set[str]) -> np.ndarray:
    import librosa

    y = y16.astype(np.float64) if "stft64" in opts else y16.astype(np.float32)
    mel = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96,
        pad_mode="reflect" if "reflect" in opts else "constant",
        htk="htk" in opts, norm=None if "normNone" in opts else "slaney",
    ).T
    if "no16" not in opts:
        mel = mel.astype(np.float16)
    return np.log10(10000.0 * mel.astype(np.float32) + 1.0)


def patches(rep: np.ndarray, n: int = 187, hop: int = 61) -> np.ndarray:
    return np.stack([rep[s : s + n] for s in range(0, rep.shape[0] - n + 1, hop)]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--clips", default=DEFAULT_CLIPS)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    ap.add_argument("--hf-correlation", action="store_true",
                    help="per clip: correlation of the per-patch error with the top mels' level")
    ap.add_argument("--edges", action="store_true", help="print the resamplers' band edges and exit")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.edges:
        return print_edges()

    import librosa
    import soundfile as sf

    from genrekit.backbones.musicnn import load_backbone, run_patches

    net = load_backbone("MSD_musicnn", precision="fp32")
    table = clip_table(Path(args.data))
    if args.clips != "all":
        want = args.clips.split(",")
        table = sorted((c for c in table if c[0] in want), key=lambda c: want.index(c[0]))
    audio = {}
    for key, path, _ref in table:
        try:
            y, sr = sf.read(path, dtype="int16")  # int16 -> float as librosa/audioread: / 32768
            audio[key] = ((y if y.ndim == 1 else y.mean(1)) / 32768.0).astype(np.float32), sr
        except RuntimeError:  # .au via audioread/FFmpeg
            audio[key] = librosa.load(path, sr=None)
    cache: dict = {}
    report = {}
    print(f"{'variant':24s} {'mean':>7s} {'worst':>7s}  worst clip  (clips={len(table)})", flush=True)
    for variant in args.variants.split(","):
        how, *rest = variant.split("+")
        opts = set(rest)
        t0 = time.perf_counter()
        diffs, per_patch, per_tag = [], [], np.zeros(50)
        for key, path, ref in table:
            if "load" in opts:  # musicnn's exact call (librosa's current default resampler)
                y16 = librosa.load(path, sr=16000)[0]
            else:
                ck = (key, how, "f64" in opts)
                if ck not in cache:
                    y, sr = audio[key]
                    cache[ck] = resample(y, sr, how, "f64" in opts)
                y16 = cache[ck]
            x = patches(logmel(y16, opts))
            tags = run_patches(net, x)["tags"]
            n = min(len(tags), len(ref))
            if args.hf_correlation:
                err, top = np.abs(tags[:n] - ref[:n]).max(1), x[:n, :, 90:].mean((1, 2))
                print(f"  {key:24s} corr(per-patch error, top-mel level) = {np.corrcoef(err, top)[0, 1]:+.2f}"
                      f"  track error {np.abs(tags[:n].mean(0) - ref[:n].mean(0)).max():.4f}")
            dm = np.abs(tags[:n].mean(0) - ref[:n].mean(0))
            diffs.append(float(dm.max()))
            per_tag += dm
            per_patch.append(np.abs(tags[:n] - ref[:n]).max(1))
        d = np.array(diffs)
        pp = np.array([p[:28] for p in per_patch if len(p) >= 28])
        report[variant] = {
            "mean": float(d.mean()), "worst": float(d.max()), "worst_clip": table[int(d.argmax())][0],
            "per_clip": dict(zip([c[0] for c in table], diffs, strict=False)),
            "patch_profile": pp.mean(0).round(4).tolist() if len(pp) else [],
            "tag_profile": (per_tag / len(table)).round(4).tolist(),
        }
        print(f"{variant:24s} {d.mean():7.4f} {d.max():7.4f}  {table[int(d.argmax())][0]} "
              f"[{time.perf_counter() - t0:.0f}s]", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
