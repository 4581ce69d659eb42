"""Durations and percentages as people read and type them: one formatter and one parser for every
command."""

from __future__ import annotations

import pytest

from genrekit.units import format_clock, format_duration, format_percent, parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("90", 90.0), ("90s", 90.0), ("20m", 1200.0), ("20min", 1200.0), ("1.5h", 5400.0), ("1h30m", 5400.0),
    ("2m 30s", 150.0), ("0", 0.0), (".5m", 30.0), ("3H", 10800.0), (" 45 ", 45.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "-5", "5d", "1e3", "nan", "inf", "1h30", "30 1m", "1m1m"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_formats():
    assert format_duration(30) == "0:30" and format_duration(12.0) == "0:12" and format_duration(3725) == "1:02:05"
    assert format_duration(59.6) == "1:00" and format_duration(-1) == "0:00"
    assert format_clock(19.52) == "0:19.5" and format_clock(3725.04) == "1:02:05.0"
    assert format_percent(0.8) == "80%" and format_percent(0.004) == "<1%" and format_percent(0.0) == "0%"
    assert format_percent(0.997) == ">99%" and format_percent(1.0) == "100%"
