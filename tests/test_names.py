"""Genre names written to libraries: display / plain styles and the user's mapping file."""

from __future__ import annotations

from pathlib import Path

import pytest

from genrekit.cli.main import main
from genrekit.library.names import GenreNames, NamesError, read_mapping
from genrekit.library.tagging import read_state

from .library_files import row, songs, write_result


def test_styles_and_mapping() -> None:
    assert GenreNames("display").name("hiphop") == "Hip-Hop"
    assert GenreNames("display").name("synthwave") == "Synthwave"  # labels of other models
    assert GenreNames("plain").name("hiphop") == "hiphop"
    assert GenreNames("plain", {"HipHop": "Hip Hop"}).name("hiphop") == "Hip Hop"  # labels match ignoring case
    with pytest.raises(NamesError):
        GenreNames("fancy")


def test_mapping_file_formats_and_errors(tmp_path: Path) -> None:
    j = tmp_path / "n.json"
    j.write_text('{"hiphop": "Hip Hop", "classical": "Klassik"}', encoding="utf-8")
    assert read_mapping(j) == {"hiphop": "Hip Hop", "classical": "Klassik"}
    t = tmp_path / "n.txt"
    t.write_text("# my names\nhiphop = Hip Hop/Rap\n\nmetal: Heavy Metal  # loud\n", encoding="utf-8")
    assert read_mapping(t) == {"hiphop": "Hip Hop/Rap", "metal": "Heavy Metal"}
    bad = tmp_path / "bad.txt"
    bad.write_text("hiphop Hip Hop\n", encoding="utf-8")
    with pytest.raises(NamesError, match="line 1: expected 'label = name'"):
        read_mapping(bad)
    with pytest.raises(NamesError, match="cannot read the genre names file"):
        read_mapping(tmp_path / "missing.json")
    broken = tmp_path / "b.json"
    broken.write_text('{"hiphop": 3}', encoding="utf-8")
    with pytest.raises(NamesError, match="every name must be a string"):
        read_mapping(broken)


def test_tag_uses_the_mapping_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pytest.importorskip("pyarrow")
    monkeypatch.setenv("GENREKIT_STATE_DIR", str(tmp_path / "state"))
    a, b = songs(tmp_path / "m", 2)
    res = write_result(tmp_path / "res", [row(a, "hiphop", 0.9), row(b, "classical", 0.9)])
    names = tmp_path / "names.txt"
    names.write_text("hiphop = Hip Hop\n", encoding="utf-8")
    assert main(["tag", str(a), str(b), "--from", str(res), "--names-file", str(names)]) == 0
    assert read_state(a).genres == ("Hip Hop",)
    assert read_state(b).genres == ("Classical",)  # not in the file: the --names style
    assert main(["tag", str(a), "--names-file", str(tmp_path / "nope.txt")]) == 1
    assert capsys.readouterr().err.strip().endswith("nope.txt: cannot read the genre names file (No such file or directory)")
