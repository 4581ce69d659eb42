"""``genrekit demo``: the whole predict path, offline, on audio it synthesises itself.

No data set and no network are needed: the demo renders a short pop/rock-like loop (kick, snare,
hi-hat, a bass line and a I-vi-IV-V chord progression at 120 bpm), writes it as a WAV file, then
predicts it exactly as ``genrekit predict`` would, with the default model, and shows the table, the
JSON record and where the timeline PNG went. This is what ``make demo`` runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from genrekit.cli.argtypes import duration_in
from genrekit.models.modelfile import write_text_atomic
from genrekit.units import format_duration, format_percent

SAMPLE_RATE = 22050


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="predict a synthesised song offline (no data needed) and write its timeline",
        description="Synthesise a few seconds of drums, bass and chords, then run the full predict "
        "path with the default model: prints the table, the JSON record and the timeline PNG's path.",
    )
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where to write demo.wav, demo.json and demo.png (default: a new temp folder)")
    p.add_argument("--seconds", type=duration_in(1.0, 600.0), default=12.0, metavar="DURATION",
                   help="length of the synthesised song: seconds, or with a unit (90s, 2m), 1 s to 10m (default 12)")
    p.add_argument("--model", default=None, metavar="PATH|default", help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def synth_song(seconds: float = 12.0, sr: int = SAMPLE_RATE, bpm: float = 120.0, seed: int = 0) -> np.ndarray:
    """A deterministic drums + bass + chords loop, float32 mono in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n, np.float64)
    beat = 60.0 / bpm

    def add(sig: np.ndarray, t0: float) -> None:
        i = int(t0 * sr)
        if i >= n:
            return
        m = min(len(sig), n - i)
        y[i : i + m] += sig[:m]

    # drums
    tk = np.arange(int(0.35 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * tk + 100 * (1 - np.exp(-tk * 30)) / 30)) * np.exp(-tk * 9) * 0.9
    ts = np.arange(int(0.2 * sr)) / sr
    snare = (rng.standard_normal(len(ts)) * 0.5 + np.sin(2 * np.pi * 190 * ts) * 0.4) * np.exp(-ts * 22)
    th = np.arange(int(0.05 * sr)) / sr
    hat_noise = rng.standard_normal(len(th))
    hat = np.diff(hat_noise, prepend=0.0) * np.exp(-th * 90) * 0.15  # first difference: crude high-pass
    n_beats = int(seconds / beat) + 1
    for b in range(n_beats):
        t = b * beat
        if b % 4 in (0, 2):
            add(kick, t)
        if b % 4 in (1, 3):
            add(snare, t)
        add(hat, t)
        add(hat * 0.6, t + beat / 2)

    # harmony: C - Am - F - G, one chord per bar
    chords = [(48, [60, 64, 67]), (45, [57, 60, 64]), (41, [57, 60, 65]), (43, [55, 59, 62])]

    def hz(midi: int) -> float:
        return 440.0 * 2 ** ((midi - 69) / 12)

    bar = 4 * beat
    tb = np.arange(int(bar * sr)) / sr
    for k in range(int(seconds / bar) + 1):
        root, triad = chords[k % len(chords)]
        pad = sum(sum(np.sin(2 * np.pi * hz(m) * h * tb) / h**1.5 for h in (1, 2, 3)) for m in triad)
        pad *= 0.07 * np.minimum(1.0, tb / 0.05) * np.exp(-tb * 0.6)
        add(pad, k * bar)
        for e in range(8):  # eighth-note bass, saw-like (a few harmonics), plucked envelope
            te = np.arange(int(beat / 2 * sr)) / sr
            f = hz(root + (12 if e % 4 == 3 else 0))
            note = sum(np.sin(2 * np.pi * f * h * te) / h for h in range(1, 6)) * np.exp(-te * 7) * 0.25
            add(note, k * bar + e * beat / 2)

    y /= max(1e-9, float(np.max(np.abs(y)))) / 0.8
    return y.astype(np.float32)


def run(args: argparse.Namespace) -> int:
    import soundfile as sf

    from genrekit.prediction import Classifier
    from genrekit.timeline import plot_timeline

    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="genrekit-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    wav = out / "demo.wav"
    sf.write(str(wav), synth_song(args.seconds), SAMPLE_RATE, subtype="PCM_16")
    print(f"synthesised {args.seconds:g} s of drums, bass and chords (120 bpm): {wav}")

    classifier = Classifier.load(args.model)
    pred = classifier.predict(wav)

    print(f"\nmodel: {classifier.name}\n")
    print(f"{'input':<10}  {'genre':<12} {'conf':>5}  {'duration':>8}  top-3")
    top3 = ", ".join(f"{g} {format_percent(p)}" for g, p in pred.top(3))  # as `genrekit predict` shows it
    print(f"{'demo.wav':<10}  {pred.genre:<12} {format_percent(pred.confidence):>5}  "
          f"{format_duration(pred.duration_s):>8}  {top3}")
    if pred.tags:
        print("tags: " + ", ".join(f"{t['tag']} {format_percent(t['probability'])}" for t in pred.tags))
    if pred.is_other:
        print(f"(a synthetic loop is not one of the model's {len(classifier.labels)} genres, so 'other' is the honest "
              f"answer; nearest: {pred.nearest}"
              + (f", sounds like {pred.style}" if pred.style else "") + "; real songs: genrekit predict SONG)")
    elif pred.confidence < 0.5:
        print("(a synthetic loop is not much like any of the model's ten genres, so a low, split answer is the "
              "honest one; real songs: genrekit predict SONG)")

    record = pred.to_dict()
    write_text_atomic(out / "demo.json", json.dumps(record, indent=2) + "\n")
    short = dict(record, segments=f"[{len(record['segments'])} segments, see demo.json]")
    print("\nJSON record (as `genrekit predict --format jsonl --segments` writes it; segments elided):")
    # one field a line: the labels list and the probabilities stay readable at a glance
    print("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in short.items())
          + "\n}")
    png = plot_timeline(pred, out / "demo.png")
    print(f"\ntimeline PNG: {png}")
    print(f"full JSON:    {out / 'demo.json'}")
    return 0
