"""Fuzz genrekit's decoder for as long as asked: seeded random hostile files, one promise checked.

    python scripts/fuzz_decoder.py --seconds 120 --seed 1

Each case is a file made from honest sources (WAV, FLAC, Ogg Vorbis, Opus, MP3, M4A, AIFF encoded
here): cut at a random byte, cut with random bytes overwritten, two random sources joined (``cat``),
a WAV or FLAC header rewritten to claim a random (often absurd) length, or random bytes under an
audio extension. Each must end within ``--case-seconds`` with an AudioError or a finite signal no
longer than the file can hold (the bounds of ``tests/decoder_fuzz.py``, which the test suite runs
on a fixed set of cases). Prints one JSON summary; exit 1 when any case broke the promise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from tests.decoder_fuzz import (  # noqa: E402
    SLACK_SECONDS,
    Case,
    _flac_total,
    _share,
    _wav_with_sizes,
    check,
    flipped,
    make_sources,
    random_bytes,
)


def random_case(rng: np.random.Generator, sources: dict[str, tuple[Path, float]], folder: Path, i: int) -> list[Case]:
    """One random case (a list, as the shared builders return them)."""
    kind = rng.choice(["cut", "flip", "join", "header", "random"], p=[0.3, 0.25, 0.15, 0.15, 0.15])
    names = sorted(sources)
    if kind == "cut":
        name = names[int(rng.integers(len(names)))]
        src, secs = sources[name]
        data = src.read_bytes()
        at = int(rng.integers(1, len(data)))
        p = folder / f"cut-{i}{src.suffix}"
        p.write_bytes(data[:at])
        return [Case(p, f"{name} cut at {at} of {len(data)}", _share(secs, at, len(data)))]
    if kind == "flip":
        return flipped(rng, sources, folder, 1, tag=f"-{i}")
    if kind == "join":
        a, b = (names[int(k)] for k in rng.integers(len(names), size=2))
        (pa, sa), (pb, sb) = sources[a], sources[b]
        p = folder / f"join-{i}{pa.suffix}"
        p.write_bytes(pa.read_bytes() + pb.read_bytes())
        # a decoder may read both parts at the first one's rate: bound by the larger share of bytes
        rate_ratio = 48000 / 22050  # the sources' rates are 22050 and 48000
        return [Case(p, f"{a} + {b} joined", (sa + sb) * rate_ratio + SLACK_SECONDS)]
    if kind == "header":
        if rng.random() < 0.5:
            src, secs = sources["wav"]
            riff = int(rng.integers(0, 1 << 32)) if rng.random() < 0.5 else None
            data = int(rng.integers(0, 1 << 32))
            p = _wav_with_sizes(src, folder / f"hdr-{i}.wav", riff, data)
            return [Case(p, f"wav claiming riff={riff} data={data}", secs + SLACK_SECONDS)]
        src, secs = sources["flac"]
        total = int(rng.integers(0, 1 << 36))
        p = _flac_total(src, folder / f"hdr-{i}.flac", total)
        return [Case(p, f"flac claiming {total} samples", secs + SLACK_SECONDS)]
    return random_bytes(rng, folder, 1, tag=f"-{i}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (the same seed makes the same cases)")
    ap.add_argument("--case-seconds", type=float, default=10.0, help="time bound of one case (default 10)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    counts: Counter[str] = Counter()
    bad: list[str] = []
    slowest = (0.0, "")
    with tempfile.TemporaryDirectory(prefix="genrekit-fuzz-") as tmp:
        folder = Path(tmp)
        sources = make_sources(folder / "sources")
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < args.seconds:
            for case in random_case(rng, sources, folder, i):
                o = check(case, args.case_seconds)
                counts["error" if o.result == "error" else "signal" if o.result == "signal" else "bad"] += 1
                if o.result.startswith("BAD"):
                    bad.append(f"{case.kind}: {o.result}")
                    keep = folder.parent / f"genrekit-fuzz-bad-{args.seed}-{i}{case.path.suffix}"
                    keep.write_bytes(case.path.read_bytes())  # kept for a bug report
                if o.elapsed > slowest[0]:
                    slowest = (o.elapsed, case.kind)
                case.path.unlink(missing_ok=True)
            i += 1
    summary = {"seed": args.seed, "seconds": args.seconds, "cases": sum(counts.values()), "errors": counts["error"],
               "signals": counts["signal"], "bad": counts["bad"], "slowest_case_s": round(slowest[0], 3),
               "slowest_case": slowest[1], "bad_cases": bad[:20]}
    print(json.dumps(summary, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
