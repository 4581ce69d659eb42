"""FastAPI app: ``POST /api/predict`` (upload or ``{"url": ...}``), ``GET /api/model``,
``GET /api/config``, ``GET /api/palette``, ``GET /healthz``, the page at ``/`` and OpenAPI docs at
``/docs``.

Why it is built this way:

- Inference is CPU-bound and runs in a worker thread, so the event loop keeps answering health
  checks, the page and queued clients while a song is analysed.
- The request body is read *before* a slot (``max_in_flight``) is taken, within ``upload_timeout_s``
  (408 after), so a client that sends one byte a second holds a connection, never a slot. At most
  ``max_receiving`` bodies arrive at once (the rest get 429); up to ``max_queue`` requests with a
  body wait ``queue_timeout_s`` for a slot, so at most ``max_receiving + max_queue + max_in_flight``
  uploads are on disk.
- A timed-out request answers 504 at once and cancels its work: a URL download stops within
  ``netguard.SLICE_S`` and frees the slot and the temporary folder. A prediction already running
  (CPU, bounded by ``max_duration_s``) cannot be interrupted; its slot stays taken until it ends, so
  the in-flight bound holds even then.
- Uploads are streamed into a private temporary folder that is removed when the request ends (or
  when its abandoned worker finishes); the body is counted while it arrives, so neither a missing
  nor a false Content-Length gets past ``max_upload_bytes``.
- URL downloads go through :mod:`genrekit.netguard`: every connection, each redirect hop and each
  URL yt-dlp derives from a page, reaches only addresses checked at connect time.
- :class:`~genrekit.serve.webguard.WebGuard` checks Host and Origin and adds the security headers.
- ``/docs`` is Swagger UI served from the installed ``fastapi-offline`` package's copy of its
  script and style, not FastAPI's default CDN links: the docs must work where the server has no
  internet (and not leak its users' visits to a CDN). Without that package ``/docs`` is a short
  page linking ``openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from genrekit.errors import AudioError, AudioTooLong, GenrekitError
from genrekit.netguard import AddressRefused, BadUrl, check_address, parse_url
from genrekit.palette import INK, palette_for
from genrekit.serve.limits import ServeLimits
from genrekit.serve.webguard import WebGuard

STATIC = Path(__file__).with_name("static")
#: Non-file form fields and the JSON body are tiny; anything bigger is not a legitimate request.
SMALL_BODY = 64 * 1024
#: Multipart framing (boundaries, part headers) on top of the file itself.
MULTIPART_OVERHEAD = 16 * 1024


class Problem(Exception):
    """An answer other than 200: status code, one-line detail, optional headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def _load_classifier(ref: Any) -> Any:
    """A Classifier (or anything with ``predict``/``card``) as is, else ``Classifier.load(ref)``."""
    if hasattr(ref, "predict") and hasattr(ref, "card"):
        return ref
    from genrekit.prediction import Classifier

    return Classifier.load(ref)


def _safe_name(filename: str | None) -> tuple[str, str]:
    """(display name, file suffix) of a client-supplied file name: no folders, no odd characters."""
    base = os.path.basename((filename or "").replace("\\", "/")).strip() or "upload"
    base = re.sub(r"[\x00-\x1f\x7f]", "", base)[:200] or "upload"
    suffix = Path(base).suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
        suffix = ""
    return base, suffix


