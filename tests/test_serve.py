"""API tests of ``genrekit serve``: uploads, URLs (against a local HTTP server), every limit, bad
files, concurrency, temp-file cleanup and the SSRF guard. A tiny MFCC model stands in for musicnn so
the module runs in seconds; the real default model goes through the same ``Classifier``."""

from __future__ import annotations

import http.server
import io
import ipaddress
import json
import subprocess
import sys
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from genrekit.datasets import clips_in
from genrekit.features import MfccSegmentSpec  # noqa: E402
from genrekit.models.base import GenreModel  # noqa: E402
from genrekit.netguard import AddressRefused, BadUrl, check_address, check_host, check_url  # noqa: E402
from genrekit.prediction import Classifier  # noqa: E402
from genrekit.serve import ServeLimits, create_app  # noqa: E402
from genrekit.serve.runner import running_server  # noqa: E402

from .conftest import tone  # noqa: E402

GENRES = "blues classical country disco hiphop jazz metal pop reggae rock".split()
SR = 22050


class ToyModel(GenreModel):
    """Deterministic, peaked probabilities from MFCC statistics; optional delay or gate to hold a
    request in flight, and a counter of concurrent calls."""

    format = "test-toy"

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        super().__init__(GENRES, MfccSegmentSpec(segment_seconds=3.0, hop_seconds=3.0), {"accuracy": 0.5},
                         {"name": "toy"})
        self.delay_s = delay_s
        self.gate = gate
        self.active = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()
        self.w = np.random.default_rng(1).standard_normal((26, len(GENRES))).astype(np.float32)

    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        try:
            if self.gate is not None:
                self.gate.wait(10)
            if self.delay_s:
                time.sleep(self.delay_s)
            z = (values - values.mean(axis=1, keepdims=True)) / (values.std(axis=1, keepdims=True) + 1e-6)
            z = z @ self.w / 3.0  # peaked, yet segments disagree now and then
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        finally:
            with self._lock:
                self.active -= 1


def wav_bytes(seconds: float = 5.0, freq: float = 330.0, silent: bool = False) -> bytes:
    y = np.zeros(int(seconds * SR), np.float32) if silent else tone(seconds, SR, freq)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()




def make_client(model: GenreModel | None = None, **limits) -> tuple[TestClient, Classifier]:
    clf = Classifier.load(model or ToyModel())
    # base_url: the app answers IP addresses and localhost, not TestClient's default "testserver"
    return TestClient(create_app(clf, ServeLimits(**limits)), base_url="http://127.0.0.1"), clf


def post_file(client: TestClient, data: bytes, name: str = "song.wav"):
    return client.post("/api/predict", files={"file": (name, data, "audio/wav")})


