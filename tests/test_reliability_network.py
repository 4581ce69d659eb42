"""Hostile and faulty network input, each case built here: the URL guard (redirects, pages that point
inside, DNS rebinding, 6to4/NAT64/Teredo addresses, malformed URLs), slow servers and slow clients
(trickling downloads, 1 byte/s uploads), SIGTERM during a download, and the web page's hygiene
(CSP, nosniff, Origin and Host checks, HEAD).

Every server is a thread on loopback: 127.0.0.1 plays the public site (the guard is told to allow
it), 127.0.0.2 plays an internal host that must never see a request. DNS rebinding is simulated
by patching the resolver. Slow servers send at most a few hundred bytes and stop when the client
leaves; every wait is bounded.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from genrekit.netguard import AddressRefused, BadUrl, check_address, embedded_ipv4, parse_url  # noqa: E402
from genrekit.prediction import Classifier  # noqa: E402
from genrekit.serve import ServeLimits, create_app  # noqa: E402
from genrekit.serve.runner import running_server  # noqa: E402
from genrekit.urls import UrlTimeout, download_audio  # noqa: E402

from .test_serve import ToyModel, wav_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PUBLIC = "127.0.0.1"  # the guard allows it: it stands for a public site
INTERNAL = "127.0.0.2"  # never allowed: it stands for a host inside the server's network
AUDIO = wav_bytes(3.0)
TRICKLE_BYTES = 300  # at 10 bytes/s: a trickling server stops on its own after 30 s at most


class Site:
    """A ThreadingHTTPServer on ``host``; counts requests; routes below. ``links`` fills in URLs."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.hits: list[str] = []
        self.stop = threading.Event()
        self.links: dict[str, str] = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                site.hits.append(self.path)
                path = self.path.split("?")[0]
                if path == "/audio.wav":
                    self._send(200, AUDIO, "audio/wav")
                elif path == "/to-internal":  # a redirect straight inside
                    self._redirect(site.links["internal_audio"])
                elif path == "/flip.wav":  # 200 to the first request (a probe), 302 inside afterwards
                    if sum(h.startswith("/flip.wav") for h in site.hits) == 1:
                        self._send(200, AUDIO, "audio/wav")
                    else:
                        self._redirect(site.links["internal_audio"])
                elif path == "/page.html":  # a page whose audio lives inside
                    inner = site.links["internal_audio"]
                    body = (f'<!doctype html><html><head><title>song</title>'
                            f'<meta property="og:audio" content="{inner}">'
                            f'<meta property="og:audio:type" content="audio/wav"></head>'
                            f'<body><audio src="{inner}"></audio></body></html>').encode()
                    self._send(200, body, "text/html")
                elif path == "/trickle.wav":  # promises 1 MB, sends 8 kB, then 10 bytes a second
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    try:
                        self.wfile.write(AUDIO[:8192])
                        for i in range(TRICKLE_BYTES):
                            if site.stop.wait(0.1):
                                break
                            self.wfile.write(AUDIO[8192 + i : 8193 + i])
                            self.wfile.flush()
                    except OSError:  # the client left: what a guarded download does
                        pass
                    self.close_connection = True
                else:
                    self._send(404, b"not here", "text/plain")

            do_HEAD = do_GET

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _redirect(self, to: str) -> None:
                self.send_response(302)
                self.send_header("Location", to)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sites():
    """(public, internal) sites on the same port, so a rebound name lands on the internal one."""
    for _ in range(20):
        public = Site(PUBLIC)
        try:
            internal = Site(INTERNAL, public.port)
        except OSError as exc:
            public.close()
            if exc.errno == 99:  # EADDRNOTAVAIL: no 127.0.0.2 here (not Linux)
                pytest.skip("127.0.0.2 cannot be bound on this machine")
            continue
        break
    else:  # pragma: no cover
        pytest.skip("no port free on both 127.0.0.1 and 127.0.0.2")
    public.links["internal_audio"] = internal.url + "/audio.wav"
    yield public, internal
    public.close()
    internal.close()




