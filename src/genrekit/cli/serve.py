"""``genrekit serve``: the web page and HTTP API (FastAPI + uvicorn).

FastAPI, uvicorn and the model are imported in :func:`run` only, so ``genrekit --help`` stays fast.
The listening socket is bound before the model loads: a busy port is one line at once, not a
traceback after seconds of loading; uvicorn then serves on that very socket (no second bind, so
nothing can take the port in between).
"""

from __future__ import annotations

import argparse
import os

from genrekit.cli.argtypes import duration, int_at_least, non_negative_int, positive_float, positive_int

MB = 1024 * 1024


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="web page and HTTP API: drop a song or paste a link, see its genre over time",
        description="Serve the genrekit page at / and the API at /api (docs at /docs). "
        "Every limit answers a JSON error the page shows.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    p.add_argument("--port", type=int_at_least(0, 65535), default=8000, help="TCP port (0: any free port)")
    p.add_argument("--model", default="default", help="a built-in ('default', 'musicnn') or a model file/folder from genrekit train")
    g = p.add_argument_group("limits")
    g.add_argument("--max-upload-mb", type=positive_float, default=50.0, help="largest upload or download (413)")
    g.add_argument("--max-duration", type=duration(), default="20m", metavar="DURATION",
                   help="longest audio accepted (422): seconds, or with a unit (90s, 20m, 1h)")
    g.add_argument("--max-in-flight", type=positive_int, default=max(1, min(4, (os.cpu_count() or 2) // 2)),
                   help="requests processed at once")
    g.add_argument("--max-queue", type=non_negative_int, default=32, help="requests that may wait for a slot; more get 429")
    g.add_argument("--queue-timeout", type=duration(allow_zero=True), default="30s", metavar="DURATION",
                   help="how long a request waits for a slot before 429")
    g.add_argument("--request-timeout", type=duration(), default="2m", metavar="DURATION",
                   help="longest a request may take once it has a slot (504); a URL download is cancelled then")
    g.add_argument("--max-receiving", type=positive_int, default=16,
                   help="request bodies received at once, before any slot is taken; more get 429")
    g.add_argument("--upload-timeout", type=duration(), default="1m", metavar="DURATION",
                   help="longest a client may take to send its request body, read before a slot is taken (408)")
    g.add_argument("--threads", type=non_negative_int, default=0,
                   help="inference threads per request (0: cores / max-in-flight, at least 1)")
    u = p.add_argument_group("URLs")
    u.add_argument("--allow-urls", action="store_true",
                   help='accept {"url": ...} requests (off by default: the server would fetch for anyone)')
    u.add_argument("--allow-host", action="append", default=[], metavar="IP_OR_CIDR",
                   help="let URLs reach this loopback/private/link-local network (repeatable), e.g. 127.0.0.1")
    w = p.add_argument_group("browsers")
    w.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages from this origin (https://example.org, or '*') POST here (repeatable); "
                   "other cross-origin POSTs get 403")
    w.add_argument("--server-name", action="append", default=[], metavar="NAME",
                   help="host name clients use to reach this server (repeatable); IP addresses, names "
                   "without a dot (localhost, this machine's name), this machine's name and --host always "
                   "work, other Host headers get 400 (DNS rebinding)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level: info logs each request, warning only problems")
    p.set_defaults(func=run)
    return p


def limits_from_args(args: argparse.Namespace):  # -> ServeLimits (import kept lazy)
    import socket

    from genrekit.errors import GenrekitError
    from genrekit.serve.limits import ServeLimits

    names = list(args.server_name)
    for name in (args.host, socket.gethostname()):  # names this machine is reached by on its own
        if name and "." in name and not name.replace(".", "").isdigit():  # dotless names always pass
            names.append(name)

    try:
        return ServeLimits(
            max_upload_bytes=int(args.max_upload_mb * MB),
            max_duration_s=float(args.max_duration),
            max_in_flight=int(args.max_in_flight),
            max_queue=int(args.max_queue),
            queue_timeout_s=float(args.queue_timeout),
            request_timeout_s=float(args.request_timeout),
            upload_timeout_s=float(args.upload_timeout),
            max_receiving=int(args.max_receiving),
            allow_urls=bool(args.allow_urls),
            allowed_networks=tuple(args.allow_host),
            server_names=tuple(dict.fromkeys(names)),
            allowed_origins=tuple(args.allow_origin),
        )
    except ValueError as exc:
        raise GenrekitError(f"serve: {exc}") from None


def bind_socket(host: str, port: int):  # -> socket.socket
    """A TCP socket bound to ``host:port`` (not yet listening; uvicorn does that), or one
    :class:`GenrekitError` line saying why not (port in use, address not on this machine)."""
    import socket

    from genrekit.errors import GenrekitError

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise GenrekitError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart past TIME_WAIT
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        import errno

        why = ("the port is in use (another server? pick one with --port N, or --port 0 for any free port)"
               if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc)))
        raise GenrekitError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    limits = limits_from_args(args)
    sock = bind_socket(args.host, args.port)  # before the model: a busy port is known in milliseconds
    try:
        return _serve(args, limits, sock)
    finally:
        sock.close()


def _serve(args: argparse.Namespace, limits, sock) -> int:
    if not os.environ.get("GENREKIT_DEBUG"):
        from genrekit.audio import filter_native_stderr

        filter_native_stderr()  # libmpg123's complaints about damaged MP3 uploads stay out of the log
    import uvicorn

    from genrekit.prediction import Classifier
    from genrekit.serve.app import create_app

    threads = args.threads or max(1, (os.cpu_count() or 1) // limits.max_in_flight)
    from genrekit.backbones.runners import set_threads

    set_threads(threads)  # inference threads per request, whichever engine runs the backbone
    classifier = Classifier.load(args.model)
    app = create_app(classifier, limits)
    if args.allow_host and not args.allow_urls:
        print("genrekit serve: --allow-host has no effect without --allow-urls")
    port = sock.getsockname()[1]  # --port 0: the port the system picked
    print(f"genrekit serve: model {classifier.name!r}, http://{args.host}:{port}/ "
          f"(API docs at /docs; {limits.max_in_flight} in flight, {threads} inference threads each)", flush=True)
    config = uvicorn.Config(app, host=args.host, port=port, log_level=args.log_level, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
