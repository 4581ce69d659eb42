"""The genre names written into libraries: the model's labels ("hiphop") or the names players
show ("Hip-Hop"), and a user's own mapping file on top of either.

Why a mapping: libraries already have a house style ("Hip Hop", "Hip-Hop/Rap", "Klassik"), and a
tagger that fights it gets uninstalled. The file is a JSON object ``{"hiphop": "Hip Hop"}`` or
plain lines ``hiphop = Hip Hop`` (``#`` starts a comment); labels match ignoring case.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from genrekit.errors import GenrekitError

#: How players and tag editors spell the default model's labels (ID3v1's genre list spells
#: "Hip-Hop"; the rest are the plain words capitalised).
DISPLAY = {
    "blues": "Blues",
    "classical": "Classical",
    "country": "Country",
    "disco": "Disco",
    "hiphop": "Hip-Hop",
    "hip-hop": "Hip-Hop",
    "jazz": "Jazz",
    "metal": "Metal",
    "pop": "Pop",
    "reggae": "Reggae",
    "rock": "Rock",
    "other": "Other",
}

STYLES = ("display", "plain")


class NamesError(GenrekitError):
    """A mapping file that cannot be read or parsed."""


def read_mapping(path: str | os.PathLike[str]) -> dict[str, str]:
    """``label -> name`` from a JSON object or ``label = name`` lines; keys lower-cased."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise NamesError(f"{p}: cannot read the genre names file ({reason})") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NamesError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise NamesError(f"{p}: every name must be a string, as in {{\"hiphop\": \"Hip Hop\"}}")
        pairs = list(data.items())
    else:
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            sep = "=" if "=" in line else ":" if ":" in line else None
            if sep is None:
                raise NamesError(f"{p}: line {n}: expected 'label = name', got {line[:60]!r}")
            k, v = (s.strip() for s in line.split(sep, 1))
            pairs.append((k, v))
    out = {}
    for k, v in pairs:
        if not k.strip() or not v.strip():
            raise NamesError(f"{p}: empty label or name in {k!r} = {v!r}")
        out[k.strip().lower()] = v.strip()
    return out


class GenreNames:
    """Turns a model label into the text written to a library (``style`` then ``mapping``)."""

    def __init__(self, style: str = "display", mapping: dict[str, str] | None = None) -> None:
        if style not in STYLES:
            raise NamesError(f"unknown genre name style {style!r} (choose from {', '.join(STYLES)})")
        self.style = style
        self.mapping = {k.lower(): v for k, v in (mapping or {}).items()}

    @classmethod
    def from_options(cls, style: str = "display", mapping_file: str | os.PathLike[str] | None = None) -> GenreNames:
        return cls(style, read_mapping(mapping_file) if mapping_file else None)

    def name(self, label: str) -> str:
        key = label.lower()
        if key in self.mapping:
            return self.mapping[key]
        if self.style == "display":
            return DISPLAY.get(key, label[:1].upper() + label[1:])
        return label