def client_for(model: ToyModel | None = None, **limits: object) -> TestClient:
    limits = {"allow_urls": True, "allowed_networks": (PUBLIC + "/32",), **limits}
    app = create_app(Classifier.load(model or ToyModel()), ServeLimits(**limits))
    return TestClient(app, base_url="http://127.0.0.1")


def wait_until(cond, timeout: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------- finding 2: ways past the guard


def test_sanity_the_public_site_is_fetched(sites, tmpdirs):
    public, internal = sites
    with client_for() as c:
        r = c.post("/api/predict", json={"url": public.url + "/audio.wav"})
    assert r.status_code == 200, r.text
    assert internal.hits == []


@pytest.mark.parametrize("path", ["/to-internal", "/flip.wav"])
def test_redirect_inside_is_refused_at_connect(sites, tmpdirs, path):
    """(2a) check-then-use: a probe may see 200 while the download is redirected inside; every hop
    is checked when it connects, so the internal host is never contacted."""
    public, internal = sites
    before = len(internal.hits)
    with client_for() as c:
        r = c.post("/api/predict", json={"url": public.url + path})
    assert r.status_code == 403, r.text
    assert f"address {INTERNAL} is loopback" in r.json()["detail"]
    assert internal.hits[before:] == []
    assert list(tmpdirs.iterdir()) == []


def test_page_pointing_inside_is_refused(sites, tmpdirs):
    """(2b) an HTML page whose og:audio / <audio src> is internal: yt-dlp's generic extractor derives
    that URL, and its connection is refused."""
    public, internal = sites
    before = len(internal.hits)
    with client_for() as c:
        r = c.post("/api/predict", json={"url": public.url + "/page.html"})
    assert r.status_code == 403, r.text
    assert INTERNAL in r.json()["detail"]
    assert internal.hits[before:] == []


def test_dns_rebinding_never_reaches_inside(sites, tmpdirs, monkeypatch):
    """(2c) a name that resolves to the public address first and to the internal one afterwards:
    each connection resolves once and connects to the address it checked."""
    public, internal = sites
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            ip = PUBLIC if not answers else INTERNAL
            answers.append(ip)
            return real(ip, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    before = len(internal.hits)
    with client_for() as c:
        r = c.post("/api/predict", json={"url": f"http://rebind.test:{public.port}/audio.wav"})
    assert INTERNAL in answers  # the name was rebound while the request ran
    assert internal.hits[before:] == []
    assert r.status_code == 403, r.text
    assert f"address {INTERNAL}" in r.json()["detail"]


# ------------------------------------------------------------- finding 10: embedded IPv4 addresses


@pytest.mark.parametrize("addr, inner", [
    ("2002:7f00:1::", "127.0.0.1"),  # 6to4 of loopback
    ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4 of cloud metadata
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64
    ("::ffff:10.0.0.1", "10.0.0.1"),  # IPv4-mapped
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, client 127.0.0.1 (obfuscated)
])
def test_embedded_ipv4_is_judged(addr, inner):
    a = ipaddress.ip_address(addr)
    assert ipaddress.ip_address(inner) in embedded_ipv4(a)
    with pytest.raises(AddressRefused):
        check_address(a, [ipaddress.ip_network("127.0.0.1/32")])


def test_6to4_of_a_public_address_passes():
    check_address(ipaddress.ip_address("2002:808:808::1"))


def test_6to4_url_refused_before_a_slot(tmpdirs):
    with client_for(allowed_networks=()) as c:
        r = c.post("/api/predict", json={"url": "http://[2002:a9fe:a9fe::]/latest/meta-data/"})
    assert r.status_code == 403 and "embeds 169.254.169.254" in r.json()["detail"]


# ------------------------------------------------------------------ finding 7: malformed URLs


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:9\\@127.0.0.2/x.mp3", "backslash"),
    ("http://user:secret@example.com/x.mp3", "passwords"),
    ("http://example.com:99999/x.mp3", "port"),
    ("http://exa mple.com/x.mp3", "space"),
    ("http://[::1/x.mp3", "malformed"),
])
def test_malformed_url_is_400(url, words, tmpdirs):
    with client_for() as c:
        r = c.post("/api/predict", json={"url": url})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert words in detail and "\n" not in detail and "internal error" not in detail


