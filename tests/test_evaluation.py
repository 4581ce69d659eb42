"""Metrics against scikit-learn, track aggregation, confusion/curve PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genrekit.evaluation import aggregate_tracks, classification_metrics, evaluate_probs, write_metrics
from genrekit.plots import plot_training_curve


def test_metrics_match_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    m = classification_metrics(y, p, ["a", "b", "c", "d"])
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"))
    assert m["confusion_matrix"] == sk.confusion_matrix(y, p).tolist()
    prec, rec, f1, sup = sk.precision_recall_fscore_support(y, p, zero_division=0)
    for i, lab in enumerate("abcd"):
        assert m["per_class"][lab]["precision"] == pytest.approx(prec[i])
        assert m["per_class"][lab]["recall"] == pytest.approx(rec[i])
        assert m["per_class"][lab]["f1"] == pytest.approx(f1[i])
        assert m["per_class"][lab]["support"] == sup[i]


def test_macro_f1_ignores_absent_classes() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    y, p = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    m = classification_metrics(y, p, ["a", "b", "c"])  # 'c' never occurs
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"))


def test_track_level_is_mean_of_segment_probs() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 0, 1, 1])
    groups = np.array(["t1", "t1", "t2", "t2"])
    tp, ty, ids = aggregate_tracks(probs, y, groups)
    assert ids.tolist() == ["t1", "t2"] and ty.tolist() == [0, 1]
    np.testing.assert_allclose(tp, [[0.55, 0.45], [0.45, 0.55]])
    ev = evaluate_probs(probs, y, ["x", "y"], groups)
    assert ev["segment"]["accuracy"] == 0.5 and ev["track"]["accuracy"] == 1.0


def test_write_metrics_json_and_png(tmp_path: Path) -> None:
    m = classification_metrics([0, 1, 1], [0, 1, 0], ["a", "b"])
    write_metrics(m, tmp_path, "test_metrics")
    assert json.loads((tmp_path / "test_metrics.json").read_text())["confusion_matrix"] == [[1, 0], [1, 1]]
    assert (tmp_path / "test_metrics_confusion.png").read_bytes()[:4] == b"\x89PNG"
    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 0.5, "val_accuracy": 0.4,
             "val_macro_f1": 0.3} for e in (1, 2, 3)]
    assert plot_training_curve(hist, tmp_path / "c.png").stat().st_size > 1000