def wait_until(cond, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# ----------------------------------------------------------------------------------- basic routes


def test_health_model_config_docs_page():
    client, clf = make_client(max_upload_bytes=1 << 20, allow_urls=False)
    with client:
        h = client.get("/healthz").json()
        assert h["status"] == "ok" and h["in_flight"] == 0
        card = client.get("/api/model").json()
        assert card["labels"] == GENRES and card["feature_spec"]["kind"] == "mfcc_segments"
        assert card["metrics"] == {"accuracy": 0.5}
        cfg = client.get("/api/config").json()
        assert cfg["max_upload_bytes"] == 1 << 20 and cfg["allow_urls"] is False
        assert "allowed_networks" not in cfg
        spec = client.get("/openapi.json").json()
        body = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
        assert {"multipart/form-data", "application/json"} <= set(body)
        assert client.get("/docs").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert 'id="timeline"' in page.text and "static/app.js" in page.text
        assert "https://" not in page.text.replace("https://example.com", "")  # nothing from a CDN
        js = client.get("/static/app.js")
        assert js.status_code == 200 and "seg-mark" in js.text
        assert client.get("/static/style.css").status_code == 200


def test_palette_route_matches_the_png_palette():
    """The page's colours come from /api/palette, computed by the module the PNGs use."""
    from genrekit.palette import palette_for

    client, clf = make_client()
    with client:
        got = client.get("/api/palette").json()
    assert got["colours"] == palette_for(clf.labels) and "other" in got["colours"]
    assert got["ink"].startswith("#")


def test_docs_served_from_the_installed_package_or_linking_the_schema(monkeypatch: pytest.MonkeyPatch):
    """/docs never points at a CDN: Swagger UI's files come from fastapi-offline when installed,
    else /docs is a plain page that links openapi.json."""
    import re

    from genrekit.serve import app as app_module

    client, _ = make_client()
    with client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert not re.search(r"(src|href)=['\"]?https?://", page.text), page.text
        if app_module.swagger_static_dir() is not None:
            for src in re.findall(r"(?:src|href)=\"(/static-docs/[^\"]+)\"", page.text):
                assert client.get(src).status_code == 200, src
            assert "/static-docs/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    monkeypatch.setattr(app_module, "swagger_static_dir", lambda: None)
    client, _ = make_client()
    with client:
        page = client.get("/docs")
        assert page.status_code == 200 and "href='/openapi.json'" in page.text and "fastapi-offline" in page.text


# ----------------------------------------------------------------------------------------- upload


def test_upload_returns_predict_jsonl_record(tmp_path: Path, tmpdirs: Path):
    client, clf = make_client()
    data = wav_bytes(7.0)
    with client:
        r = post_file(client, data, "my song.wav")
    assert r.status_code == 200, r.text
    got = r.json()
    src = tmp_path / "my song.wav"
    src.write_bytes(data)
    want = clf.predict(src, name="my song.wav").to_dict()
    assert got == json.loads(json.dumps(want))  # exactly one line of `genrekit predict --format jsonl`
    assert got["input"] == "my song.wav" and got["genre"] in GENRES
    assert len(got["segments"]) == 2 and abs(sum(got["probabilities"].values()) - 1) < 1e-3
    assert list(tmpdirs.iterdir()) == []  # upload folder removed


def test_upload_gtzan_clip(gtzan_clips: Path, tmpdirs: Path):
    clip = clips_in(gtzan_clips, "jazz")[0]
    client, _ = make_client()
    with client:
        r = client.post("/api/predict", files={"file": (clip.name, clip.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["input"] == clip.name and 29 < d["duration_s"] < 31 and len(d["segments"]) == 10
    assert d["segments"][-1]["end_s"] <= d["duration_s"] + 1e-6


def test_upload_name_is_sanitised(tmpdirs: Path):
    client, _ = make_client()
    with client:
        r = post_file(client, wav_bytes(2.0), "../../etc/passwd.wav")
    assert r.status_code == 200, r.text
    assert r.json()["input"] == "passwd.wav"
    assert list(tmpdirs.iterdir()) == []


# -------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    "data, name, words",
    [
        (b"this is not audio at all" * 50, "notes.wav", "not a readable audio file"),
        (b"", "empty.wav", "empty"),
        (b"<html><body>hello</body></html>", "page.mp3", ""),
        (wav_bytes(3.0, silent=True), "silence.wav", "silent"),
        (wav_bytes(0.3), "short.wav", "too short"),
    ],
)
def test_bad_files_are_400(data: bytes, name: str, words: str, tmpdirs: Path):
    client, _ = make_client()
    with client:
        r = post_file(client, data, name)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith(name) and words in detail and "\n" not in detail
    assert "genrekit-serve-" not in detail  # the temp path never leaks
    assert list(tmpdirs.iterdir()) == []


def test_bad_requests(tmpdirs: Path):
    client, _ = make_client(allow_urls=True)
    with client:
        r = client.post("/api/predict", data={"other": "x"}, files={"note": (None, "text")})
        assert r.status_code == 422 and "'file'" in r.json()["detail"]
        r = client.post("/api/predict", content=b"raw", headers={"content-type": "audio/wav"})
        assert r.status_code == 415
        r = client.post("/api/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and "JSON" in r.json()["detail"]
        r = client.post("/api/predict", json={"link": "http://x"})
        assert r.status_code == 422
        r = client.post("/api/predict", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"})
        assert r.status_code in (400, 422)
    assert list(tmpdirs.iterdir()) == []


# ----------------------------------------------------------------------------------------- limits


def test_upload_too_large_413_with_and_without_content_length(tmpdirs: Path):
    limit = 100_000
    client, _ = make_client(max_upload_bytes=limit)
    data = wav_bytes(5.0)  # ~220 kB
    with client:
        r = post_file(client, data)
        assert r.status_code == 413 and r.json()["detail"] == "upload too large: the limit is 97.7 kB"

        # chunked transfer: no Content-Length, the body is counted as it arrives
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
                f"Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()

        def chunks():
            for i in range(0, len(body), 16384):
                yield body[i : i + 16384]

        r = client.post("/api/predict", content=chunks(),
                        headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 413, r.text
        assert "limit" in r.json()["detail"]
        assert post_file(client, wav_bytes(1.5)).status_code == 200  # under the limit still fine
    assert list(tmpdirs.iterdir()) == []


def test_audio_too_long_422(tmpdirs: Path):
    client, clf = make_client(max_duration_s=4.0)
    with client:
        r = post_file(client, wav_bytes(6.0), "long.wav")
        assert r.status_code == 422
        assert r.json()["detail"].startswith("long.wav: audio is 6 s long; the limit is 4 s")
        assert post_file(client, wav_bytes(3.5)).status_code == 200
    assert clf.model.calls == 1  # the long one never reached the model


def test_busy_gets_429_when_queue_is_full(tmpdirs: Path):
    gate = threading.Event()
    model = ToyModel(gate=gate)
    client, _ = make_client(model, max_in_flight=1, max_queue=0, queue_timeout_s=5, max_upload_bytes=200_000)
    data = wav_bytes(2.0)
    with client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(post_file, client, data)
        wait_until(lambda: model.active == 1)
        t0 = time.monotonic()
        r = post_file(client, data)
        assert r.status_code == 429 and time.monotonic() - t0 < 2  # no queue: refused at once
        assert "busy" in r.json()["detail"] and r.headers["retry-after"]
        assert client.get("/healthz").json()["in_flight"] == 1  # the loop still answers
        assert post_file(client, wav_bytes(6.0)).status_code == 413  # size is judged before queueing
        gate.set()
        assert first.result(10).status_code == 200


def test_a_burst_gets_in_flight_plus_queue_through():
    """Six requests at the same instant, one slot, a queue of two: three are served (one at once,
    two after waiting), three get 429. A request that takes a free slot is never counted as waiting."""
    import asyncio

    from genrekit.serve.app import Problem, _Slots

    async def burst() -> list[int]:
        slots = _Slots(1, 2)

        async def one() -> int:
            try:
                release = await slots.acquire(5.0)
            except Problem as p:
                return p.status
            await asyncio.sleep(0.02)
            release()
            return 200

        return await asyncio.gather(*[one() for _ in range(6)])

    assert sorted(asyncio.run(burst())) == [200, 200, 200, 429, 429, 429]


def test_queue_waits_then_429_after_queue_timeout(tmpdirs: Path):
    gate = threading.Event()
    model = ToyModel(gate=gate)
    client, _ = make_client(model, max_in_flight=1, max_queue=4, queue_timeout_s=0.3)
    data = wav_bytes(2.0)
    with client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(post_file, client, data)
        wait_until(lambda: model.active == 1)
        t0 = time.monotonic()
        r = post_file(client, data)
        waited = time.monotonic() - t0
        assert r.status_code == 429 and 0.25 < waited < 3, (r.status_code, waited)
        assert "0.3 s" in r.json()["detail"]
        # a waiter that gets the slot in time succeeds
        second = pool.submit(post_file, client, data)
        time.sleep(0.05)
        gate.set()
        assert first.result(10).status_code == 200
        assert second.result(10).status_code == 200


def test_request_timeout_504_keeps_slot_until_worker_ends(tmpdirs: Path):
    model = ToyModel(delay_s=0.8)
    client, _ = make_client(model, request_timeout_s=0.3, max_in_flight=1, max_queue=0)
    with client:
        t0 = time.monotonic()
        r = post_file(client, wav_bytes(2.0))
        assert r.status_code == 504 and time.monotonic() - t0 < 0.75
        assert "timed out after 0.3 s" in r.json()["detail"]
        # the abandoned prediction still runs: its slot and temp folder are still held
        assert client.get("/healthz").json()["in_flight"] == 1
        assert post_file(client, wav_bytes(2.0)).status_code == 429
        wait_until(lambda: client.get("/healthz").json()["in_flight"] == 0)
        wait_until(lambda: list(tmpdirs.iterdir()) == [])


def test_concurrent_requests_bounded_in_flight(tmpdirs: Path):
    """Real server (uvicorn on loopback), 8 clients at once, 2 slots: all succeed, never more than
    2 predictions at a time, health stays responsive while they run."""
    import httpx

    model = ToyModel(delay_s=0.15)
    clf = Classifier.load(model)
    app = create_app(clf, ServeLimits(max_in_flight=2, max_queue=16, queue_timeout_s=30))
    payloads = [wav_bytes(2.0, freq=200.0 + 50 * i) for i in range(8)]
    with running_server(app) as base:
        def one(i: int):
            with httpx.Client(base_url=base, timeout=30) as c:
                return c.post("/api/predict", files={"file": (f"s{i}.wav", payloads[i], "audio/wav")})

        with ThreadPoolExecutor(8) as pool:
            futs = [pool.submit(one, i) for i in range(8)]
            wait_until(lambda: model.active >= 1)
            t0 = time.monotonic()
            h = httpx.get(base + "/healthz", timeout=5)
            assert h.status_code == 200 and time.monotonic() - t0 < 0.5
            results = [f.result(30) for f in futs]
    assert [r.status_code for r in results] == [200] * 8
    assert sorted(r.json()["input"] for r in results) == sorted(f"s{i}.wav" for i in range(8))
    assert model.peak <= 2
    assert list(tmpdirs.iterdir()) == []


# -------------------------------------------------------------------------------------------- URLs


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/redirect-private"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        if self.path.startswith("/redirect-ok"):
            self.send_response(302)
            self.send_header("Location", "/clip.wav")
            self.end_headers()
            return
        body = self.files.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        ctype = "text/html" if self.path.endswith(".html") else "audio/wav"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def http_server():
    _Handler.files = {
        "/clip.wav": wav_bytes(4.0),
        "/long.wav": wav_bytes(8.0),
        "/page.html": b"<!doctype html><html><body>not audio</body></html>",
    }
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def post_url(client: TestClient, url: str):
    return client.post("/api/predict", json={"url": url})


def test_urls_off_by_default(http_server: str, tmpdirs: Path):
    client, clf = make_client()
    with client:
        r = post_url(client, http_server + "/clip.wav")
    assert r.status_code == 403 and "--allow-urls" in r.json()["detail"]
    assert clf.model.calls == 0


def test_url_to_loopback_refused_unless_allowed(http_server: str, tmpdirs: Path):
    client, clf = make_client(allow_urls=True)
    with client:
        r = post_url(client, http_server + "/clip.wav")
        assert r.status_code == 403 and "loopback" in r.json()["detail"]
        r = post_url(client, "http://localhost:9/x.wav")
        assert r.status_code == 403
        r = post_url(client, "ftp://example.com/x.wav")
        assert r.status_code == 403 and "scheme" in r.json()["detail"]
        r = post_url(client, "file:///etc/passwd")
        assert r.status_code == 403
    assert clf.model.calls == 0


def test_url_predict_against_local_server(http_server: str, tmp_path: Path, tmpdirs: Path):
    client, clf = make_client(allow_urls=True, allowed_networks=("127.0.0.1",), max_duration_s=6.0)
    url = http_server + "/clip.wav"
    with client:
        r = post_url(client, url)
        assert r.status_code == 200, r.text
        got = r.json()
        src = tmp_path / "clip.wav"
        src.write_bytes(_Handler.files["/clip.wav"])
        assert got == clf.predict(src, name=url).to_dict()
        assert got["input"] == url

        r = post_url(client, http_server + "/redirect-ok")
        assert r.status_code == 200 and r.json()["input"].endswith("/redirect-ok")

        r = post_url(client, http_server + "/redirect-private")
        assert r.status_code == 403 and "169.254.169.254" in r.json()["detail"]

        r = post_url(client, http_server + "/long.wav")
        assert r.status_code == 422 and "too long" in r.json()["detail"]

        r = post_url(client, http_server + "/missing.wav")
        assert r.status_code == 422 and "404" in r.json()["detail"]

        r = post_url(client, http_server + "/page.html")
        assert r.status_code == 422 and "no audio" in r.json()["detail"]
    assert list(tmpdirs.iterdir()) == []


def test_url_too_large_413(http_server: str, tmpdirs: Path):
    client, _ = make_client(allow_urls=True, allowed_networks=("127.0.0.0/8",), max_upload_bytes=50_000)
    with client:
        r = post_url(client, http_server + "/clip.wav")
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    assert list(tmpdirs.iterdir()) == []


def test_address_guard():
    nets = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.1.0.0/16")]
    for bad in ["127.0.0.2", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "224.0.0.1",
                "0.0.0.0", "::1", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "100.64.0.1", "240.0.0.1"]:
        with pytest.raises(AddressRefused):
            check_address(ipaddress.ip_address(bad), nets)
    for ok in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "127.0.0.1", "10.1.2.3"]:
        check_address(ipaddress.ip_address(ok), nets)
    with pytest.raises(AddressRefused, match="loopback"):
        check_host("localhost", 80)
    assert check_host("127.0.0.1", 80, nets)
    with pytest.raises(BadUrl, match="scheme"):
        check_url("gopher://example.com/")
    with pytest.raises(AddressRefused):
        check_url("http://[::1]:8000/")


def test_limits_validation():
    with pytest.raises(ValueError):
        ServeLimits(max_in_flight=0)
    with pytest.raises(ValueError):
        ServeLimits(allowed_networks=("not-a-network",))
    assert ServeLimits(allowed_networks=("localhost",)).networks() == [ipaddress.ip_network("127.0.0.0/8")]


# --------------------------------------------------------------------------------------------- CLI


def test_cli_flags_build_limits_and_stay_light():
    from genrekit.cli.main import build_parser
    from genrekit.cli.serve import limits_from_args
    from genrekit.errors import GenrekitError

    args = build_parser().parse_args(
        ["serve", "--port", "9", "--max-upload-mb", "2", "--max-duration", "60", "--max-in-flight", "3",
         "--max-queue", "5", "--queue-timeout", "1.5", "--request-timeout", "9", "--upload-timeout", "7",
         "--allow-urls", "--allow-host", "127.0.0.1", "--allow-host", "10.0.0.0/8",
         "--allow-origin", "https://example.org", "--server-name", "genres.lan"])
    lim = limits_from_args(args)
    import socket

    names = ("genres.lan",) + ((socket.gethostname(),) if "." in socket.gethostname() else ())
    assert lim == ServeLimits(max_upload_bytes=2 * 1024 * 1024, max_duration_s=60, max_in_flight=3, max_queue=5,
                              queue_timeout_s=1.5, request_timeout_s=9, upload_timeout_s=7, allow_urls=True,
                              allowed_networks=("127.0.0.1", "10.0.0.0/8"), server_names=names,
                              allowed_origins=("https://example.org",))
    assert args.port == 9 and args.host == "127.0.0.1" and args.model == "default"
    bad = build_parser().parse_args(["serve", "--allow-host", "nowhere"])
    with pytest.raises(GenrekitError, match="nowhere"):
        limits_from_args(bad)
    bad = build_parser().parse_args(["serve", "--allow-origin", "example.org/page"])
    with pytest.raises(GenrekitError, match="origin"):
        limits_from_args(bad)
    for flag, value in (("--port", "99999"), ("--threads", "-1"), ("--max-upload-mb", "inf"),
                        ("--max-duration", "nan"), ("--max-in-flight", "0"), ("--max-queue", "-1")):
        with pytest.raises(SystemExit):  # argparse: one usage line, exit 2, before anything starts
            build_parser().parse_args(["serve", flag, value])
    code = ("import sys, genrekit.cli.main as m; m.build_parser(); "
            "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_cli_serve_starts_and_answers(tmp_path: Path):
    """``genrekit serve`` end to end in a subprocess: the default model behind the real CLI."""
    import httpx

    from genrekit.serve.runner import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "genrekit.cli.main", "serve", "--port", str(port), "--max-upload-mb", "3",
           "--max-in-flight", "1", "--threads", "1", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                pytest.skip(f"genrekit serve did not start (default model unavailable?): {err.strip()[-300:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() - t0 < 90, "server did not start in 90 s"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        card = httpx.get(base + "/api/model", timeout=10).json()
        assert card["labels"] and "feature_spec" in card
        assert httpx.get(base + "/api/config", timeout=10).json()["max_upload_bytes"] == 3 * 1024 * 1024
        r = httpx.post(base + "/api/predict", files={"file": ("big.wav", b"\0" * (4 * 1024 * 1024), "audio/wav")},
                       timeout=30)
        assert r.status_code == 413
        r = httpx.post(base + "/api/predict", json={"url": "https://example.com/a.mp3"}, timeout=30)
        assert r.status_code == 403
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------- issue 21: one user's audio never in another's answer


def test_truncated_upload_same_answer_whatever_came_before(tmp_path: Path, tmpdirs: Path):
    """``head -c 1000 good.mp3`` uploaded between other users' uploads: always the same 400, never a
    genre made of leftover memory from an earlier request, never a 500."""
    from .hostile_media import mp3_file

    good = mp3_file(tmp_path / "good.mp3", 30.0).read_bytes()
    cut = good[:1000]
    client, _ = make_client()
    answers = []
    with client:
        for before in (None, good, wav_bytes(6.0), good, None):
            if before is not None:
                assert post_file(client, before, "other-user.mp3").status_code == 200
            r = post_file(client, cut, "t.mp3")
            answers.append((r.status_code, r.json()))
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0] == 400 and "too short" in answers[0][1]["detail"]
    assert list(tmpdirs.iterdir()) == []


def test_chained_ogg_upload_is_answered_not_refused_as_absurdly_long(tmp_path: Path, tmpdirs: Path):
    """libsndfile states a chained Ogg's length as unknown (SF_COUNT_MAX); serve refused it with
    "418293516410647 s long". Its real length (11 s) is under the limit: it gets an answer."""
    from .hostile_media import chained_ogg

    data = chained_ogg(tmp_path / "c.ogg", 1.0, 10.0).read_bytes()
    client, _ = make_client(max_duration_s=60.0)
    with client:
        r = post_file(client, data, "c.ogg")
    assert r.status_code == 200, r.text
    assert 10.5 < r.json()["duration_s"] < 11.5


class _NanModel(ToyModel):
    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        p = super().segment_probs(values)
        p[:, 3] = np.nan
        return p


def test_nan_answer_is_a_400_not_a_500(tmpdirs: Path):
    client, _ = make_client(_NanModel())
    with client:
        r = post_file(client, wav_bytes(4.0), "song.wav")
    assert r.status_code == 400 and "not a number" in r.json()["detail"], r.text
    assert r.json()["detail"].startswith("song.wav: ")


def test_serve_on_a_busy_port_is_one_line_before_the_model_loads(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The port is checked first: a busy port is one clear line and exit 1 at once, not uvicorn's
    raw [Errno 98] after the model has loaded."""
    import socket

    from genrekit.cli.main import main

    def no_load(*a, **k):
        raise AssertionError("the model was loaded before the port was checked")

    monkeypatch.setattr(Classifier, "load", no_load)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        assert main(["serve", "--host", "127.0.0.1", "--port", str(port)]) == 1
        assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"genrekit: error: cannot listen on 127.0.0.1:{port}: the port is in use")
    assert "--port" in err[0] and "Errno" not in err[0]


def test_bind_socket_gives_the_free_port_it_got() -> None:
    from genrekit.cli.serve import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
    finally:
        sock.close()
