"""Training-curve and confusion PNGs: whole-number epochs, the kept epoch marked, rows normalised
with their counts, blank empty cells and titles a reader understands."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.plots import (
    best_epoch_of,
    confusion_figure,
    metrics_title,
    plot_confusion,
    plot_training_curve,
    training_curve_figure,
)


@pytest.fixture()
def closing():
    import matplotlib.pyplot as plt

    figs = []
    yield figs.append
    for f in figs:
        plt.close(f)


def _history(f1: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_loss": 1.2 - 0.01 * i, "train_accuracy": 0.5 + 0.01 * i,
             "val_accuracy": v, "val_macro_f1": v} for i, v in enumerate(f1)]


@pytest.mark.parametrize("n_epochs", [1, 3, 7, 60])
def test_epoch_ticks_are_whole_numbers(closing, n_epochs):
    fig = training_curve_figure(_history([0.3 + 0.001 * i for i in range(n_epochs)]))
    closing(fig)
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo - 1e-9 <= t <= hi + 1e-9]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        labels = [t.get_text() for t in ax.get_xticklabels() if lo - 1e-9 <= t.get_position()[0] <= hi + 1e-9]
        assert all(lab.lstrip("\u2212-").isdigit() for lab in labels), labels


def test_the_kept_epoch_is_marked_on_both_panels(closing):
    f1 = [0.2, 0.5, 0.4, 0.5, 0.3]  # a tie: training keeps the first (strictly better only)
    hist = _history(f1)
    assert best_epoch_of(hist) == 2
    fig = training_curve_figure(hist)
    closing(fig)
    for ax in fig.axes[:2]:
        marks = [ln for ln in ax.lines if ln.get_gid() == "best-epoch"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 2]
    point = [ln for ln in fig.axes[1].lines if ln.get_gid() == "best-epoch-point"]
    assert len(point) == 1 and list(point[0].get_xdata()) == [2] and list(point[0].get_ydata()) == [0.5]
    assert any("epoch 2" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_training_curve_png(tmp_path):
    png = plot_training_curve(_history([0.1, 0.2, 0.3]), tmp_path / "c" / "curve.png", title="t")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_confusion_rows_normalised_with_counts_and_blank_empty_cells(closing):
    cm = np.array([[8, 2, 0], [0, 0, 0], [1, 1, 38]])  # the middle genre has no items at all
    labels = ["blues", "jazz", "rock"]
    fig = confusion_figure(cm, labels, "t")
    closing(fig)
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown[0], [0.8, 0.2, 0.0])
    np.testing.assert_allclose(shown[1], [0.0, 0.0, 0.0])  # no division by zero for an empty row
    np.testing.assert_allclose(shown[2], [1 / 40, 1 / 40, 38 / 40])
    assert ax.images[0].get_clim() == (0.0, 1.0)  # the same scale for every matrix
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert texts == {(0, 0): "80%\n8", (0, 1): "20%\n2", (2, 0): "2%\n1", (2, 1): "2%\n1", (2, 2): "95%\n38"}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["blues (10)", "jazz (0)", "rock (40)"]


def test_confusion_titles_say_which_split():
    m = {"n": 290, "accuracy": 0.5069, "macro_f1": 0.48}
    assert metrics_title("test_metrics", m) == "Confusion matrix, test split\nn=290, accuracy 50.7%, macro-F1 0.480"
    assert metrics_title("val_track_metrics", m).startswith("Confusion matrix, validation split, per track\n")
    assert "test_metrics" not in metrics_title("test_metrics", m)


def test_confusion_png(tmp_path):
    png = plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "cm.png", title="x")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_batch_report_chart_follows_the_palette():
    """The batch report's bars use each genre's palette colour, as the page and the timelines do."""
    from matplotlib.colors import to_hex

    from genrekit.palette import palette_for
    from genrekit.plots import genre_counts_figure

    counts = [("rock", 12), ("jazz", 5), ("other", 2), ("polka", 1)]
    fig = genre_counts_figure(counts, "toy")
    try:
        bars = fig.axes[0].patches
        names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        colours = palette_for([g for g, _ in counts])
        assert names == ["polka", "other", "jazz", "rock"]  # most first, from the top
        assert [to_hex(b.get_facecolor()) for b in bars] == [colours[g].lower() for g in names]
        assert len({to_hex(b.get_facecolor()) for b in bars}) == 4
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
