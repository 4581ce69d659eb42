"""Shared fixtures: the read-only data in ../shared/data, a private cache dir, synthetic audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
#: The EfficientAT mn04 release file and its parity reference (``../shared/weights/efficientat``,
#: beside the data folder when GENREKIT_SHARED_DATA moves it).
EFFICIENTAT_DIR = SHARED.parent / "weights" / "efficientat"
EFFICIENTAT_WEIGHTS = EFFICIENTAT_DIR / "mn04_as_mAP_432.pt"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def gtzan_clips(shared_data: Path) -> Path:
    return shared_data / "gtzan-clips"


@pytest.fixture(scope="module")
def musicnn_source():
    """musicnn's weights by genrekit's lookup order (the installed wheel); skips when none is reachable."""
    from genrekit.backbones.musicnn import WeightsNotFoundError, find_weights

    try:
        return find_weights("MSD_musicnn")
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feature caches go to a temp dir, never into the user's cache or shared/. Converted musicnn
    weights keep using the session-wide dir so they are converted once per test run."""
    root = tmp_path_factory.getbasetemp() / "genrekit-cache"
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(root))
    if EFFICIENTAT_WEIGHTS.is_file() and not os.environ.get("GENREKIT_EFFICIENTAT_WEIGHTS"):
        # tests and CI read the shared copy of the release file: never a download
        monkeypatch.setenv("GENREKIT_EFFICIENTAT_WEIGHTS", str(EFFICIENTAT_WEIGHTS))


@pytest.fixture(scope="session")
def efficientat_dir() -> Path:
    """``../shared/weights/efficientat`` (weights + parity reference); tests skip without it."""
    if not (EFFICIENTAT_WEIGHTS.is_file() and (EFFICIENTAT_DIR / "mn04_as_reference.npz").is_file()):
        pytest.skip(f"EfficientAT weights/reference not found in {EFFICIENTAT_DIR}")
    return EFFICIENTAT_DIR


@pytest.fixture()
def tmpdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Send every temporary folder (``tempfile``'s default dir) to a private place, so a test can
    see that the server or a download left nothing behind."""
    import tempfile

    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def tone(seconds: float = 3.0, sr: int = 22050, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A decaying harmonic tone with a little noise: cheap synthetic 'music' for format tests."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 5)) * 0.2
    y = y + 0.01 * rng.standard_normal(len(t))
    y = y.astype(np.float32)
    return np.stack([y] * channels) if channels > 1 else y
