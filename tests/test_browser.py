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
    clip = sorted((gtzan_clips / "classical").glob("*.wav"))[0]
    expected = httpx.post(base + "/api/predict", files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                          timeout=120).json()

    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base + "/")
    page.wait_for_function("document.getElementById('limits').textContent.length > 0")
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
    assert n_marks == len(expected["segments"]) >= 9
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
    page.wait_for_function("document.getElementById('limits').textContent.length > 0")

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
        page.wait_for_function("document.getElementById('limits').textContent.length > 0")
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
