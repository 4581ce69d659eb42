"""Fallback fonts for PNG titles (``genrekit.fonts``): file names in CJK, Hangul, Arabic and
Devanagari draw as glyphs when a font for them is installed, and never as empty boxes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from genrekit import fonts
from genrekit.prediction import Prediction, Segment

TITLE = "방탄소년단 - 日本語の歌.mp3"
SCRIPTS = {"Hangul": "방탄소년단", "Japanese": "日本語の歌", "Arabic": "أغنية", "Devanagari": "गीत"}


def _prediction(name: str) -> Prediction:
    probs = {"blues": 0.1, "jazz": 0.2, "pop": 0.7}
    segs = [Segment(float(i), i + 3.0, "pop", 0.7, dict(probs), None) for i in range(8)]
    return Prediction(name, "pop", 0.7, probs, 11.0, segs, None, "toy", "pop", None, None)


def _drawn_without_missing_glyphs(name: str, path: Path) -> list[str]:
    from genrekit.timeline import plot_timeline

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_timeline(_prediction(name), path)
    return [str(w.message) for w in caught if "Glyph" in str(w.message) and "missing" in str(w.message)]


def test_korean_and_japanese_title_draws_no_missing_glyph(tmp_path: Path) -> None:
    assert _drawn_without_missing_glyphs(TITLE, tmp_path / "t.png") == []
    assert (tmp_path / "t.png").stat().st_size > 5000


def test_installed_fallbacks_draw_the_scripts_themselves() -> None:
    """With a CJK font and Noto Arabic/Devanagari installed (CI installs them: .ci/run), every
    character of those scripts is drawable, so nothing is escaped."""
    found = fonts.families()
    have_cjk = any("CJK" in f or "WenQuanYi" in f for f in found)
    have_rest = any("Arabic" in f for f in found) and any("Devanagari" in f for f in found)
    if not (have_cjk and have_rest):
        if os.environ.get("CI"):
            pytest.fail(f"CI installs the fallback fonts, yet only these were found: {found}")
        pytest.skip(f"fallback fonts not installed here (found {found}); Debian: fonts-wqy-microhei fonts-noto-ui-core")
    for script, text in SCRIPTS.items():
        assert fonts.drawable(text) == text, script


def test_without_fallback_fonts_characters_become_readable_escapes(monkeypatch, tmp_path: Path) -> None:
    """No font for a script: ``<U+XXXX>`` escapes (no boxes, no transliteration) and no warning."""
    monkeypatch.setattr(fonts, "FALLBACKS", ())
    monkeypatch.setenv("GENREKIT_FONT_DIRS", str(tmp_path / "no-fonts"))
    fonts.font_files.cache_clear()
    fonts._coverage.cache_clear()
    try:
        assert fonts.families() == [fonts.BASE_FAMILY]
        assert fonts.drawable("방탄 - x.mp3") == "<U+BC29><U+D0C4> - x.mp3"
        assert fonts.drawable("Ünïcödé Söng") == "Ünïcödé Söng"  # DejaVu Sans has these
        assert _drawn_without_missing_glyphs(TITLE, tmp_path / "t.png") == []
    finally:
        fonts.font_files.cache_clear()
        fonts._coverage.cache_clear()


def test_a_font_only_found_by_file_name_is_used(monkeypatch, tmp_path: Path) -> None:
    """A font installed after matplotlib built its cache is found in the font folders by name."""
    real = next((p for f, p in fonts.font_files() if f != fonts.BASE_FAMILY), None)
    if real is None:
        pytest.skip("no fallback font installed here to copy")
    import shutil

    folder = tmp_path / "fonts"
    folder.mkdir()
    copy = folder / "Renamed-Fallback.ttf"
    shutil.copy(real, copy)
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    family = FT2Font(str(copy)).family_name
    monkeypatch.setattr(fonts, "FALLBACKS", ((family + " Not Known", ("renamed-fallback.ttf",)),))
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [e for e in font_manager.fontManager.ttflist
                                                              if e.name != family])
    monkeypatch.setenv("GENREKIT_FONT_DIRS", str(folder))
    fonts.font_files.cache_clear()
    fonts._coverage.cache_clear()
    try:
        assert (family, str(copy)) in fonts.font_files()
    finally:
        fonts.font_files.cache_clear()
        fonts._coverage.cache_clear()
