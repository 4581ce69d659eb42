"""The default model: committed head file, taggram-level accuracy on the fault-filtered test
split, per-segment outputs, zero-shot tags, and a short end-to-end audio check."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.base import load_model
from genrekit.default_model import FORMAT, GENRES, HEAD_PATH, MusicnnGenreModel, segment_windows
from genrekit.features import MusicnnSpec


def _tracks(npz):
    d = np.load(npz)
    ids = np.array([str(i) for i in d["IDS"]])
    keys = list(dict.fromkeys(ids))
    return [d["X"][ids == k] for k in keys], np.array([int(d["Y"][ids == k][0]) for k in keys])


def test_head_file_is_small_and_described():
    from genrekit.modelfile import read_model_meta

    assert HEAD_PATH.stat().st_size < 2_000_000
    meta = read_model_meta(HEAD_PATH)
    assert meta["format"] == FORMAT and meta["labels"] == GENRES
    assert meta["backbone"] == "MSD_musicnn"
    spec = meta["feature_spec"]
    assert spec["sample_rate"] == 16000 and spec["patch_frames"] == 187 and spec["n_mels"] == 96
    assert {"accuracy", "macro_f1", "confusion"} <= set(meta["metrics"]["test_track"])


def test_load_default_model():
    m = load_model(None)
    assert isinstance(m, MusicnnGenreModel) and load_model("default") is m
    assert m.labels == GENRES and isinstance(m.spec, MusicnnSpec)
    assert m.card()["format"] == FORMAT


def test_test_split_accuracy_matches_card(shared_data):
    """The 290 fault-filtered test tracks from the stored taggrams reproduce the card's numbers."""
    m = load_model(None)
    tracks, y = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_test.npz")
    assert len(tracks) == 290
    pred = np.array([np.argmax(m.track_probs_from_taggram(t)) for t in tracks])
    acc = float((pred == y).mean())
    assert acc == pytest.approx(m.metrics["test_track"]["accuracy"], abs=1e-9)
    assert acc >= 0.75


def test_segment_probs_from_taggram(shared_data):
    m = load_model(None)
    tracks, _ = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_train.npz")
    t = tracks[0]
    seg = m.segment_probs_from_taggram(t)
    assert seg.shape == (len(t), 10)
    np.testing.assert_allclose(seg.sum(1), 1, atol=1e-5)
    assert m.segment_probs_from_taggram(t[:0]).shape == (0, 10)
    assert m.segment_probs_from_taggram(t[:1]).shape == (1, 10)  # a single 3 s patch
    assert [(w.start, w.stop) for w in segment_windows(3, 1)] == [(0, 2), (0, 3), (1, 3)]


def test_from_audio_end_to_end(shared_data):
    """Real clips through decode, resample, log-mel, PyTorch musicnn and the head; zero-shot tags.
    (scripts/eval_default_audio.py runs all 74 valid+test clips.)"""
    from genrekit.audio import load_audio
    from genrekit.musicnn import MSD_LABELS, WeightsNotFoundError, find_weights

    try:
        find_weights("MSD_musicnn")
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    m = load_model(None)
    right = 0
    clips = ["classical/classical.00097.wav", "metal/metal.00097.wav", "hiphop/hiphop.00002.wav"]
    for rel in clips:
        values = m.features(load_audio(shared_data / "gtzan-clips" / rel, 16000)).values
        assert values.shape[1:] == (187, 96) and 9 <= len(values) <= 10  # 3 s patches, 3 s apart
        track = m.track_probs(values)
        seg = m.segment_probs(values)
        assert seg.shape == (len(values), 10) and track.shape == (10,)
        right += GENRES[int(np.argmax(track))] == rel.split("/")[0]
        tags = m.tag_probs(values, top_k=5)
        assert len(tags) == 5 and set(tags) <= set(MSD_LABELS)
        assert list(tags.values()) == sorted(tags.values(), reverse=True)
    assert right >= 2
