"""genrekit: tell what genre a song is, and train and compare your own genre classifiers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Classifier", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from genrekit.prediction import Classifier


def __getattr__(name: str) -> Any:
    # Lazy so that `import genrekit` stays cheap (torch is imported only when a model is used).
    if name == "Classifier":
        from genrekit.prediction import Classifier

        return Classifier
    raise AttributeError(name)
