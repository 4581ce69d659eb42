"""The web service: a FastAPI app with an upload/URL page and a JSON API over :class:`Classifier`.

Import is cheap (FastAPI is imported inside :func:`create_app` callers only through ``.app``), so
``genrekit --help`` never pays for it.
"""

from __future__ import annotations

from genrekit.serve.limits import ServeLimits

__all__ = ["ServeLimits", "create_app"]


def __getattr__(name: str):  # lazy: FastAPI is imported only when the app is built
    if name == "create_app":
        from genrekit.serve.app import create_app

        return create_app
    raise AttributeError(name)