def test_parse_url_allows_credentials_only_when_asked():
    assert parse_url("http://u:p@example.com/a", credentials=True).hostname == "example.com"
    with pytest.raises(BadUrl):
        parse_url("http://u:p@example.com/a")


# ---------------------------------------------------- findings 3 and 5: slow servers, slow clients


def test_download_has_a_total_deadline(sites, tmp_path):
    """(5) a server that trickles bytes well within the per-read timeout is cut at the total deadline."""
    public, _ = sites
    dest = tmp_path / "dl"
    t0 = time.monotonic()
    with pytest.raises(UrlTimeout, match="longer than the 1 s limit"):
        download_audio(public.url + "/trickle.wav", dest, timeout_s=10, total_timeout_s=1.0)
    assert time.monotonic() - t0 < 4
    assert not any(dest.iterdir())


def test_predict_cli_download_timeout(sites, monkeypatch, capsys):
    from genrekit import prediction
    from genrekit.cli.main import main

    from .predict_toy import ToyModel as PredictToy

    monkeypatch.setattr(prediction, "load_model", lambda ref: PredictToy())
    public, _ = sites
    url = public.url + "/trickle.wav"
    t0 = time.monotonic()
    assert main(["predict", url, "--download-timeout", "1"]) == 1
    assert time.monotonic() - t0 < 6
    err = capsys.readouterr().err
    assert err == f"genrekit: error: {url}: download took longer than the 1 s limit\n"


def test_trickling_url_times_out_and_frees_its_slot(sites, tmpdirs):
    """(3) a URL that trickles: 504 at the request timeout, and the slot is free right after (the
    download is cancelled, not left running)."""
    public, _ = sites
    with client_for(request_timeout_s=1.0, max_in_flight=1, max_queue=0) as c:
        t0 = time.monotonic()
        r = c.post("/api/predict", json={"url": public.url + "/trickle.wav"})
        assert r.status_code == 504 and time.monotonic() - t0 < 3, r.text
        assert wait_until(lambda: c.get("/healthz").json()["in_flight"] == 0, 2.0)
        r = c.post("/api/predict", files={"file": ("a.wav", wav_bytes(2.0), "audio/wav")})
        assert r.status_code == 200, r.text
    assert wait_until(lambda: list(tmpdirs.iterdir()) == [], 2.0)


def _slow_upload(base: str, stop: threading.Event, result: dict) -> None:
    """A client that sends a multipart upload at about 5 bytes a second (at most 200 bytes)."""
    host, port = base.removeprefix("http://").split(":")
    boundary = "slowslow"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode()
    total = len(head) + 100_000
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall((f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                   f"Content-Length: {total}\r\n\r\n").encode() + head)
        s.settimeout(0.2)
        for i in range(200):
            try:
                data = s.recv(4096)  # an early answer (408) ends the upload
            except TimeoutError:
                data = None
            except OSError:
                return
            if data is not None:
                result["answer"] = (data + _rest(s)).decode("latin-1")
                return
            if stop.is_set():
                return
            try:
                s.sendall(AUDIO[i : i + 1])
            except OSError:  # the server answered and closed meanwhile: read what it said
                result["answer"] = _rest(s).decode("latin-1")
                return


