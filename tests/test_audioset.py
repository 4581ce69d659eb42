"""The AudioSet (mn04) part of the default model: window rows per patch, packing, features, and
the model reading them: whole input vs block-wise prediction, fused heads, style, tags."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.models import audioset as AS
from tests.conftest import tone


def test_pack_roundtrip_and_head_features() -> None:
    rows = np.random.default_rng(0).standard_normal((4, AS.ROW)).astype(np.float32)
    rows[1] = np.nan
    packed = AS.pack_rows(rows, 96)
    assert packed.shape == (4, 10, 96)
    np.testing.assert_array_equal(AS.unpack_rows(packed), rows)
    mean = AS.track_features(rows)
    np.testing.assert_allclose(mean, rows[[0, 2, 3]].astype(np.float64).mean(0), rtol=1e-6)
    assert AS.track_features(np.full((2, AS.ROW), np.nan)) is None
    assert AS.head_features(mean, "all").shape == (AS.ROW,)
    assert AS.head_features(mean, "genres").shape == (len(AS.GENRE_CLASSES),)
    assert AS.head_features(mean, "music_emb").shape == (len(AS.MUSIC_CLASSES) + AS.N_EMBED,)
    with pytest.raises(ValueError, match="unknown AudioSet feature kind"):
        AS.head_features(mean, "nope")


def test_genre_classes_are_music_genres() -> None:
    names = AS.labels()
    assert len(names) == 527
    picked = {names[i] for i in AS.GENRE_CLASSES}
    assert {"Salsa music", "Flamenco", "Afrobeat", "Music of Bollywood", "Heavy metal", "Blues"} <= picked
    assert not picked & {"Beatboxing", "Music", "Song", "Guitar"}
    assert {g: names[i] for g, i in AS.ZERO_SHOT_TEN.items()} == {
        "blues": "Blues", "classical": "Classical music", "country": "Country", "disco": "Disco",
        "hiphop": "Hip hop music", "jazz": "Jazz", "metal": "Heavy metal", "pop": "Pop music",
        "reggae": "Reggae", "rock": "Rock music"}
    mean = np.zeros(AS.ROW)
    mean[249] = 5.0  # Salsa music
    assert AS.style(mean) == "salsa music"


def test_window_rows_run_at_every_stride_th_patch(efficientat_dir) -> None:
    """Windows start at patches 0, 10, 20; the rows between are NaN; a tail under 2 s is not used;
    a window's rows equal mn04 on exactly that stretch of audio."""
    from genrekit.audio import resample
    from genrekit.backbones.efficientat import SR, load_efficientat, mel_frontend, run_mel

    sr = 22050
    y = tone(21.0, sr)
    starts = np.arange(21) * 1.0  # 21 patches, 1 s apart: windows at 0 s, 10 s and 20 s (1 s left: dropped)
    rows = AS.window_rows(y, sr, starts, window_s=10.0, stride=10)
    ran = ~np.isnan(rows).any(axis=1)
    assert ran.nonzero()[0].tolist() == [0, 10]
    y32 = resample(y, sr, SR)
    ref = run_mel(load_efficientat(), mel_frontend(y32[10 * SR : 20 * SR]))
    np.testing.assert_allclose(rows[10, : AS.N_LOGITS], ref["logits"][0], atol=1e-4)
    np.testing.assert_allclose(rows[10, AS.N_LOGITS :], ref["embedding"][0], atol=1e-4)
    short = AS.window_rows(tone(1.5, sr), sr, np.array([0.0]), window_s=10.0, stride=10)
    assert not np.isnan(short).any()  # the only window of a short input is used whatever its length
