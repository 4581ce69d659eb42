"""Run beets' command line with genrekit's prediction answered by the toy model (tests only):
``python tests/beets_runner.py import -A DIR``. BEETSDIR points beets at the test's config."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genrekit.prediction import Classifier  # noqa: E402
from tests.predict_toy import ToyModel  # noqa: E402

Classifier.load = classmethod(lambda cls, model=None, **kw: cls(ToyModel(), name="toy"))

from beets.ui import main  # noqa: E402

main(sys.argv[1:])