class _Slots:
    """Bounded in-flight work with a bounded wait; released from any thread.

    asyncio's Semaphore cannot be released from a worker thread, and the release of an abandoned
    (timed-out) request must happen when its thread ends, so releases go through the loop.
    """

    def __init__(self, size: int, max_queue: int) -> None:
        self.size = size
        self.max_queue = max_queue
        self.busy = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:  # a new loop (tests start several)
            self._sem = asyncio.Semaphore(self.size)
            self._loop = loop
            self.busy = 0
            self.waiting = 0
        return self._sem

    async def acquire(self, timeout_s: float) -> Callable[[], None]:
        """Wait for a slot; returns a thread-safe, idempotent release function. Raises 429."""
        sem = self._bind()
        loop = self._loop
        assert loop is not None
        if not sem.locked():
            # a free slot is taken at once (this await does not yield), so a request that is about to
            # run is never counted as waiting: a burst gets max_in_flight + max_queue through, as promised
            await sem.acquire()
        else:
            if self.waiting >= self.max_queue:
                raise Problem(429, f"server busy: {self.busy} requests running and {self.waiting} waiting; "
                                   "try again shortly", {"Retry-After": "5"})
            self.waiting += 1
            try:
                await asyncio.wait_for(sem.acquire(), timeout=timeout_s if timeout_s > 0 else 0.001)
            except (asyncio.TimeoutError, TimeoutError):
                raise Problem(429, f"server busy: no free slot within {timeout_s:g} s; try again shortly",
                              {"Retry-After": "5"}) from None
            finally:
                self.waiting -= 1
        self.busy += 1
        done = threading.Event()

        def _release_on_loop() -> None:
            self.busy -= 1
            sem.release()

        def release() -> None:
            if done.is_set():
                return
            done.set()
            try:
                if _in_loop(loop):
                    _release_on_loop()
                else:
                    loop.call_soon_threadsafe(_release_on_loop)
            except RuntimeError:  # loop closed: nothing left to release
                pass

        return release


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _Job:
    """What one request owns: a temp folder, later a slot, and a cancel event for its worker; the
    folder and the slot are freed once, by whoever finishes last (handler or worker thread)."""

    def __init__(self, on_done: Callable[[], None]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="genrekit-serve-"))
        self.cancel = threading.Event()
        self._on_done = on_done
        self._release: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._owners = 1  # the request handler; +1 while a worker thread runs

    def take_slot(self, release: Callable[[], None]) -> None:
        self._release = release

    def hand_to_worker(self) -> None:
        with self._lock:
            self._owners += 1

    def done(self) -> None:
        with self._lock:
            self._owners -= 1
            last = self._owners == 0
        if last:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self._release is not None:
                self._release()
            self._on_done()


class _Jobs:
    """Live requests (for shutdown) and how many are still receiving their body, across threads."""

    def __init__(self, max_receiving: int) -> None:
        self.max_receiving = max_receiving
        self.receiving = 0
        self.live: set[_Job] = set()
        self._lock = threading.Lock()

    def new(self) -> _Job:
        job = _Job(lambda: self._forget(job))
        with self._lock:
            self.live.add(job)
        return job

    def _forget(self, job: _Job) -> None:
        with self._lock:
            self.live.discard(job)

    @contextlib.contextmanager
    def receiving_body(self) -> Iterator[None]:
        """A place among the bodies being received (429 when all are taken)."""
        with self._lock:
            if self.receiving >= self.max_receiving:
                raise Problem(429, f"server busy: {self.receiving} uploads are being received; try again shortly",
                              {"Retry-After": "5"})
            self.receiving += 1
        try:
            yield
        finally:
            with self._lock:
                self.receiving -= 1

    def cancel_all(self) -> None:
        with self._lock:
            jobs = list(self.live)
        for job in jobs:
            job.cancel.set()


async def _limited(stream: AsyncIterator[bytes], limit: int, what: str) -> AsyncIterator[bytes]:
    n = 0
    async for chunk in stream:
        n += len(chunk)
        if n > limit:
            raise Problem(413, what)
        yield chunk


def _url_error_status(exc: Exception) -> int:
    from genrekit.urls import UrlMalformed, UrlRefused, UrlTimeout

    if isinstance(exc, UrlRefused):
        return 403
    if isinstance(exc, UrlTimeout):
        return 504
    if isinstance(exc, UrlMalformed):
        return 400
    if str(getattr(exc, "reason", "")).startswith("too large"):
        return 413
    return 422


