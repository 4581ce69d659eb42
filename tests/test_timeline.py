"""The timeline PNG: a clock on the time axis, fixed 0-100 % scales, the shared palette, every
label inside its frame, and inputs from a few seconds to two hours."""

from __future__ import annotations

import re

import numpy as np
import pytest

from genrekit.palette import palette_for
from genrekit.prediction import Prediction, Segment
from genrekit.timeline import clock, plot_timeline, tick_step, timeline_figure

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def _prediction(seconds: float, hop: float = 3.0, top: float = 0.6, seed: int = 0, genre: str | None = None) -> Prediction:
    """Segments every ``hop`` s whose probabilities wander; the track's top genre gets ``top``."""
    rng = np.random.default_rng(seed)
    segs = []
    for start in np.arange(0.0, max(hop, seconds - hop) + 1e-9, hop):
        p = rng.dirichlet(np.ones(len(GENRES)) * 0.5)
        probs = {g: float(v) for g, v in zip(GENRES, p, strict=True)}
        best = max(probs, key=probs.get)
        segs.append(Segment(float(start), float(min(start + 3.0, seconds)), best, probs[best], probs))
    rest = (1 - top) / (len(GENRES) - 1)
    track = {g: (top if g == "jazz" else rest) for g in GENRES}
    return Prediction("song.wav", genre or "jazz", top, track, float(seconds), segs, None, "toy")


@pytest.fixture()
def figure():
    """Yields a function drawing a timeline figure; closes every figure it drew."""
    import matplotlib.pyplot as plt

    figs = []

    def draw(pred: Prediction):
        fig = timeline_figure(pred)
        figs.append(fig)
        fig.canvas.draw()
        return fig

    yield draw
    for f in figs:
        plt.close(f)


def test_clock():
    assert [clock(s) for s in (0, 9.4, 59.6, 61, 600, 3599.4, 3600, 7199, 36000)] == [
        "0:00", "0:09", "1:00", "1:01", "10:00", "59:59", "1:00:00", "1:59:59", "10:00:00"]
    assert clock(-3) == "0:00" and clock(900, hours=True) == "0:15:00"


@pytest.mark.parametrize("seconds, step", [(12, 2), (30, 5), (240, 30), (1200, 120), (7200, 900), (36000, 3600)])
def test_tick_step_keeps_ten_ticks_or_fewer(seconds, step):
    assert tick_step(seconds) == step
    assert seconds / tick_step(seconds) <= 10


@pytest.mark.parametrize("seconds", [30.0, 7200.0])
def test_time_axis_is_a_clock_and_scales_are_fixed(figure, seconds):
    fig = figure(_prediction(seconds))
    top, bottom = fig.axes[:2]
    lo, hi = top.get_xlim()
    ticks = [t.get_text() for t in top.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    pattern = r"\d+:\d\d:\d\d" if seconds >= 3600 else r"\d+:\d\d"
    assert ticks and all(re.fullmatch(pattern, t) for t in ticks), ticks
    assert ticks[0] in ("0:00", "0:00:00") and 3 <= len(ticks) <= 11
    assert top.get_xlim() == (0.0, seconds)
    # the same scale for every input: 0-100 %, whatever the best probability
    assert top.get_ylim() == (0.0, 1.0) and bottom.get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in top.get_yticklabels()] == ["0%", "25%", "50%", "75%", "100%"]


def test_confidence_is_the_height_of_each_segments_band(figure):
    """The stack is drawn from the segments' probabilities: at every segment, the band of its
    genre is as tall as its confidence (not a marker size)."""
    from matplotlib.collections import PolyCollection

    pred = _prediction(30.0)
    fig = figure(pred)
    polys = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(polys) == len(GENRES)
    colours = palette_for(GENRES)
    order = sorted(GENRES, key=lambda g: -pred.probabilities[g])  # best track genre at the bottom
    faces = [tuple(np.round(p.get_facecolor()[0][:3], 3)) for p in polys]
    from matplotlib.colors import to_rgb

    assert faces == [tuple(np.round(to_rgb(colours[g]), 3)) for g in order]
    segs = pred.segments
    for j, s in enumerate(segs):
        mid = (s.start_s + (segs[j + 1].start_s if j + 1 < len(segs) else s.end_s)) / 2
        lower = sum(s.probabilities[g] for g in order[: order.index(s.genre)])
        band = polys[order.index(s.genre)].get_paths()[0]
        if s.confidence > 0.02:
            assert band.contains_point((mid, lower + s.confidence / 2)), s
        # the band ends at lower + confidence: just above it lies the next genre's band
        above = lower + s.confidence + 0.01
        if above < 0.99:
            assert not band.contains_point((mid, above)), s


