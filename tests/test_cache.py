"""Feature cache: hits, misses on change of file or spec, damaged entries."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from genrekit.cache import FeatureCache
from genrekit.features import LogMelSpec, MfccSegmentSpec

from .conftest import tone


def test_cache_hit_and_invalidation(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    sf.write(audio, tone(4.0), 22050)
    cache = FeatureCache(tmp_path / "cache")
    spec = MfccSegmentSpec()
    first = cache.extract(audio, spec)
    assert cache.get(audio, spec) is not None
    np.testing.assert_array_equal(cache.extract(audio, spec).values, first.values)
    assert cache.get(audio, LogMelSpec()) is None  # other spec, other key
    sf.write(audio, tone(5.0), 22050)
    os.utime(audio, ns=(1, 1))
    assert cache.get(audio, spec) is None  # file changed


def test_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    sf.write(audio, tone(3.0), 22050)
    cache = FeatureCache(tmp_path / "cache")
    spec = MfccSegmentSpec()
    cache.extract(audio, spec)
    entry = next((tmp_path / "cache").rglob("*.npz"))
    entry.write_bytes(b"junk")
    assert cache.get(audio, spec) is None
    assert cache.extract(audio, spec).values.shape[1] == 26


def test_entries_of_another_cache_version_miss(tmp_path: Path, monkeypatch) -> None:
    """Entries written before extract_file's rules changed are not served afterwards."""
    import genrekit.cache as cache_mod

    audio = tmp_path / "a.wav"
    sf.write(audio, tone(4.0), 22050)
    cache = FeatureCache(tmp_path / "cache")
    cache.extract(audio, MfccSegmentSpec())
    monkeypatch.setattr(cache_mod, "CACHE_VERSION", cache_mod.CACHE_VERSION + 1)
    assert cache.get(audio, MfccSegmentSpec()) is None


def test_unwritable_cache_costs_speed_not_inputs(tmp_path: Path, capsys) -> None:
    """A cache folder that cannot be made (here: a file is in its place) leaves every input usable
    and says so once, naming the cache."""
    from genrekit.datasets import extract_files

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    files = []
    for i in range(3):
        files.append(tmp_path / f"t{i}.wav")
        sf.write(files[-1], tone(2.0, freq=300 + 100 * i), 22050)
    values, skipped = extract_files(files, MfccSegmentSpec(), workers=1, cache_root=blocker, progress=False)
    assert len(values) == 3 and skipped == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"genrekit: warning: {blocker}: cannot write the feature cache")


def test_content_rewritten_with_mtime_restored_misses(tmp_path: Path) -> None:
    """Same size, same mtime, other samples (as `cp -p` over an old copy leaves it): a miss."""
    import time

    audio = tmp_path / "a.wav"
    sf.write(audio, tone(4.0, freq=300.0), 22050)
    cache = FeatureCache(tmp_path / "cache")
    cache.extract(audio, MfccSegmentSpec())
    st = audio.stat()
    time.sleep(0.01)
    sf.write(audio, tone(4.0, freq=500.0), 22050)  # same length, so the same size
    os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert audio.stat().st_size == st.st_size and audio.stat().st_mtime_ns == st.st_mtime_ns
    assert cache.get(audio, MfccSegmentSpec()) is None


# ------------------------------------------------------------------- genrekit cache info | clear


