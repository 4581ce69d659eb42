"""Parity of genrekit's EfficientAT mn04 port with the original implementation's stored outputs.

``../shared/weights/efficientat/mn04_as_reference.npz`` holds, for three 5 s GTZAN excerpts, the
32 kHz int16 input, the original's mel input, its 527 logits, 384-d embedding and 512-d hidden
layer. This script compares:

* ``mel``: genrekit's numpy front end on ``int16 / 32768`` vs the stored mel;
* ``stored mel ->``: the port's network fed the stored mel (the network alone);
* ``own mel ->``: the port's network fed its own front end (the whole path);

and prints max (and mean) absolute differences. Exit status 1 when any max absolute logit
difference exceeds ``--tol`` (1e-3, the issue's bar), 0 otherwise.

``--from-audio GTZAN_CLIPS`` also starts from the GTZAN files the reference came from (informative,
not part of the pass/fail): ``resample_poly`` as the reference was made (scipy, 640/441, rounded
to int16) should reproduce it, and genrekit's runtime resampler (``genrekit.audio.load_audio``,
soxr HQ, float) shows how much the resampler alone moves the outputs of a 22.05 kHz source (the
mel bands above its 11 kHz Nyquist hold only the resampler's stopband and rounding noise)::

    python scripts/efficientat_parity.py [--reference NPZ] [--weights PT] [--threads 1] [--json out.json]
        [--from-audio ../shared/data/gtzan-clips]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# ../shared/weights/efficientat, or beside GENREKIT_SHARED_DATA's folder (as tests/conftest.py finds it)
DEFAULT_DIR = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO.parent / "shared" / "data")).parent / "weights" / "efficientat"
LOGIT_TOL = 1e-3


def diffs(net, ref: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{"mel": {...}, "stored mel": {...}, "own mel": {...}}: max/mean |port - reference| per array."""
    from genrekit.backbones.efficientat import mel_frontend, run_mel

    waves = ref["wave_int16_32k"].astype(np.float32) / np.float32(32768.0)
    lengths = ref["wave_lengths"]
    own = np.stack([mel_frontend(w[: int(n)]) for w, n in zip(waves, lengths, strict=True)])
    d = np.abs(own.astype(np.float64) - ref["mel"])
    out = {"mel": {"max": float(d.max()), "mean": float(d.mean())}}
    for name, mel in (("stored mel", ref["mel"]), ("own mel", own)):
        o = run_mel(net, mel)
        row: dict[str, float] = {}
        for k in ("logits", "embedding", "hidden"):
            e = np.abs(o[k].astype(np.float64) - ref[k])
            row[f"{k}_max"], row[f"{k}_mean"] = float(e.max()), float(e.mean())
        out[name] = row
    return out


def from_audio(net, ref: dict[str, np.ndarray], clips: Path) -> dict[str, dict[str, float]]:
    """Max |logit| and |probability| differences to the reference, starting from the GTZAN files."""
    from scipy.signal import resample_poly

    from genrekit.audio import decode, load_audio
    from genrekit.backbones.efficientat import SR, mel_frontend, run_mel
    from genrekit.datasets import clip_by_stem

    waves: dict[str, list[np.ndarray]] = {"resample_poly int16": [], "genrekit soxr float": []}
    for rel, n in zip(ref["source_files"], ref["wave_lengths"], strict=True):
        path = clip_by_stem(clips, str(rel))
        x, sr = decode(path)
        x = np.asarray(x, np.float64)
        x = x.mean(axis=0) if x.ndim > 1 else x
        g = np.gcd(SR, sr)
        y = np.clip(np.round(resample_poly(x, SR // g, sr // g)[: int(n)] * 32768), -32768, 32767) / 32768
        waves["resample_poly int16"].append(y.astype(np.float32))
        waves["genrekit soxr float"].append(load_audio(path, SR)[: int(n)])
    out = {}
    p_ref = 1 / (1 + np.exp(-ref["logits"].astype(np.float64)))
    for name, ws in waves.items():
        logits = run_mel(net, np.stack([mel_frontend(w) for w in ws]))["logits"].astype(np.float64)
        out[name] = {"logits_max": float(np.abs(logits - ref["logits"]).max()),
                     "prob_max": float(np.abs(1 / (1 + np.exp(-logits)) - p_ref).max())}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_DIR / "mn04_as_reference.npz")
    ap.add_argument("--weights", type=Path, default=None,
                    help="weights file (default: GENREKIT_EFFICIENTAT_WEIGHTS, else the reference's folder)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the reference used 1)")
    ap.add_argument("--tol", type=float, default=LOGIT_TOL, help="max absolute logit difference allowed")
    ap.add_argument("--json", type=Path, default=None, help="also write the differences here")
    ap.add_argument("--from-audio", type=Path, default=None, metavar="GTZAN_CLIPS",
                    help="also start from the GTZAN files (informative; see the module docstring)")
    args = ap.parse_args(argv)

    import torch

    from genrekit.backbones.efficientat import ENV_WEIGHTS, load_efficientat
    from genrekit.errors import GenrekitError

    torch.set_num_threads(args.threads)
    if not args.reference.is_file():
        print(f"efficientat_parity: {args.reference}: no such file (the parity reference)", file=sys.stderr)
        return 2
    weights = args.weights
    if weights is None and not os.environ.get(ENV_WEIGHTS):
        weights = args.reference.parent / "mn04_as_mAP_432.pt"
    try:
        net = load_efficientat(weights, allow_download=False)
    except GenrekitError as exc:
        print(f"efficientat_parity: {exc}", file=sys.stderr)
        return 2
    with np.load(args.reference) as z:
        ref = {k: z[k] for k in z.files}
    res = diffs(net, ref)
    print(f"reference: {args.reference} ({', '.join(map(str, ref['names']))}); torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    print(f"mel (own front end vs stored): max |d| {res['mel']['max']:.3g}, mean {res['mel']['mean']:.3g}")
    for name in ("stored mel", "own mel"):
        r = res[name]
        print(f"{name + ' ->':<14} logits max {r['logits_max']:.3g} (mean {r['logits_mean']:.3g}), "
              f"embedding max {r['embedding_max']:.3g}, hidden max {r['hidden_max']:.3g}")
    worst = max(res["stored mel"]["logits_max"], res["own mel"]["logits_max"])
    ok = worst <= args.tol
    print(f"max absolute logit difference {worst:.3g} {'<=' if ok else '>'} {args.tol:g}: {'PASS' if ok else 'FAIL'}")
    extra = from_audio(net, ref, args.from_audio) if args.from_audio is not None else {}
    for name, r in extra.items():
        print(f"from audio, {name:<20} logits max {r['logits_max']:.3g}, sigmoid max {r['prob_max']:.3g} (not gated)")
    if args.json is not None:
        args.json.write_text(json.dumps({"diffs": res, "max_logit_diff": worst, "tol": args.tol, "pass": ok,
                                         "from_audio": extra}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
