"""One colour per genre, shared by the web page and every PNG genrekit draws.

Why a module of its own: the page (``serve/static/app.js``) and the PNGs (``timeline.py``) used to
pick colours independently (Tableau 10 by label position on the page, matplotlib's tab10 in the
PNGs), so disco was teal on the page and red in the picture. Colours are now chosen *by genre
name* here; the page reads them from ``GET /api/palette`` and the PNGs call :func:`palette_for`,
so the same genre has the same colour everywhere, whatever order or subset of labels a model has.

The colours are fills (bars, stacked columns, swatches), never text: text is drawn in dark ink
(:data:`INK`), which is why :func:`contrast_ratio` is here too (the browser test checks the genre
heading against its background with the same formula, WCAG 2.x).
"""

from __future__ import annotations

from collections.abc import Iterable

#: The ten GTZAN genres (the default model's labels) and ``other``, the open-set answer "none of
#: the genres this model knows". Tableau 10 hues (country and rock nudged so that dark or white
#: text on each fill reaches 4.5:1), assigned so that neighbours in a stacked column differ;
#: ``other`` gets the neutral grey so it never reads as a genre of its own.
GENRE_COLOURS: dict[str, str] = {
    "blues": "#4e79a7",      # blue
    "classical": "#edc948",  # yellow
    "country": "#8f6a55",    # brown
    "disco": "#b07aa1",      # purple
    "hiphop": "#f28e2b",     # orange
    "jazz": "#76b7b2",       # teal
    "metal": "#555a66",      # charcoal
    "pop": "#ff9da7",        # pink
    "reggae": "#59a14f",     # green
    "rock": "#e46264",       # red
    "other": "#bab0ac",      # neutral grey
}

#: Colours for labels outside :data:`GENRE_COLOURS` (models trained on your own folders), handed
#: out in label order: the rest of Tableau 20, then repeating.
EXTRA_COLOURS: tuple[str, ...] = (
    "#a0cbe8", "#ffbe7d", "#8cd17d", "#b6992d", "#86bcb6", "#ff9d9a", "#79706e", "#d37295",
    "#fabfd2", "#d4a6c8", "#f1ce63", "#499894",
)

#: Text colour for labels drawn on or beside the fills (the page's ``--ink``).
INK = "#1d2330"
#: The open-set answer's label (see ``prediction.Prediction``): always has a colour.
OTHER = "other"


def _key(label: str) -> str:
    """Match labels the way manifests do: ignoring case and surrounding spaces ("Hip-Hop" stays
    its own label; only GTZAN's spelling ``hiphop`` is built in)."""
    return label.strip().lower()


def palette_for(labels: Iterable[str]) -> dict[str, str]:
    """``{label: "#rrggbb"}`` for ``labels`` plus ``other``.

    Known genres get their fixed colour; other labels get :data:`EXTRA_COLOURS` in the order they
    come, then the known genres' colours not taken, so one model's labels never share a colour (up
    to 22 labels; beyond that colours repeat)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    unknown: list[str] = []
    for label in labels:
        if label in out:
            continue
        colour = GENRE_COLOURS.get(_key(label))
        if colour is None:
            unknown.append(label)
            continue
        out[label] = colour
        used.add(colour)
    grey = GENRE_COLOURS[OTHER]
    spare = [c for c in EXTRA_COLOURS + tuple(GENRE_COLOURS.values()) if c not in used and c != grey]
    for i, label in enumerate(unknown):
        out[label] = spare[i % len(spare)]
    out.setdefault(OTHER, GENRE_COLOURS[OTHER])
    return out


def hex_to_rgb(colour: str) -> tuple[float, float, float]:
    """``"#rrggbb"`` (or ``"#rgb"``) to floats in 0..1, as matplotlib and the contrast formula want."""
    h = colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) != 6:
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour with channels in 0..1."""
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str | tuple[float, float, float], b: str | tuple[float, float, float]) -> float:
    """WCAG contrast ratio (1..21) of two colours given as hex strings or 0..1 RGB tuples.
    Body text needs 4.5:1, large text and graphics 3:1."""
    la = relative_luminance(hex_to_rgb(a) if isinstance(a, str) else a)
    lb = relative_luminance(hex_to_rgb(b) if isinstance(b, str) else b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def text_colour_on(fill: str) -> str:
    """Dark ink or white, whichever reads better on ``fill`` (labels drawn inside bars or cells)."""
    return INK if contrast_ratio(INK, fill) >= contrast_ratio("#ffffff", fill) else "#ffffff"
