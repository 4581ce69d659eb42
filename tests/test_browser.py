"""End-to-end: the page in headless Chromium (system package, driven by Playwright) uploads a GTZAN
clip, waits for the answer and draws the genre, the bars and one timeline mark per segment.

Skips cleanly when the system Chromium or the playwright package is missing (no browser downloads:
``playwright install`` is never needed). The screenshot goes to ``$GENREKIT_ARTIFACTS`` or
``artifacts/`` for CI to keep. Uses the pretrained default model when its files are present, else
the toy model of the API tests (the page does not care which).
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from genrekit.datasets import clips_in

from .conftest import REPO
from .test_serve import http_server  # noqa: F401  (fixture: local HTTP server with clips)

CHROMIUM = os.environ.get("GENREKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]


def _artifacts() -> Path:
    d = Path(os.environ.get("GENREKIT_ARTIFACTS") or REPO / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("fastapi")
    from genrekit.errors import GenrekitError
    from genrekit.prediction import Classifier
    from genrekit.serve import ServeLimits, create_app
    from genrekit.serve.runner import running_server

    try:
        clf = Classifier.load("default")
    except (GenrekitError, ImportError, OSError):
        from .test_serve import ToyModel

        clf = Classifier.load(ToyModel())
    app = create_app(clf, ServeLimits(max_upload_bytes=20 * 1024 * 1024, max_in_flight=1))
    with running_server(app) as base:
        yield base, clf


def test_page_upload_shows_genre_and_timeline(browser, server, gtzan_clips: Path):
    import httpx

    base, clf = server
    clip = clips_in(gtzan_clips, "classical")[0]
    expected = httpx.post(base + "/api/predict", files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                          timeout=120).json()

    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base + "/")
    page.wait_for_selector("#limits:not(:empty)")  # CSP-safe: no in-page eval
    assert page.is_disabled("#url-input")  # URL fetching is off on this server, and the page says so
    assert "model:" in page.text_content("#model-name")

    # record every show/hide of the progress box: it must appear while the request runs
    page.evaluate("""() => {
        window.__progress = [];
        const box = document.getElementById('progress');
        new MutationObserver(() => window.__progress.push([box.hidden, document.getElementById('status').textContent]))
            .observe(box, {attributes: true, attributeFilter: ['hidden']});
    }""")
    page.set_input_files("#file-input", str(clip))
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert page.is_hidden("#progress") and page.is_hidden("#error")
    log = page.evaluate("window.__progress")
    assert log[0][0] is False and clip.name in log[0][1] and log[-1][0] is True, log

    assert page.text_content("#genre").strip() == expected["genre"]
    assert page.text_content("#input-name") == clip.name
    n_marks = page.locator("#timeline .seg-mark").count()
    assert n_marks == len(expected["segments"]) >= 3  # one per 10 s window of the default
    genres = page.eval_on_selector_all("#timeline .seg-mark", "els => els.map(e => e.dataset.genre)")
    assert genres == [s["genre"] for s in expected["segments"]]
    assert page.locator("#bars .bar-row").count() == min(5, len(expected["probabilities"]))
    top = max(expected["probabilities"], key=expected["probabilities"].get)
    assert page.text_content("#bars .bar-row .bar-label") == top
    # marks sit left to right inside the chart, none of zero width
    boxes = [m.bounding_box() for m in page.locator("#timeline .seg-mark").all()]
    assert all(b and b["width"] >= 1 for b in boxes)
    assert [b["x"] for b in boxes] == sorted(b["x"] for b in boxes)
    page.screenshot(path=str(_artifacts() / "serve-page.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_page_drop_and_error(browser, server, tmp_path: Path):
    """Drag-and-drop of a file reaches the API; a bad file shows the server's 4xx detail."""
    from .test_serve import wav_bytes

    base, _ = server
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(base + "/")
    page.wait_for_selector("#limits:not(:empty)")  # CSP-safe: no in-page eval

    drop = """([b64, name]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type: 'audio/wav'}));
        document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }"""
    page.evaluate(drop, [base64.b64encode(wav_bytes(7.0)).decode(), "dropped.wav"])
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert page.text_content("#input-name") == "dropped.wav"
    assert page.locator("#timeline .seg-mark").count() >= 1

    page.evaluate(drop, [base64.b64encode(b"definitely not audio" * 20).decode(), "notes.wav"])
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    text = page.text_content("#error")
    assert "(400)" in text and "notes.wav" in text
    assert page.is_hidden("#result")
    page.screenshot(path=str(_artifacts() / "serve-page-error.png"), full_page=True)
    page.close()


