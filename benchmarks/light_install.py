"""The light install, measured: a fresh venv with `pip install .` (no extras), its size, no torch,
and a first answer offline.

    python benchmarks/light_install.py [--venv /tmp/genrekit-light] [--clip rock/rock.00000] [--keep]

Steps: ``python3 -m venv VENV``; ``VENV/bin/pip install -c constraints.txt REPO`` (the pins of
constraints.txt where they apply); ``du`` of the venv; ``VENV/bin/pip show torch`` must fail; then ``genrekit predict CLIP`` with
``GENREKIT_NO_DOWNLOAD=1`` and an empty cache (the EfficientAT file from ``../shared``, nothing
fetched), twice: the first converts the network into the cache, the second is a cold start with a
warm cache; the default model needs nothing else. Then ``VENV/bin/pip install --no-deps
musicnn==0.1.0`` (the weights of the two-backbone ``musicnn`` built-in; never imported), the size
again, and ``genrekit predict --model musicnn CLIP`` once; then the full install (this interpreter,
``GENREKIT_ENGINE=torch``) on the same clip with the default. Exits 1 when torch got installed, a
prediction fails or the genres differ.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def du_mb(path: Path) -> float:
    """Disk use as ``du -sh`` reports it (MiB, blocks used)."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def _answer(proc: subprocess.CompletedProcess) -> tuple[str, float] | None:
    """(genre, confidence) of a ``predict --format jsonl`` run, None when it failed."""
    import json

    if proc.returncode != 0:
        print("  " + proc.stderr.strip()[-300:])
        return None
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    return rec["genre"], round(float(rec["confidence"]), 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "genrekit-light")
    ap.add_argument("--clip", default="rock/rock.00000")
    ap.add_argument("--keep", action="store_true", help="keep the venv afterwards")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from genrekit.datasets import clip_by_stem

    shared = Path(os.environ.get("GENREKIT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "gtzan-clips"
    clip = args.clip if Path(args.clip).is_file() else str(clip_by_stem(shared, args.clip + ".wav"))
    if args.venv.exists():
        shutil.rmtree(args.venv)
    bin_ = args.venv / "bin"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(args.venv)], check=True)
    build = Path(tempfile.mkdtemp()) / "src"  # build from a copy: pip leaves build/ in the tree it builds
    shutil.copytree(ROOT, build, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"))
    subprocess.run([str(bin_ / "pip"), "install", "-q", "--disable-pip-version-check", "-c",
                    str(ROOT / "constraints.txt"), str(build)], check=True)
    shutil.rmtree(build.parent, ignore_errors=True)
    print(f"pip install . (no extras): {time.perf_counter() - t0:.0f} s, venv {du_mb(args.venv):.0f} MiB (du)")
    torch = subprocess.run([str(bin_ / "pip"), "show", "torch"], capture_output=True, text=True)
    print("pip show torch: " + ("fails (not installed)" if torch.returncode else "INSTALLED"))
    cache = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GENREKIT_ENGINE")}
    env |= {"GENREKIT_CACHE_DIR": str(cache), "GENREKIT_NO_DOWNLOAD": "1"}
    weights = ROOT.parent / "shared" / "weights" / "efficientat" / "mn04_as_mAP_432.pt"
    if weights.is_file() and "GENREKIT_EFFICIENTAT_WEIGHTS" not in env:  # offline here: the shared copy
        env["GENREKIT_EFFICIENTAT_WEIGHTS"] = str(weights)
    ok = torch.returncode != 0
    light = None
    for label in ("first run (converts the networks)", "second run (cold start, cached networks)"):
        t0 = time.perf_counter()
        proc = subprocess.run([str(bin_ / "genrekit"), "predict", clip, "--format", "jsonl"], capture_output=True,
                              text=True, env=env, cwd=tempfile.gettempdir())
        dt = time.perf_counter() - t0
        light = _answer(proc)
        print(f"genrekit predict, {label}: {dt:.2f} s, rc {proc.returncode}: {light}")
        ok = ok and proc.returncode == 0
    subprocess.run([str(bin_ / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps", "musicnn==0.1.0"],
                   check=True)
    print(f"with the musicnn 0.1.0 wheel (weights of --model musicnn, --no-deps): venv {du_mb(args.venv):.0f} MiB (du)")
    t0 = time.perf_counter()
    proc = subprocess.run([str(bin_ / "genrekit"), "predict", "--model", "musicnn", clip, "--format", "jsonl"],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    print(f"genrekit predict --model musicnn, first run (converts musicnn): {time.perf_counter() - t0:.2f} s, "
          f"rc {proc.returncode}: {_answer(proc)}")
    ok = ok and proc.returncode == 0
    shutil.rmtree(cache, ignore_errors=True)
    # the full install (this interpreter, the torch path) on the same clip
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GENREKIT_ENGINE": "torch"}
    proc = subprocess.run([sys.executable, "-m", "genrekit.cli.main", "predict", clip, "--format", "jsonl"],
                          capture_output=True, text=True, env=full_env, cwd=tempfile.gettempdir())
    full = _answer(proc)
    same = light is not None and full is not None and light[0] == full[0]
    print(f"full install (torch path): {full}; same genre: {'yes' if same else 'NO'}")
    ok = ok and same
    if not args.keep:
        shutil.rmtree(args.venv, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
