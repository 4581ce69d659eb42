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
