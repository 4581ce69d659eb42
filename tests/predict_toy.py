"""A tiny deterministic GenreModel for prediction tests that must not depend on the default model.

It scores each log-mel segment by fixed random projections of its per-band mean, so results depend
on the audio, are reproducible, and cost microseconds. LogMelSpec is used because its dB floor is
absolute, which makes blockwise prediction exactly equal to whole-signal prediction.
"""

from __future__ import annotations

import numpy as np

from genrekit.features import LogMelSpec
from genrekit.models.base import GenreModel

LABELS = ["blues", "classical", "jazz", "metal", "rock"]


class ToyModel(GenreModel):
    format = "toy"

    def __init__(self, spec: LogMelSpec | None = None, labels: list[str] | None = None) -> None:
        spec = spec or LogMelSpec(sample_rate=11025, n_fft=512, hop_length=256, n_mels=32,
                                  segment_seconds=2.0, hop_seconds=1.0)
        labels = labels or LABELS
        super().__init__(labels, spec, info={"name": "toy"})
        rng = np.random.default_rng(42)
        self.w = rng.standard_normal((spec.n_mels, len(labels))).astype(np.float64) / spec.n_mels

    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        x = values.mean(axis=2).astype(np.float64)  # [n, n_mels]
        x = x - x.mean(axis=1, keepdims=True)
        z = x @ self.w
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def tag_probs(self, values: np.ndarray) -> dict[str, float]:
        m = float(np.clip(values.mean() / 100.0 + 0.5, 0, 1))
        return {"loud": m, "quiet": 1 - m}


# ------------------------------------------------------------------------- helpers for the tests


def default_model_available() -> bool:
    """True when the pretrained default (EfficientAT mn04 + the committed head) can be loaded."""
    try:
        from genrekit.backbones.efficientat import find_weights
        from genrekit.models.base import BUILTIN_MODELS

        if not BUILTIN_MODELS["default"].is_file():
            return False
        find_weights(None, False)
    except Exception:
        return False
    return True


class LocalServer:
    """http.server on 127.0.0.1 in a thread, serving files from a folder (never the internet).

    Extra routes: ``/nolength/<file>`` streams a file without Content-Length (like many plain
    media servers), ``/page`` answers an HTML page with status 200.
    """

    def __init__(self, root) -> None:
        import functools
        import http.server
        import threading
        from pathlib import Path

        root = Path(root)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server naming
                if self.path.startswith("/nolength/"):
                    f = root / self.path[len("/nolength/"):]
                    if not f.is_file():
                        self.send_error(404)
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    data = f.read_bytes()
                    try:
                        for i in range(0, len(data), 65536):
                            self.wfile.write(data[i : i + 65536])
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                if self.path == "/page":
                    body = b"<!DOCTYPE html><html><head><title>A song</title></head><body><p>hello</p></body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # clients hanging up early (size caps)
                pass

        self.server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