def _rest(s: socket.socket) -> bytes:
    """What is left of an answer: headers and body may arrive in separate segments."""
    out = b""
    s.settimeout(0.5)
    for _ in range(20):
        try:
            chunk = s.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_slow_upload_holds_no_slot_and_hits_the_upload_deadline(tmpdirs):
    """(3) one slot, no queue: a client uploading at 5 bytes/s must not keep others out, and is cut
    off at the upload deadline with 408."""
    import httpx

    app = create_app(Classifier.load(ToyModel()), ServeLimits(max_in_flight=1, max_queue=0, upload_timeout_s=1.5))
    stop = threading.Event()
    result: dict = {}
    with running_server(app) as base:
        t = threading.Thread(target=_slow_upload, args=(base, stop, result), daemon=True)
        t.start()
        try:
            assert wait_until(lambda: httpx.get(base + "/healthz", timeout=5).json()["receiving"] == 1, 5)
            r = httpx.post(base + "/api/predict", files={"file": ("a.wav", wav_bytes(2.0), "audio/wav")}, timeout=10)
            assert r.status_code == 200, r.text
            t.join(10)
            assert " 408 " in result.get("answer", ""), result
            assert "not received within 1.5 s" in result["answer"]
        finally:
            stop.set()
            t.join(5)
    assert wait_until(lambda: list(tmpdirs.iterdir()) == [], 2.0)


def test_client_leaving_mid_upload_is_no_server_error(tmpdirs):
    import logging

    import httpx

    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                errors.append(record.getMessage())

    app = create_app(Classifier.load(ToyModel()), ServeLimits())
    with running_server(app) as base:
        logging.getLogger("uvicorn.error").addHandler(handler := Collect())  # uvicorn's loggers do not propagate
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
                      f"boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n".encode())
            assert wait_until(lambda: httpx.get(base + "/healthz", timeout=5).json()["receiving"] == 1, 5)
        assert wait_until(lambda: httpx.get(base + "/healthz", timeout=5).json()["receiving"] == 0, 5)
        time.sleep(0.2)
    logging.getLogger("uvicorn.error").removeHandler(handler)
    assert errors == []
    assert wait_until(lambda: list(tmpdirs.iterdir()) == [], 2.0)


# ------------------------------------------------------------------- finding 8: SIGTERM cleanup