def create_app(classifier_or_ref: Any = None, limits: ServeLimits | None = None) -> FastAPI:
    """Build the app around a loaded Classifier (tests inject one) or a model reference
    (``None``/``"default"``/path, loaded now so the first request does not pay for it)."""
    limits = limits or ServeLimits()
    classifier = _load_classifier(classifier_or_ref)
    slots = _Slots(limits.max_in_flight, limits.max_queue)
    jobs = _Jobs(limits.max_receiving)
    networks = limits.networks()
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # stopping (SIGTERM/SIGINT to uvicorn): downloads in flight stop and remove their files
        jobs.cancel_all()
        t0 = time.monotonic()
        while jobs.live and time.monotonic() - t0 < 3.0:
            await asyncio.sleep(0.05)

    app = FastAPI(
        title="genrekit",
        summary="Tell what genre a song is, and how the genre moves through it.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served below from local files instead of a CDN
        redoc_url=None,
    )
    app.state.classifier = classifier
    app.state.limits = limits
    app.state.slots = slots
    app.state.jobs = jobs
    app.add_middleware(WebGuard, server_names=limits.server_names, allowed_origins=limits.allowed_origins)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:  # still logged by uvicorn
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"},
                            status_code=500)

    # ---------------------------------------------------------------- work done in a worker thread

    def predict_file(job: _Job, path: Path, name: str) -> dict[str, Any]:
        """The limit is counted on the decoded samples (a header that claims 10 s for an hour of
        audio is stopped at ``max_duration_s``), and the header's own claim refuses early."""
        try:
            return classifier.predict(path, name=name, max_seconds=limits.max_duration_s).to_dict()
        except AudioTooLong as exc:
            raise Problem(422, str(exc)) from None
        finally:
            job.done()

    def predict_url(job: _Job, url: str, deadline: float) -> dict[str, Any]:
        from genrekit.urls import UrlError, download_audio

        try:
            try:
                path = download_audio(
                    url, job.dir, max_bytes=limits.max_upload_bytes, max_duration_s=limits.max_duration_s,
                    timeout_s=max(1.0, min(30.0, deadline - time.monotonic())),
                    total_timeout_s=max(0.1, deadline - time.monotonic()),
                    allowed_networks=networks, cancel=job.cancel,
                )
            except UrlError as exc:
                raise Problem(_url_error_status(exc), f"{url}: {exc.reason}") from None
            # download_audio refused what the site or header says is too long (422); decoding stops at the limit
            try:
                return classifier.predict(path, name=url, max_seconds=limits.max_duration_s).to_dict()
            except AudioTooLong as exc:
                raise Problem(422, str(exc)) from None
        finally:
            job.done()

    async def run_job(job: _Job, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        job.hand_to_worker()
        # abandon_on_cancel: on timeout we answer at once; the thread finishes and frees the job
        return await anyio.to_thread.run_sync(fn, job, *args, abandon_on_cancel=True)

    # ---------------------------------------------------------------------------- request bodies

    async def read_upload(request: Request, job: _Job) -> tuple[Path, str]:
        too_big = f"upload too large: the limit is {_human_bytes(limits.max_upload_bytes)}"
        stream = _limited(request.stream(), limits.max_upload_bytes + MULTIPART_OVERHEAD, too_big)
        parser = MultiPartParser(request.headers, stream, max_files=1, max_fields=8, max_part_size=SMALL_BODY)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise Problem(400, f"bad multipart upload: {exc.message}") from None
        try:
            upload = form.get("file")
            if upload is None:
                upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
            if not isinstance(upload, UploadFile):
                raise Problem(422, "no file in the upload: send it as multipart field 'file'")
            if upload.size is not None and upload.size > limits.max_upload_bytes:
                raise Problem(413, too_big)
            name, suffix = _safe_name(upload.filename)
            path = job.dir / f"upload{suffix}"
            with open(path, "wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
            if path.stat().st_size == 0:
                raise Problem(400, f"{name}: empty file")
            return path, name
        finally:
            await form.close()

    async def read_url(request: Request) -> str:
        body = b""
        async for chunk in _limited(request.stream(), SMALL_BODY, "JSON body too large"):
            body += chunk
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise Problem(422, "body is not valid JSON; send {\"url\": \"https://...\"}") from None
        url = data.get("url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.strip():
            raise Problem(422, "JSON body must be {\"url\": \"https://...\"}")
        url = url.strip()
        if not limits.allow_urls:
            raise Problem(403, "URL fetching is disabled on this server (start it with --allow-urls)")
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https"):
            raise Problem(403, f"{url}: unsupported URL scheme {scheme!r}: only http and https are allowed")
        try:
            host = parse_url(url).hostname or ""
        except BadUrl as exc:
            raise Problem(400, f"{url}: {exc}") from None
        try:  # an address written in the URL is judged now, before a slot; names at connect time
            check_address(ipaddress.ip_address(host.split("%", 1)[0]), networks)
        except ValueError:
            pass
        except AddressRefused as exc:
            raise Problem(403, f"{url}: {exc}") from None
        return url

    # ------------------------------------------------------------------------------------ routes

    predict_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"],
                               "properties": {"file": {"type": "string", "format": "binary"}}}},
                "application/json": {
                    "schema": {"type": "object", "required": ["url"],
                               "properties": {"url": {"type": "string", "format": "uri"}}}},
            },
        },
        "responses": {str(c): {"description": d} for c, d in [
            (400, "not decodable audio / bad upload / malformed URL / unknown Host"),
            (403, "URL fetching disabled, address refused, or a cross-origin request"),
            (408, "request body not received in time"), (413, "upload too large"),
            (422, "audio too long or bad request"), (429, "server busy"), (504, "request timed out")]},
    }

    @app.post("/api/predict", openapi_extra=predict_body, summary="Genre of an uploaded file or a URL")
    async def api_predict(request: Request) -> JSONResponse:
        """The same JSON object as one line of ``genrekit predict --format jsonl --segments``."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/json"):
            raise Problem(415 if ctype else 422,
                          "send multipart/form-data with a 'file' field, or JSON {\"url\": ...}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_upload_bytes + MULTIPART_OVERHEAD:
            # refused before queueing: a too-big upload never waits for, or takes, a slot
            raise Problem(413, f"upload too large: the limit is {_human_bytes(limits.max_upload_bytes)}")
        job = jobs.new()
        t0 = time.monotonic()
        try:
            try:  # the body first: a slow client holds this connection, never a slot
                with jobs.receiving_body(), anyio.fail_after(limits.upload_timeout_s):
                    if ctype == "application/json":
                        url = await read_url(request)
                    else:
                        path, name = await read_upload(request, job)
            except TimeoutError:
                raise Problem(408, f"request body not received within {limits.upload_timeout_s:g} s",
                              {"Connection": "close"}) from None
            except ClientDisconnect:  # the client left mid-body: nobody to answer, nothing to log
                raise Problem(400, "client disconnected before sending the whole body") from None
            job.take_slot(await slots.acquire(limits.queue_timeout_s))
            deadline = time.monotonic() + limits.request_timeout_s
            try:
                with anyio.fail_after(limits.request_timeout_s):
                    if ctype == "application/json":
                        result = await run_job(job, predict_url, url, deadline)
                    else:
                        result = await run_job(job, predict_file, path, name)
            except TimeoutError:
                job.cancel.set()  # a download stops within a slice and frees the slot
                raise Problem(504, f"request timed out after {limits.request_timeout_s:g} s") from None
        except AudioError as exc:
            raise Problem(400, str(exc)) from None
        except GenrekitError as exc:
            raise Problem(422, str(exc)) from None
        finally:
            job.done()
        result = dict(result)
        if request.query_params.get("closed_set", "").lower() in ("1", "true", "yes"):
            from genrekit.prediction import closed_set_record

            result = closed_set_record(result)  # the forced choice among the model's genres
        return JSONResponse(result, headers={"X-Elapsed-S": f"{time.monotonic() - t0:.3f}"})

    @app.get("/api/model", summary="The loaded model's card")
    async def api_model() -> dict[str, Any]:
        """Labels, feature spec, metrics and provenance of the model answering ``/api/predict``."""
        return _jsonable(classifier.card())

    @app.get("/api/config", summary="Limits the page shows next to the upload box")
    async def api_config() -> dict[str, Any]:
        return limits.public()

    @app.get("/api/palette", summary="The colour of each genre, as the page and the PNGs draw it")
    async def api_palette() -> dict[str, Any]:
        """``{"colours": {label: "#rrggbb"}, "ink": "#rrggbb"}`` for the model's labels plus ``other``
        (``genrekit.palette``: the timeline PNGs use the same colours)."""
        labels = [str(x) for x in (classifier.card().get("labels") or [])]
        return {"colours": palette_for(labels), "ink": INK}

    @app.get("/healthz", summary="Liveness and load")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "in_flight": slots.busy, "waiting": slots.waiting,
                "receiving": jobs.receiving, "uptime_s": round(time.time() - started, 1)}

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_docs(app)
    return app


def swagger_static_dir() -> Path | None:
    """The folder holding Swagger UI's ``swagger-ui-bundle.js`` and ``swagger-ui.css`` in the
    installed ``fastapi-offline`` package, or None when that package is not installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "static"
    ok = (folder / "swagger-ui-bundle.js").is_file() and (folder / "swagger-ui.css").is_file()
    return folder if ok else None


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from local files (no CDN), or a plain page linking the schema."""
    folder = swagger_static_dir()
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    if folder is not None:
        app.mount("/static-docs", StaticFiles(directory=folder), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if folder is None:
            url = html.escape(root + openapi_url)
            return HTMLResponse(
                "<!doctype html><meta charset='utf-8'><title>genrekit API</title>"
                f"<p>The API is described in <a href='{url}'>openapi.json</a>. Swagger UI needs the "
                "<code>fastapi-offline</code> package (<code>pip install fastapi-offline</code>).</p>")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} API",
            swagger_js_url=f"{root}/static-docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static-docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/static-docs/favicon.png",
            oauth2_redirect_url=root + redirect_url,
            # no badge fetched from validator.swagger.io: the page must need no network
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(redirect_url, include_in_schema=False)
    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _human_bytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 1024:.3g} kB"


def _version() -> str:
    from genrekit import __version__

    return __version__


def _jsonable(x: Any) -> Any:
    """Card values may hold numpy scalars/arrays or tuples; JSON wants plain types."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    return x
