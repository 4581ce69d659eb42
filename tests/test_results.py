"""``--from RESULTS_DIR``: a `genrekit batch` Parquet result reused by tag and sort
(``genrekit.library.results`` and ``genrekit.library.answers``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from genrekit.cli.main import main  # noqa: E402
from genrekit.library.answers import Answer, Rules, decide, iter_answers  # noqa: E402
from genrekit.library.results import ResultsError, read_results  # noqa: E402
from genrekit.library.tagging import parse_marker, read_state  # noqa: E402

from .library_files import row, songs, write_result  # noqa: E402
from .predict_toy import ToyModel  # noqa: E402


@pytest.fixture(autouse=True)
def _state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENREKIT_STATE_DIR", str(tmp_path / "state"))


def toy_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Classifier.load gives the toy model and counts its calls."""
    from genrekit.prediction import Classifier

    calls: list[int] = []

    def load(cls, model=None, **kw):
        calls.append(1)
        return cls(ToyModel(), name="toy")

    monkeypatch.setattr(Classifier, "load", classmethod(load))
    return calls


def test_fresh_rows_are_reused_without_loading_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = toy_loads(monkeypatch)
    a, b = songs(tmp_path / "m", 2)
    res = write_result(tmp_path / "res", [row(a, "jazz", 0.9, nearest="jazz", in_set=0.8, style="swing"),
                                          row(b, "rock", 0.7)])
    got = dict(iter_answers([str(a), str(b)], lambda: pytest.fail("model loaded"), res))
    assert got[str(a)].genre == "jazz" and got[str(a)].source == "results"
    assert (got[str(a)].nearest, got[str(a)].in_set, got[str(a)].style) == ("jazz", 0.8, "swing")
    assert calls == []


def test_changed_or_failed_files_are_analysed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toy_loads(monkeypatch)
    a, b, c = songs(tmp_path / "m", 3)
    rows = [row(a, "jazz", 0.9), row(b, "jazz", 0.9), row(c, "", 0.0, error="cannot decode")]
    res = write_result(tmp_path / "res", rows)
    os.utime(b, ns=(0, os.stat(b).st_mtime_ns + 5_000_000_000))  # touched since the batch
    from genrekit.prediction import Classifier

    got = dict(iter_answers([str(a), str(b), str(c)], lambda: Classifier.load(), res))
    assert got[str(a)].source == "results"
    for p in (b, c):
        assert got[str(p)].source == "model" and got[str(p)].genre in ToyModel().labels


def test_newest_row_per_input_wins(tmp_path: Path) -> None:
    (a,) = songs(tmp_path / "m", 1)
    res = write_result(tmp_path / "res", [row(a, "jazz", 0.9)], [row(a, "metal", 0.8)])
    assert read_results(res)[str(a.resolve())]["genre"] == "metal"
    timed = write_result(tmp_path / "res2", [row(a, "jazz", 0.9, analysed_at=2.0)], [row(a, "metal", 0.8, analysed_at=1.0)])
    assert read_results(timed)[str(a.resolve())]["genre"] == "jazz"


def test_not_a_result_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.Table.from_pylist([{"x": 1}]), bad / "p.parquet")
    with pytest.raises(ResultsError, match="not a genrekit batch result .no column input, genre, confidence"):
        read_results(bad)
    with pytest.raises(ResultsError, match="no such results folder"):
        read_results(tmp_path / "missing")


def test_decide_rules() -> None:
    other = Answer("x", "other", 0.9, nearest="jazz", in_set=0.2)
    assert "answer is 'other', nearest jazz" in decide(other, Rules())
    assert decide(other, Rules(include_other=True)) is None
    # a model whose own label is "other" (no in-set score) is an ordinary answer
    assert decide(Answer("x", "other", 0.9), Rules()) is None
    assert "unsure" in decide(Answer("x", "rock", 0.4), Rules(min_confidence=0.5))
    assert decide(Answer("x", "rock", 0.5), Rules(min_confidence=0.5)) is None


def test_tag_from_results_applies_min_confidence_and_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys) -> None:
    toy_loads(monkeypatch)
    a, b, c = songs(tmp_path / "m", 3)
    res = write_result(tmp_path / "res", [row(a, "hiphop", 0.9), row(b, "rock", 0.3),
                                          row(c, "other", 0.8, nearest="disco", in_set=0.1)])
    assert main(["tag", str(tmp_path / "m"), "--from", str(res), "--min-confidence", "0.5"]) == 0
    out = capsys.readouterr().out
    assert read_state(a).genres == ("Hip-Hop",)
    assert read_state(b).genres == () and "unsure: rock 0.30 < --min-confidence 0.5" in out
    assert read_state(c).genres == () and "answer is 'other', nearest disco" in out
    assert main(["tag", str(c), "--from", str(res), "--include-other"]) == 0
    assert read_state(c).genres == ("Other",)
    assert parse_marker(read_state(c).marker)["genre"] == "other"
    assert parse_marker(read_state(c).marker)["confidence"] == "0.900"  # other's own certainty: 1 - in_set


def test_other_rows_confidence_is_its_own_certainty(tmp_path: Path) -> None:
    """A batch row of an "other" answer reads back with confidence 1 - in_set, also from results
    written when the column held the nearest genre's probability."""
    (a,) = songs(tmp_path / "m", 1)
    res = write_result(tmp_path / "res", [row(a, "other", 0.55, nearest="disco", in_set=0.2)])
    got = dict(iter_answers([str(a)], lambda: pytest.fail("model loaded"), res))[str(a)]
    assert got.genre == "other" and got.confidence == pytest.approx(0.8)


def test_from_a_result_naming_none_of_the_files_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys) -> None:
    """A result made for other paths: say so instead of silently analysing everything again."""
    calls = toy_loads(monkeypatch)
    a, b = songs(tmp_path / "m", 2)
    (elsewhere,) = songs(tmp_path / "other-library", 1)
    res = write_result(tmp_path / "res", [row(elsewhere, "jazz", 0.9)])
    assert main(["tag", str(a), str(b), "--from", str(res)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none of the 2 file(s) is in this batch result" in err[0] and "without --from" in err[0]
    assert calls == [] and read_state(a).genres == ()
    assert main(["sort", str(a), "--into", str(tmp_path / "by-genre"), "--from", str(res)]) == 1
    assert "none of the 1 file(s)" in capsys.readouterr().err
    assert not (tmp_path / "by-genre").exists() or not any((tmp_path / "by-genre").rglob("*.wav"))