def _filled_cache(root: Path, tmp_path: Path) -> dict[str, Path]:
    """A cache root with feature entries, converted weights, a stray file in each part, another
    tool's folder, and links that lead outside the root."""
    audio = tmp_path / "a.wav"
    sf.write(audio, tone(3.0), 22050)
    cache = FeatureCache(root / "features")
    cache.extract(audio, MfccSegmentSpec())
    cache.extract(audio, LogMelSpec())
    weights = root / "musicnn"
    weights.mkdir(parents=True)
    (weights / "MSD_musicnn-0.1.0.safetensors").write_bytes(b"w" * 3000)
    (weights / "musicnn-0.1.0-py3-none-any.whl").write_bytes(b"z" * 1000)
    networks = root / "onnx"
    networks.mkdir()
    (networks / "MSD_musicnn-0.1.0-g1.onnx").write_bytes(b"o" * 200)
    (networks / "MSD_musicnn-0.1.0-g1.onnx.json").write_bytes(b"{}")
    (weights / "notes.txt").write_text("mine")  # not a name genrekit writes
    (root / "features" / "README").write_text("mine too")
    (root / "efficientat").mkdir()
    (root / "efficientat" / "mn04_as_mAP_432.pt").write_bytes(b"e" * 2000)  # a downloaded release file
    (root / "audio-features-v1").mkdir()
    (root / "audio-features-v1" / "x.npz").write_bytes(b"o" * 500)
    outside = tmp_path / "precious"
    outside.mkdir()
    victim = outside / ("0" * 40 + ".npz")  # named like a cache entry, but not in the cache
    victim.write_bytes(b"keep me")
    (root / "features" / "zz").mkdir()
    (root / "features" / "zz" / victim.name).symlink_to(victim)
    return {"audio": audio, "victim": victim, "outside": outside}


def test_cache_usage_lists_parts_and_sizes(tmp_path: Path) -> None:
    from genrekit.cache import cache_usage

    root = tmp_path / "cache"
    _filled_cache(root, tmp_path)
    parts = {p.name: p for p in cache_usage(root)}
    assert list(parts) == ["features", "weights", "efficientat", "networks", "other"]
    assert len(parts["efficientat"].files) == 1 and parts["efficientat"].bytes == 2000
    assert len(parts["networks"].files) == 2 and parts["networks"].other_files == 0
    assert len(parts["features"].files) == 2 and parts["features"].other_files == 1
    assert parts["features"].bytes == sum(p.stat().st_size for p in parts["features"].files) > 0
    assert len(parts["weights"].files) == 2 and parts["weights"].bytes == 4000 and parts["weights"].other_files == 1
    assert parts["other"].other_files == 1 and parts["other"].other_bytes == 500
    assert "audio-features-v1/" in parts["other"].description


def test_clear_deletes_only_what_genrekit_wrote(tmp_path: Path) -> None:
    from genrekit.cache import cache_usage, clear_cache

    root = tmp_path / "cache"
    made = _filled_cache(root, tmp_path)
    n_feat = len(cache_usage(root)[0].files)
    assert clear_cache(["features"], root, dry_run=True)[0] == n_feat
    assert len(list((root / "features").rglob("*.npz"))) == n_feat + 1  # dry run: all still there (+ the link)
    files, nbytes = clear_cache(["features"], root)
    assert files == n_feat and nbytes > 0
    assert (root / "features" / "README").is_file()  # not a name genrekit writes
    assert made["victim"].read_bytes() == b"keep me"  # a link is never followed, nor its target removed
    assert (root / "musicnn" / "MSD_musicnn-0.1.0.safetensors").is_file()  # weights only on request
    assert FeatureCache(root / "features").get(made["audio"], MfccSegmentSpec()) is None
    assert clear_cache(["weights"], root) == (2, 4000)
    assert [p.name for p in (root / "musicnn").iterdir()] == ["notes.txt"]
    assert (root / "efficientat" / "mn04_as_mAP_432.pt").is_file()  # its own part
    assert clear_cache(["efficientat"], root) == (1, 2000) and not list((root / "efficientat").iterdir())
    assert (root / "audio-features-v1" / "x.npz").is_file()


def test_a_part_folder_that_links_elsewhere_is_not_cleared(tmp_path: Path) -> None:
    """GENREKIT_CACHE_DIR/features as a link to another folder: nothing there is touched."""
    from genrekit.cache import clear_cache

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    entry = elsewhere / ("a" * 40 + ".npz")
    entry.write_bytes(b"data")
    root = tmp_path / "cache"
    root.mkdir()
    (root / "features").symlink_to(elsewhere, target_is_directory=True)
    assert clear_cache(["features", "weights"], root) == (0, 0)
    assert entry.is_file()


def test_unknown_part_is_one_line(tmp_path: Path) -> None:
    import pytest

    from genrekit.cache import clear_cache
    from genrekit.errors import GenrekitError

    with pytest.raises(GenrekitError, match="unknown part 'everything'"):
        clear_cache(["everything"], tmp_path)

