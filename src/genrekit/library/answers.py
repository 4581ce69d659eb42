"""Where the library commands get a file's genre: a fresh analysis by the one prediction path
(:meth:`genrekit.prediction.Classifier.predict_many`) or a still-valid row of a batch result.

Both become an :class:`Answer`, which keeps the open-set fields (``nearest``, ``in_set``,
``style``) when the model or the batch gave them, and :func:`decide` applies the user's rules
(minimum confidence, whether "other" is written) the same way for ``tag``, ``sort`` and beets.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from genrekit.audio import quiet_native_stderr
from genrekit.errors import GenrekitError
from genrekit.library.results import read_results, row_is_fresh
from genrekit.prediction import OTHER, answer_confidence


@dataclass
class Answer:
    """A file's genre as the library commands use it (``genre`` is a model label, maybe "other")."""

    input: str
    genre: str
    confidence: float
    model: str = ""
    nearest: str | None = None
    in_set: float | None = None
    style: str | None = None
    tags: list[dict] | None = None
    source: str = "model"  # "model" (analysed now) or "results" (a batch result's row)

    @classmethod
    def from_prediction(cls, pred: Any) -> Answer:
        d = pred.to_dict()
        return cls(d["input"], d["genre"], float(d["confidence"]), d.get("model") or "", d.get("nearest"),
                   d.get("in_set"), d.get("style"), d.get("tags"), "model")

    @classmethod
    def from_row(cls, name: str, row: dict[str, Any]) -> Answer:
        """A batch row's answer. For "other" the confidence is the certainty of "other",
        ``1 - in_set``, as a fresh prediction gives it (results written before that rule stored
        the nearest genre's probability there)."""
        genre, in_set = str(row["genre"]), row.get("in_set")
        conf = answer_confidence(genre, float(row["confidence"]), in_set)
        return cls(name, genre, conf, str(row.get("model") or ""), row.get("nearest"), in_set,
                   row.get("style"), None, "results")

    def tag_names(self, k: int = 3) -> list[str]:
        return [str(t.get("tag")) for t in (self.tags or [])[:k]]


def lazy_classifier(model: str | None = None, **options: Any) -> Callable[[], Any]:
    """A function that loads the classifier once, when the first file needs analysing."""
    cache: dict[str, Any] = {}

    def load() -> Any:
        if "clf" not in cache:
            from genrekit.prediction import Classifier

            cache["clf"] = Classifier.load(None if model in (None, "", "default") else model, **options)
        return cache["clf"]

    return load


def iter_answers(paths: Iterable[str], load_classifier: Callable[[], Any],
                 results_dir: str | os.PathLike[str] | None = None) -> Iterator[tuple[str, Answer | GenrekitError]]:
    """(path, Answer or error) per path, in order. Rows of ``results_dir`` are used for files that
    did not change since the batch; the others are analysed, with the classifier loaded only
    when one is needed (a fully reused result never loads the model)."""
    paths = list(paths)
    rows = read_results(results_dir) if results_dir is not None else {}
    plan: list[tuple[str, dict[str, Any] | None]] = []
    matched = 0
    for p in paths:
        row = rows.get(os.path.abspath(p)) or rows.get(os.path.realpath(p))
        matched += row is not None
        plan.append((p, row if row is not None and row_is_fresh(row, p) else None))
    if results_dir is not None and paths and not matched:
        # a result made for other paths (another machine, a moved library): analysing everything
        # again in silence would cost hours and hide the mistake
        raise GenrekitError(f"{results_dir}: none of the {len(paths)} file(s) is in this batch result "
                            f"(it holds {len(rows)} other path(s)); run without --from to analyse them")
    stale = [p for p, row in plan if row is None]
    predicted: Iterator[tuple[str, Any]] = iter(())
    if stale:
        predicted = load_classifier().predict_many(stale)
    for p, row in plan:
        if row is not None:
            yield p, Answer.from_row(p, row)
            continue
        with quiet_native_stderr():  # decoders' own warnings stay off the terminal; our one line per bad file follows
            _src, result = next(predicted)
        yield p, result if isinstance(result, GenrekitError) else Answer.from_prediction(result)


@dataclass(frozen=True)
class Rules:
    """When an answer is good enough to write: ``min_confidence`` and whether "other" counts."""

    min_confidence: float = 0.0
    include_other: bool = False


def decide(answer: Answer, rules: Rules) -> str | None:
    """None when the answer may be written, else the reason it is left alone."""
    if answer.genre == OTHER and answer.in_set is not None and not rules.include_other:  # the open-set answer
        near = f", nearest {answer.nearest}" if answer.nearest else ""
        return f"answer is 'other'{near} (--include-other writes it)"
    if not math.isfinite(answer.confidence):  # NaN compares False with everything: it would pass
        return f"no usable confidence ({answer.confidence}) for {answer.genre}"
    if answer.confidence < rules.min_confidence:
        return f"unsure: {answer.genre} {answer.confidence:.2f} < --min-confidence {rules.min_confidence:g}"
    return None
