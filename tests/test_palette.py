"""The shared genre palette: fixed colours by name, distinct per model, readable text on fills."""

from __future__ import annotations

import pytest

from genrekit.palette import (
    GENRE_COLOURS,
    INK,
    OTHER,
    contrast_ratio,
    hex_to_rgb,
    palette_for,
    text_colour_on,
)

GTZAN = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def test_a_genre_keeps_its_colour_whatever_the_label_order_or_subset():
    full = palette_for(GTZAN)
    assert palette_for(list(reversed(GTZAN))) == full
    assert palette_for(["rock", "jazz"]) == {"rock": full["rock"], "jazz": full["jazz"], OTHER: full[OTHER]}
    assert palette_for(["Rock "])["Rock "] == full["rock"]  # matched ignoring case and spaces


def test_every_label_and_other_get_distinct_colours():
    p = palette_for(GTZAN)
    assert set(p) == set(GTZAN) | {OTHER}
    assert len(set(p.values())) == len(p)
    custom = [f"style{i}" for i in range(12)] + ["jazz"]
    q = palette_for(custom)
    assert len(set(q.values())) == len(q)
    assert q["jazz"] == GENRE_COLOURS["jazz"] and OTHER in q


def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near miss
    assert contrast_ratio(INK, "#ffffff") >= 4.5  # the page's heading ink on its card


def test_text_on_a_fill_is_readable():
    for colour in GENRE_COLOURS.values():
        assert contrast_ratio(text_colour_on(colour), colour) >= 4.5, colour
    assert text_colour_on("#ffffff") == INK and text_colour_on("#000000") == "#ffffff"
    with pytest.raises(ValueError):
        hex_to_rgb("#12")
