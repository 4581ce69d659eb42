"""``genrekit cache info|clear``: the listing, the JSON for scripts, dry runs, and what a clear keeps."""

from __future__ import annotations

import json
from pathlib import Path

from genrekit.cli.main import main

from .test_cache import _filled_cache


def test_cache_command(tmp_path: Path, monkeypatch, capsys) -> None:
    root = tmp_path / "cache"
    _filled_cache(root, tmp_path)
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(root))
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"cache: {root} (GENREKIT_CACHE_DIR)"
    assert out[2].split()[:4] == ["weights", "4.0", "kB", "2"]
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["root"] == str(root) and [p["name"] for p in info["parts"]] == [
        "features", "weights", "efficientat", "networks", "other"]
    assert main(["cache", "clear", "all", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would delete 7 files")
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("deleted 2 files")
    assert (root / "musicnn" / "MSD_musicnn-0.1.0.safetensors").is_file()
