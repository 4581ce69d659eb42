"""Fonts for the text genrekit draws into PNGs (timeline titles name the input file, in any script).

matplotlib ships DejaVu Sans only, which has no CJK, Hangul or Devanagari glyphs: a title such as
``방탄소년단 - 日本語の歌.mp3`` came out as empty boxes. So the figures are drawn with a list of
families, DejaVu Sans first and then every fallback font found on this machine at run time
(matplotlib >= 3.6 picks, per character, the first family in the list that has it):

* CJK and Hangul: Noto Sans CJK (Debian ``fonts-noto-cjk``) or WenQuanYi Micro Hei
  (``fonts-wqy-microhei``, 1.6 MB, what CI installs);
* Arabic and Devanagari: Noto Sans Arabic / Devanagari (UI) (``fonts-noto-ui-core`` or
  ``fonts-noto-core``).

They are looked for in matplotlib's own font list, then by file name under the usual font folders
(``/usr/share/fonts``, ``/usr/local/share/fonts``, ``~/.local/share/fonts``, ``~/.fonts``) and the
folders in ``GENREKIT_FONT_DIRS`` (``os.pathsep``-separated), so a font installed after
matplotlib built its cache still counts. A character that no font found here can draw is written
as a readable escape (``<U+BC29>``), never as a box: the name stays recognisable and nothing is
transliterated. (matplotlib lays text out left to right without shaping: Arabic letters appear in
their isolated forms, Devanagari without conjuncts; readable, not typeset.)
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

#: The family every figure starts with (matplotlib's bundled font).
BASE_FAMILY = "DejaVu Sans"

#: Fallback families, in the order they are tried, with the file names that provide them.
FALLBACKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Noto Sans CJK JP", ("NotoSansCJK-Regular.ttc", "NotoSansCJKjp-Regular.otf", "NotoSansCJK-JP-Regular.otf")),
    ("WenQuanYi Micro Hei", ("wqy-microhei.ttc",)),
    ("Noto Sans Arabic UI", ("NotoSansArabicUI-Regular.ttf",)),
    ("Noto Sans Arabic", ("NotoSansArabic-Regular.ttf",)),
    ("Noto Sans Devanagari UI", ("NotoSansDevanagariUI-Regular.ttf",)),
    ("Noto Sans Devanagari", ("NotoSansDevanagari-Regular.ttf",)),
)

_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


def _font_dirs() -> list[Path]:
    extra = [d for d in os.environ.get("GENREKIT_FONT_DIRS", "").split(os.pathsep) if d]
    return [Path(d).expanduser() for d in (*extra, *_FONT_DIRS)]


def _find_file(names: tuple[str, ...]) -> Path | None:
    wanted = {n.lower() for n in names}
    for root in _font_dirs():
        if not root.is_dir():
            continue
        for folder, _dirs, files in os.walk(root):
            for f in files:
                if f.lower() in wanted:
                    return Path(folder) / f
    return None


@lru_cache(maxsize=1)
def font_files() -> tuple[tuple[str, str], ...]:
    """``((family, font file), ...)``: DejaVu Sans, then each fallback found on this machine
    (added to matplotlib's font list when only its file was found). Cached for the process."""
    from matplotlib import font_manager

    fm = font_manager.fontManager
    out = [(BASE_FAMILY, font_manager.findfont(BASE_FAMILY, fallback_to_default=True))]
    known = {e.name: e.fname for e in fm.ttflist}
    for family, names in FALLBACKS:
        path = known.get(family)
        if path is None:
            found = _find_file(names)
            if found is None:
                continue
            try:
                fm.addfont(str(found))
            except (OSError, RuntimeError, ValueError):  # an unreadable font file: skip it
                continue
            known = {e.name: e.fname for e in fm.ttflist}
            path = known.get(family)
            if path is None:  # the file names another family than expected: use what it is
                path = str(found)
                family = next((e.name for e in fm.ttflist if e.fname == str(found)), family)
        if all(path != p for _, p in out):
            out.append((family, path))
    return tuple(out)


def families() -> list[str]:
    """The ``font.family`` list for figures with user text: base font first, then fallbacks."""
    return list(dict.fromkeys(f for f, _ in font_files()))


@lru_cache(maxsize=1)
def _coverage() -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    cps: set[int] = set()
    for _family, path in font_files():
        try:
            cps.update(FT2Font(path).get_charmap())
        except (OSError, RuntimeError, ValueError):
            continue
    return frozenset(cps)


def drawable(text: str) -> str:
    """``text`` with every character the available fonts cannot draw replaced by ``<U+XXXX>``
    (line breaks and spaces kept), so a title never shows an empty box."""
    cover = _coverage()
    return "".join(c if c in "\n\t " or ord(c) in cover else f"<U+{ord(c):04X}>" for c in text)