def test_sigterm_during_a_download_removes_the_partial_file(sites, tmp_path):
    public, _ = sites
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = ("import sys; from genrekit import prediction; from tests.predict_toy import ToyModel; "
            "prediction.load_model = lambda ref: ToyModel(); from genrekit.cli.main import main; "
            "sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    proc = subprocess.Popen([sys.executable, "-c", code, "predict", public.url + "/trickle.wav"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = wait_until(lambda: any(tmp.glob("genrekit-url-*/download*.part")), 30)
        assert found, "the download never started"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 143, err
    assert "genrekit: terminated" in err and "Traceback" not in err
    assert list(tmp.iterdir()) == []


def test_sigterm_to_the_server_removes_downloads_in_flight(sites, tmp_path):
    """uvicorn (as ``genrekit serve`` runs it) stopping on SIGTERM: the app's shutdown cancels the
    download in flight and its temporary folder is removed."""

    from genrekit.serve.runner import free_port

    public, _ = sites
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    code = ("import sys, uvicorn; from genrekit.prediction import Classifier; "
            "from genrekit.serve import ServeLimits, create_app; from tests.test_serve import ToyModel; "
            "app = create_app(Classifier.load(ToyModel()), ServeLimits(allow_urls=True, "
            "allowed_networks=('127.0.0.1',), request_timeout_s=60)); "
            f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', timeout_graceful_shutdown=5)")
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(base), 60), "server did not start"
        t = threading.Thread(target=lambda: _post_quietly(base, public.url + "/trickle.wav"), daemon=True)
        t.start()
        assert wait_until(lambda: any(tmp.glob("genrekit-serve-*/download*.part")), 30), "no download started"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert list(tmp.iterdir()) == []


def _answers(base: str) -> bool:
    import httpx

    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _post_quietly(base: str, url: str) -> None:
    import httpx

    try:
        httpx.post(base + "/api/predict", json={"url": url}, timeout=30)
    except httpx.HTTPError:
        pass


# ----------------------------------------------------------------------- finding 11: web hygiene


def test_page_headers_and_head(tmpdirs):
    with client_for() as c:
        page = c.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        head = c.head("/")
        assert head.status_code == 200 and head.content == b""
        for path in ("/static/app.js", "/api/config", "/healthz"):
            assert c.get(path).headers["x-content-type-options"] == "nosniff"


def test_cross_origin_post_refused_unless_allowed(tmpdirs):
    files = {"file": ("a.wav", wav_bytes(2.0), "audio/wav")}
    with client_for() as c:
        r = c.post("/api/predict", files=files, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "--allow-origin https://evil.example" in r.json()["detail"]
        r = c.post("/api/predict", files=files, headers={"Origin": "null"})
        assert r.status_code == 403
        r = c.post("/api/predict", files=files, headers={"Origin": "http://127.0.0.1"})  # the page itself
        assert r.status_code == 200, r.text
        assert c.post("/api/predict", files=files).status_code == 200  # no Origin: curl, scripts
        r = c.post("/api/predict", files=files, headers={"Origin": "http://127.0.0.1:9999"})  # another local port
        assert r.status_code == 403
    with client_for(server_names=("genres.example.org",)) as c:  # behind a TLS proxy that passes Host on
        r = c.post("/api/predict", files=files,
                   headers={"Origin": "https://genres.example.org", "Host": "genres.example.org"})
        assert r.status_code == 200, r.text
    with client_for(allowed_origins=("https://good.example",)) as c:
        r = c.post("/api/predict", files=files, headers={"Origin": "https://good.example"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://good.example"
        r = c.options("/api/predict", headers={"Origin": "https://good.example",
                                               "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and "POST" in r.headers["access-control-allow-methods"]
        r = c.post("/api/predict", files=files, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403


def test_host_header_checked_against_dns_rebinding(tmpdirs):
    with client_for(server_names=("genres.lan",)) as c:
        r = c.get("/", headers={"Host": "evil.example:8000"})
        assert r.status_code == 400 and "--server-name" in r.json()["detail"]
        r = c.post("/api/predict", files={"file": ("a.wav", wav_bytes(2.0), "audio/wav")},
                   headers={"Host": "evil.example:8000", "Origin": "http://evil.example:8000"})
        assert r.status_code == 400
        r = c.get("/", headers={"Host": "genres.lan.evil.example"})
        assert r.status_code == 400
        for ok in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "genres.lan", "GENRES.LAN:80", "myhost:8000",
                   "app.localhost"):
            assert c.get("/healthz", headers={"Host": ok}).status_code == 200, ok


# ------------------------------------------------------------- the guarded sockets over TLS too


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory, sites):
    """The public site's handler behind TLS (a throwaway self-signed certificate from openssl)."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=60)
    public, _ = sites
    handler = public.server.RequestHandlerClass
    srv = type(public.server)((PUBLIC, 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _tls_get(port: int, path: str, fetch):
    import http.client
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a throwaway certificate; the point here is the socket class
    conn = http.client.HTTPSConnection(PUBLIC, port, timeout=10, context=fetch.ssl_context(ctx))
    conn._create_connection = fetch.create_connection
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def test_tls_reads_keep_the_deadline(tls_site):
    from genrekit.netguard import Fetch, FetchTimeout

    allowed = [ipaddress.ip_network(PUBLIC + "/32")]
    assert _tls_get(tls_site, "/audio.wav", Fetch(allowed=allowed, total_timeout_s=10)) == AUDIO
    t0 = time.monotonic()
    with pytest.raises(FetchTimeout):
        _tls_get(tls_site, "/trickle.wav", Fetch(allowed=allowed, read_timeout_s=10, total_timeout_s=1.0))
    assert time.monotonic() - t0 < 3
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(OSError, match="cancelled"):
        _tls_get(tls_site, "/trickle.wav", Fetch(allowed=allowed, read_timeout_s=10, cancel=cancel))
    assert time.monotonic() - t0 < 2.5
    with pytest.raises(AddressRefused):
        _tls_get(tls_site, "/audio.wav", Fetch(allowed=[]))
