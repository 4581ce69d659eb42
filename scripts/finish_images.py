"""Regenerate the screenshots in docs/img: the web page and the three PNG kinds genrekit writes.

    python scripts/finish_images.py                 # docs/img/*-after.png from this checkout
    python scripts/finish_images.py --tag before    # what the "before" images were made with

What it makes, all from real runs (nothing drawn by hand):

- ``timeline-<tag>.png``: ``genrekit predict --timeline`` on GTZAN ``hiphop.00000.wav`` with the
  default model (the clip where the track head and the segment head disagree).
- ``training-curve-<tag>.png`` and ``confusion-<tag>.png``: ``genrekit train --model fnn`` on the
  GTZAN feature table with the artist-filtered split lists, 60 epochs, seed 0 (about 10 s).
- ``page-<tag>.png`` (1000 px wide) and ``page-375-<tag>.png`` (a 375 px phone): the page in
  headless Chromium after uploading the same clip to a ``genrekit serve`` app on 127.0.0.1.

Each image is reduced to a 256-colour palette so it stays well under 150 KB. Needs ../shared/data,
the default model's weights, and for the page the system Chromium plus playwright (the page images
are skipped with a message when either is missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLIP_KEY = "hiphop/hiphop.00000"  # found by stem: the shared clips change format (WAV -> FLAC)


def shrink(src: Path, dst: Path, width: int | None = None) -> Path:
    """Copy ``src`` to ``dst`` as a palette PNG (optionally scaled to ``width``) to keep docs small."""
    from PIL import Image

    img = Image.open(src).convert("RGB")
    if width and img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img.quantize(colors=256, method=Image.MEDIANCUT, dither=Image.NONE).save(dst, optimize=True)
    print(f"{dst}: {dst.stat().st_size / 1024:.0f} KB")
    return dst


def training_images(out: Path, tag: str, work: Path) -> None:
    from genrekit.cli.main import main

    run = work / "fnn"
    rc = main(["train", "--model", "fnn", "--data", str(DATA / "gtzan-features" / "features_30_sec.csv"),
               "--splits", str(DATA / "gtzan-splits"), "--epochs", "60", "--lr", "0.003", "--seed", "0",
               "--out", str(run), "--quiet"])
    if rc:
        raise SystemExit(f"genrekit train failed ({rc})")
    shrink(run / "training_curve.png", out / f"training-curve-{tag}.png")
    shrink(run / "test_metrics_confusion.png", out / f"confusion-{tag}.png")


def timeline_image(out: Path, tag: str, work: Path, clf) -> None:
    from genrekit.timeline import plot_timeline

    png = plot_timeline(clf.predict(CLIP), work / "timeline.png")
    shrink(png, out / f"timeline-{tag}.png")


def page_images(out: Path, tag: str, work: Path, clf) -> None:
    chromium = os.environ.get("GENREKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print(f"no Chromium at {chromium}: page images skipped", file=sys.stderr)
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("playwright is not installed: page images skipped", file=sys.stderr)
        return
    from genrekit.serve import ServeLimits, create_app
    from genrekit.serve.runner import running_server

    app = create_app(clf, ServeLimits(max_in_flight=1))
    with running_server(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for name, width in (("page", 1000), ("page-375", 375)):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.goto(base + "/")
                page.wait_for_function("document.getElementById('limits').textContent.length > 0", timeout=30_000)
                page.set_input_files("#file-input", str(CLIP))
                page.wait_for_selector("#result:not([hidden])", timeout=120_000)
                page.wait_for_timeout(300)  # the smooth scroll and the SVG layout settle
                shot = work / f"{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                shrink(shot, out / f"{name}-{tag}.png", width=800 if width > 800 else None)
                page.close()
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tag", default="after", help="file-name suffix (default: after)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    ap.add_argument("--only", choices=("training", "timeline", "page"), action="append",
                    help="make only these images (repeatable)")
    args = ap.parse_args(argv)
    global CLIP
    sys.path.insert(0, str(REPO / "src"))
    from genrekit.datasets import DatasetError, clip_by_stem

    try:
        CLIP = clip_by_stem(DATA / "gtzan-clips", CLIP_KEY)
    except DatasetError as exc:
        raise SystemExit(f"{exc} (this script needs ../shared/data)") from None
    args.out.mkdir(parents=True, exist_ok=True)
    todo = set(args.only or ("training", "timeline", "page"))
    with tempfile.TemporaryDirectory(prefix="genrekit-finish-") as tmp:
        work = Path(tmp)
        if "training" in todo:
            training_images(args.out, args.tag, work)
        if todo & {"timeline", "page"}:
            from genrekit.prediction import Classifier

            clf = Classifier.load("default")
            if "timeline" in todo:
                timeline_image(args.out, args.tag, work, clf)
            if "page" in todo:
                page_images(args.out, args.tag, work, clf)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