def test_labels_inside_the_frame_and_colours_from_the_palette(figure):
    pred = _prediction(30.0, top=0.97)
    fig = figure(pred)
    bottom = fig.axes[1]
    frame = bottom.get_window_extent()
    renderer = fig.canvas.get_renderer()
    texts = bottom.texts
    assert len(texts) == len(GENRES)
    for t in texts:
        box = t.get_window_extent(renderer)
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1 and frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1, t
    assert {t.get_text() for t in texts} == {"97%", "<1%"}
    fig_box = fig.bbox
    legend = fig.axes[0].get_legend().get_window_extent(renderer)
    assert fig_box.x0 <= legend.x0 and legend.x1 <= fig_box.x1
    from matplotlib.colors import to_hex

    colours = palette_for(GENRES)
    assert [to_hex(b.get_facecolor()) for b in bottom.patches] == [colours[g] for g in GENRES]


def test_open_set_answer_and_png_written(tmp_path):
    """The open-set answer ("other", not one of the labels) draws; the PNG is written."""
    png = plot_timeline(_prediction(12.0, genre="other"), tmp_path / "x" / "other.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_hour_input_is_averaged_into_readable_columns(figure, tmp_path):
    """2 400 segments draw as ten polygons of at most MAX_COLUMNS steps, each column the mean of
    the segments starting in it, still stacking to 100%."""
    from matplotlib.collections import PolyCollection

    from genrekit.timeline import MAX_COLUMNS, _binned

    pred = _prediction(7200.0, hop=3.0)
    fig = figure(pred)
    polys = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    top_band = polys[-1].get_paths()[0].vertices
    assert len(polys) == len(GENRES) and len({round(x, 6) for x, _ in top_band}) <= MAX_COLUMNS + 1
    assert "averages 18 s of segments (2400 in all)" in fig.axes[0].get_title(loc="left")

    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 10.0])
    probs = np.array([[1.0, 0.0, 0.5, 0.5, 0.2], [0.0, 1.0, 0.5, 0.5, 0.8]])
    e2, p2 = _binned(edges, probs, max_columns=2)  # stretches [0, 5) and [5, 10]: all starts in the first
    np.testing.assert_allclose(e2, [0.0, 10.0])
    np.testing.assert_allclose(p2[:, 0], probs.mean(axis=1))
    e3, p3 = _binned(edges, probs, max_columns=4)  # stretches of 2.5 s: starts 0,1,2 | 3,4 | - | -
    np.testing.assert_allclose(e3, [0.0, 2.5, 10.0])
    np.testing.assert_allclose(p3, [[0.5, 0.35], [0.5, 0.65]])
    np.testing.assert_allclose(p3.sum(axis=0), 1.0)
    assert plot_timeline(pred, tmp_path / "long.png").stat().st_size > 5000


def test_open_set_segments_are_drawn():
    """Segments with an in-set score get a line at that score and hatched spans where they are
    "other"; the title says "other" plainly with the nearest genre and the style."""
    from genrekit.prediction import Prediction, Segment
    from genrekit.timeline import timeline_figure

    labels = ["blues", "rock"]
    segs = [Segment(float(i), i + 3.0, "other" if 3 <= i < 6 else "rock", 0.6, {"blues": 0.4, "rock": 0.6},
                    0.3 if 3 <= i < 6 else 0.8) for i in range(10)]
    # confidence of an "other" answer: 1 - in_set, its own certainty; the nearest genre keeps its probability
    p = Prediction("x.wav", "other", 0.7, {"blues": 0.4, "rock": 0.6}, 12.0, segs, None, "m",
                   nearest="rock", in_set=0.3, style="electronic, dance")
    fig = timeline_figure(p)
    try:
        ax = fig.axes[0]
        line = [ln for ln in ax.get_lines() if ln.get_label() == "in-set score"][0]
        assert list(line.get_ydata()) == [s.in_set for s in segs]
        hatched = [pt for pt in ax.patches if pt.get_hatch() == "///"]
        assert len(hatched) == 1  # three consecutive "other" segments make one span
        box = hatched[0].get_window_extent(fig.canvas.get_renderer()).transformed(ax.transData.inverted())
        assert (round(box.x0, 6), round(box.x1, 6)) == (3.0, 8.0)
        assert "other (70% sure): not one of the model's genres (nearest rock 60%" in fig._suptitle.get_text()
        assert "electronic, dance" in fig._suptitle.get_text()
        assert labels == list(p.probabilities)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