def test_page_url_field(browser, http_server: str):  # noqa: F811  (the imported fixture)
    """With ``allow_urls`` (and 127.0.0.1 allowed on purpose) the URL field fetches and shows the
    result; an address outside the allowed network shows the 403 detail."""
    from genrekit.prediction import Classifier
    from genrekit.serve import ServeLimits, create_app
    from genrekit.serve.runner import running_server

    from .test_serve import ToyModel

    app = create_app(Classifier.load(ToyModel()),
                     ServeLimits(allow_urls=True, allowed_networks=("127.0.0.1",), max_in_flight=1))
    with running_server(app) as base:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(base + "/")
        page.wait_for_selector("#limits:not(:empty)")  # CSP-safe: no in-page eval
        assert page.is_enabled("#url-input")
        page.fill("#url-input", http_server + "/clip.wav")
        page.click("#url-button")
        page.wait_for_selector("#result:not([hidden])", timeout=60_000)
        assert page.text_content("#input-name") == http_server + "/clip.wav"
        assert page.locator("#timeline .seg-mark").count() >= 1

        page.fill("#url-input", "http://10.0.0.1/song.mp3")
        page.click("#url-button")
        page.wait_for_selector("#error:not([hidden])", timeout=60_000)
        text = page.text_content("#error")
        assert "(403)" in text and "private" in text
        page.close()


# ------------------------------------------------------------------ heading, palette, layout, docs
# These tests answer /api/predict from inside the browser (Playwright's request routing) with a
# record of the real shape, so every genre (and the open-set "other") can be shown without
# running the model eleven times. The page, its CSS and /api/palette are the real ones.

def _record(labels: list[str], genre: str, name: str = "song.wav", n_segments: int = 6) -> dict:
    """A predict record with ``genre`` on top (or "other" with its open-set fields)."""
    top = labels[0] if genre == "other" else genre
    rest = (1.0 - 0.6) / max(1, len(labels) - 1)
    probs = {g: (0.6 if g == top else rest) for g in labels}
    segs = [{"start_s": 3.0 * i, "end_s": 3.0 * i + 3.0, "genre": top, "confidence": 0.6,
             "probabilities": probs} for i in range(n_segments)]
    rec = {"input": name, "genre": genre, "confidence": 0.6, "probabilities": probs,
           "duration_s": 3.0 * n_segments, "model": "default", "segments": segs, "tags": None}
    if genre == "other":
        rec.update(nearest=top, in_set=0.2, style="electronic, dance")
    return rec


def _show(page, rec: dict) -> None:
    """Make the page show ``rec`` through its own upload path (the request never leaves the browser)."""
    import json

    page.unroute("**/api/predict")
    page.route("**/api/predict", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(rec)))
    page.evaluate("document.getElementById('result').hidden = true")
    page.set_input_files("#file-input", files=[{"name": rec["input"], "mimeType": "audio/wav", "buffer": b"RIFF"}])
    page.wait_for_selector("#result:not([hidden])", timeout=20_000)


#: The heading's text colour and the first opaque background behind it, as "rgb(r, g, b)" strings.
_HEADING_COLOURS = """() => {
    const h = document.getElementById('genre');
    let e = h, bg = 'rgba(0, 0, 0, 0)';
    while (e && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) { bg = getComputedStyle(e).backgroundColor; e = e.parentElement; }
    const sw = document.getElementById('genre-swatch');
    return [getComputedStyle(h).color, bg, sw ? getComputedStyle(sw).backgroundColor : null];
}"""


def _rgb(css: str) -> tuple[float, float, float]:
    import re

    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return r / 255, g / 255, b / 255


def test_heading_contrast_and_swatch_for_every_genre(browser, server):
    """WCAG 4.5:1 for the genre heading whatever the genre; the swatch beside it has the genre's
    palette colour (the same table as the PNGs, served at /api/palette)."""
    import httpx

    from genrekit.palette import contrast_ratio, hex_to_rgb, palette_for

    base, clf = server
    labels = list(clf.labels)
    colours = httpx.get(base + "/api/palette", timeout=10).json()["colours"]
    assert colours == palette_for(labels)
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(base + "/")
    page.wait_for_selector("#limits:not(:empty)")  # CSP-safe: no in-page eval
    seen = {}
    for genre in labels + ["other"]:
        _show(page, _record(labels, genre))
        assert page.text_content("#genre").strip() == genre
        text, bg, swatch = page.evaluate(_HEADING_COLOURS)
        ratio = contrast_ratio(_rgb(text), _rgb(bg))
        assert ratio >= 4.5, f"{genre}: heading contrast {ratio:.2f}:1 ({text} on {bg})"
        want = tuple(round(c * 255) for c in hex_to_rgb(colours[genre]))
        assert swatch is not None, "no #genre-swatch beside the heading"
        assert tuple(round(c * 255) for c in _rgb(swatch)) == want, (genre, swatch, colours[genre])
        seen[genre] = swatch
        if genre == "other":  # the open-set answer says so in words, with the nearest genre
            text = page.text_content("#open-set")
            assert page.is_visible("#open-set") and "Not one of the" in text and labels[0] in text, text
            assert "electronic, dance" in text and "20%" in text
        else:
            assert page.is_hidden("#open-set")
        assert page.text_content("#confidence") == "60%"
    assert len(set(seen.values())) == len(seen)  # one colour per genre
    page.close()


