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