def test_timeline_shows_other_stretches(browser, server):
    """Segments with in-set scores: a line at those scores, and one hatched rectangle for each
    segment whose answer is "other"."""
    base, clf = server
    labels = list(clf.labels)
    rec = _record(labels, "other", n_segments=8)
    for i, s in enumerate(rec["segments"]):
        s["in_set"] = 0.2 if 2 <= i < 5 else 0.9
        s["genre"] = "other" if 2 <= i < 5 else s["genre"]
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(base + "/")
    page.wait_for_selector("#limits:not(:empty)")
    _show(page, rec)
    assert page.locator("#timeline .other-spans rect").count() == 3
    points = page.get_attribute("#timeline polyline.in-set", "points").split()
    assert len(points) == 8
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[2] > ys[0]  # a lower score sits lower on the chart (SVG y grows downwards)
    assert "in-set score" in page.text_content("#legend")
    page.close()


def test_heads_note_names_the_disagreement(browser, server):
    """When the track's probabilities are not the mean of the segments' (two heads), the caption
    under the timeline says so and names the genre that differs most; when they are, it says that."""
    base, clf = server
    labels = list(clf.labels)
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(base + "/")
    page.wait_for_selector("#limits:not(:empty)")  # CSP-safe: no in-page eval
    rec = _record(labels, labels[0])
    _show(page, rec)
    assert "average of these segments" in page.text_content("#heads-note")
    other = labels[1]
    for s in rec["segments"]:  # segments all say labels[1] at 90%; the track still says labels[0]
        s["probabilities"] = {g: (0.9 if g == other else 0.1 / (len(labels) - 1)) for g in labels}
    _show(page, rec)
    note = page.text_content("#heads-note")
    assert "whole track at once" in note and "one window at a time" in note and f"lean to {other} (90%" in note, note
    page.close()


def test_no_horizontal_overflow_at_375px(browser, server):
    """On a 375 px phone nothing sticks out of its card and the page does not scroll sideways."""
    base, clf = server
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.goto(base + "/")
    page.wait_for_selector("#limits:not(:empty)")  # CSP-safe: no in-page eval
    long_name = "a-rather-long-file-name-" * 4 + ".wav"
    _show(page, _record(list(clf.labels), "other", name=long_name, n_segments=40))
    sticking_out = page.evaluate("""() => {
        const out = [];
        for (const card of document.querySelectorAll('.card:not([hidden])')) {
            const c = card.getBoundingClientRect(), st = getComputedStyle(card);
            const right = c.right - parseFloat(st.paddingRight) - parseFloat(st.borderRightWidth);
            for (const e of card.querySelectorAll('*')) {
                const r = e.getBoundingClientRect();
                if (r.width > 0 && r.height > 0 && r.right > right + 0.5 && !e.closest('details:not([open])'))
                    out.push((e.id || e.className.baseVal || e.className || e.tagName) + ' +' + (r.right - right).toFixed(1) + 'px');
            }
        }
        return out;
    }""")
    assert not sticking_out, sticking_out
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.close()


def test_docs_render_without_network(browser, server):
    """/docs is Swagger UI from the installed package: it renders every route while any request to
    another host is refused (and none is even attempted)."""
    import httpx

    base, _ = server
    if "swagger-ui" not in httpx.get(base + "/docs", timeout=10).text:
        pytest.skip("fastapi-offline is not installed: /docs is the plain page linking openapi.json")
    n_routes = sum(len(v) for v in httpx.get(base + "/openapi.json", timeout=10).json()["paths"].values())
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(base + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert "genrekit" in page.text_content(".swagger-ui .info .title")
    assert page.locator(".swagger-ui .opblock").count() == n_routes
    assert not outside, outside
    page.close()
