"""Feature maths against librosa itself (the reference), and the GTZAN MFCC table reproduced."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from genrekit import features as F
from genrekit.audio import load_audio
from genrekit.datasets import clip_by_stem

from .conftest import tone

librosa = pytest.importorskip("librosa")


@pytest.fixture(scope="module")
def clip(gtzan_clips: Path) -> np.ndarray:
    return load_audio(clip_by_stem(gtzan_clips, "jazz/jazz.00004"), 22050)


@pytest.mark.parametrize("n_fft,hop,pad", [(2048, 512, "constant"), (512, 256, "reflect"), (1024, 441, "constant")])
def test_power_spectrogram_matches_librosa(clip: np.ndarray, n_fft: int, hop: int, pad: str) -> None:
    ours = F.power_spectrogram(clip, n_fft, hop, pad_mode=pad)
    ref = np.abs(librosa.stft(clip, n_fft=n_fft, hop_length=hop, pad_mode=pad)) ** 2
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= 1e-5 * ref.max()


@pytest.mark.parametrize("sr,n_fft,n_mels", [(22050, 2048, 128), (16000, 512, 96), (44100, 1024, 40)])
def test_mel_filterbank_matches_librosa(sr: int, n_fft: int, n_mels: int) -> None:
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    np.testing.assert_allclose(F.mel_filterbank(sr, n_fft, n_mels), ref, rtol=1e-5, atol=1e-8)


def test_mfcc_matches_librosa(clip: np.ndarray) -> None:
    ref = librosa.feature.mfcc(y=clip, sr=22050, n_mfcc=20)
    ours = F.mfcc(clip, 22050, 20)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-3  # coefficients span hundreds


def test_power_to_db_matches_librosa() -> None:
    S = np.abs(np.random.default_rng(1).standard_normal((64, 50))).astype(np.float32) ** 2
    np.testing.assert_allclose(F.power_to_db(S), librosa.power_to_db(S), atol=1e-4)
    np.testing.assert_allclose(F.power_to_db(S, top_db=None), librosa.power_to_db(S, top_db=None), atol=1e-4)


def test_logmel_segments_are_slices_of_one_librosa_spectrogram(clip: np.ndarray) -> None:
    spec = F.LogMelSpec()
    feats = spec.extract(clip)
    mel = librosa.feature.melspectrogram(y=clip, sr=22050, n_fft=2048, hop_length=512, n_mels=128)
    ref = librosa.power_to_db(mel, top_db=None)
    assert feats.values.shape[1:] == (128, spec.segment_frames)
    # Within librosa's own meaningful range (80 dB under the peak) values agree to 2e-3 dB; further
    # down, float32 FFT rounding of near-zero bins (~1e-7 of the peak power) moves them by ~0.01 dB.
    audible = ref >= ref.max() - 80.0
    for i in (0, len(feats) // 2, len(feats) - 1):
        s = i * spec.hop_frames
        win = ref[:, s : s + spec.segment_frames]
        mask = audible[:, s : s + spec.segment_frames]
        np.testing.assert_allclose(feats.values[i][mask], win[mask], rtol=1e-4, atol=2e-3)
        assert np.max(np.abs(feats.values[i] - win)) < 0.05
    assert feats.starts[1] == pytest.approx(spec.hop_frames * 512 / 22050)
    assert np.all(feats.ends <= len(clip) / 22050 + 1e-9)


def test_mfcc_segments_are_mean_and_std_per_segment(clip: np.ndarray) -> None:
    spec = F.MfccSegmentSpec()
    feats = spec.extract(clip)
    m = librosa.feature.mfcc(y=clip, sr=22050, n_mfcc=13)
    assert feats.values.shape == (len(feats), 26)
    s = 3 * spec.hop_frames
    w = m[:, s : s + spec.segment_frames]
    np.testing.assert_allclose(feats.values[3], np.concatenate([w.mean(1), w.std(1)]), atol=2e-3)


def test_musicnn_front_end_matches_librosa_recipe() -> None:
    y = tone(5.0, 16000)
    spec = F.MusicnnSpec(band_edge_hz=None)  # musicnn's recipe itself; the band edge is tested below
    mel = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    ref = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    ours = spec.logmel(y)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 2e-3  # float16 rounding of nearly equal inputs may flip a step


def test_resampler_response_matches_single_sines() -> None:
    """The multi-sine measurement of soxr HQ's band edge equals resampling one sine at a time."""
    from genrekit.audio import resample, resampler_response

    r = resampler_response(22050, 16000, 512, first_bin=236)  # 7375 .. 8000 Hz
    t = np.arange(22050) / 22050
    for i, k in enumerate(range(236, 253, 4)):
        f = k * 16000 / 512
        y = resample(np.cos(2 * np.pi * f * t), 22050, 16000)[2000:-2000].astype(np.float64)
        tk = (2000 + np.arange(len(y))) / 16000
        single = 2 * abs(np.mean(y * np.exp(-2j * np.pi * f * tk)))
        assert r[4 * i] == pytest.approx(single, rel=0.02, abs=1e-4), f
    assert r[0] > 0.98 and r[-1] < 1e-3  # flat below 7.4 kHz, stop band at Nyquist
    assert np.all(resampler_response(16000, 16000, 512, 200) == 1.0)  # no resampling, no edge


def test_band_edge_gain_reproduces_a_windowed_sinc_resampler() -> None:
    """soxr HQ + MusicnnSpec's band-edge gains give the log-mel of audio resampled with the
    target filter itself (Kaiser sinc, -6 dB at 7600 Hz, 600 Hz wide, 120 dB), which is the edge
    of the audio behind musicnn's stored taggrams; without the gains the top mels differ."""
    from scipy import signal

    from genrekit.audio import resample

    rng = np.random.default_rng(0)
    x = rng.standard_normal(22050 * 6) * 0.1
    fs = 320 * 22050
    n, beta = signal.kaiserord(120, 600 / (fs / 2))
    h = signal.firwin(n | 1, 7600, window=("kaiser", beta), fs=fs)
    target = F.MusicnnSpec(band_edge_hz=None).logmel(signal.resample_poly(x, 320, 441, window=h).astype(np.float32))
    y16 = resample(x, 22050, 16000)
    ours = F.MusicnnSpec().logmel(y16)
    plain = F.MusicnnSpec(band_edge_hz=None).logmel(y16)
    n = min(len(target), len(ours))
    top = slice(88, 96)  # mels above ~6.9 kHz; the others must be untouched
    err = np.abs(ours[10 : n - 10] - target[10 : n - 10]).mean(0)
    err_plain = np.abs(plain[10 : n - 10] - target[10 : n - 10]).mean(0)
    assert err[top].max() < 0.02, err[top]
    assert err_plain[top].max() > 0.05, err_plain[top]
    np.testing.assert_array_equal(ours[:, :85], plain[:, :85])
    g = F.band_edge_gain(16000, 512, 7600.0, 600.0, 22050)
    assert g.shape == (257,) and np.all(g[:220] == pytest.approx(1.0, abs=1e-3)) and g[-4:].max() < 1e-3
    assert np.all(np.diff(g[220:]) <= 1e-4)  # a low-pass edge: never rises (beyond stop-band noise)


@pytest.mark.parametrize("sr,n_fft,n_mels", [(16000, 512, 96), (22050, 2048, 128), (16000, 256, 128)])
def test_mel_projection_without_blas_equals_the_matmul(sr: int, n_fft: int, n_mels: int) -> None:
    """The even/odd segment-sum projection equals ``power @ filterbank.T``, also for filters with
    no FFT bin (too many mels for the FFT size), a band-edge-weighted filterbank, and a dense
    filterbank that is not triangular (matmul fallback)."""
    rng = np.random.default_rng(0)
    pw = rng.random((40, n_fft // 2 + 1)).astype(np.float32) * 100
    fb = F.mel_filterbank(sr, n_fft, n_mels)
    g = np.linspace(1.0, 0.0, n_fft // 2 + 1) ** 2
    dense = rng.random((n_mels, n_fft // 2 + 1)).astype(np.float32)
    for bank in (fb, (fb * g).astype(np.float32), dense):
        plan = F._mel_plan(bank)
        assert isinstance(plan, np.ndarray) == (bank is dense)
        np.testing.assert_allclose(F._apply_mel_plan(pw, plan, n_mels), pw @ bank.T, rtol=2e-5, atol=1e-4)


def test_short_input_gives_one_padded_segment() -> None:
    feats = F.LogMelSpec().extract(tone(1.0))
    assert feats.values.shape[0] == 1
    assert feats.ends[0] == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("spec", [F.MfccStatsSpec(), F.MfccSegmentSpec(n_mfcc=20), F.LogMelSpec(n_mels=64), F.MusicnnSpec(),
                                  F.MusicnnMfccSpec()])
def test_spec_round_trip(spec: F.FeatureSpec) -> None:
    d = spec.to_dict()
    assert F.spec_from_dict(d) == spec
    assert d["sample_rate"] == spec.sample_rate and "mono" in d


def test_unknown_spec_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown feature spec"):
        F.spec_from_dict({"kind": "nope"})


def test_mfcc_stats_reproduce_features_30_sec_csv(shared_data: Path) -> None:
    """Every mfcc mean/var of all 147 shared clips within 1% of that column's std over the table."""
    table = shared_data / "gtzan-features" / "features_30_sec.csv"
    rows = {r["filename"].rsplit(".", 1)[0]: r for r in csv.DictReader(table.open())}
    spec = F.MfccStatsSpec()
    names = spec.feature_names()
    col_sd = np.array([[float(r[n]) for n in names] for r in rows.values()]).std(axis=0)
    clips = sorted((shared_data / "gtzan-clips").glob("*/*.*"))
    assert len(clips) == 147
    worst = 0.0
    for path in clips:
        ours = spec.extract(load_audio(path, spec.sample_rate)).values[0]
        ref = np.array([float(rows[path.stem][n]) for n in names])
        worst = max(worst, float(np.max(np.abs(ours - ref) / col_sd)))
    assert worst <= 0.01, f"worst deviation {worst:.4f} of a column's std"


def test_constant_padding_is_what_breaks_the_csv_match(shared_data: Path) -> None:
    """Evidence for the ``pad_mode='reflect'`` default: librosa>=0.10's padding misses by > 1%."""
    table = shared_data / "gtzan-features" / "features_30_sec.csv"
    rows = {r["filename"].rsplit(".", 1)[0]: r for r in csv.DictReader(table.open())}
    names = F.MfccStatsSpec().feature_names()
    col_sd = np.array([[float(r[n]) for n in names] for r in rows.values()]).std(axis=0)
    path = clip_by_stem(shared_data / "gtzan-clips", "jazz/jazz.00007")
    y = load_audio(path, 22050)
    ref = np.array([float(rows[path.stem][n]) for n in names])
    dev = {p: np.max(np.abs(F.MfccStatsSpec(pad_mode=p).extract(y).values[0] - ref) / col_sd) for p in ("reflect", "constant")}
    assert dev["reflect"] < 1e-3 < 0.01 < dev["constant"]


def test_musicnn_mfcc_spec_packs_patches_and_slot_statistics(clip: np.ndarray) -> None:
    """Rows 0..186 of each value are MusicnnSpec's patch of the 16 kHz resample; row 187 holds the
    MFCC sufficient statistics of the patch's 1 s slot, so the slots partition the clip's frames
    and all of them together give the whole clip's MFCC mean and variance (= MfccStatsSpec)."""
    from genrekit.audio import resample
    from genrekit.models.default import window_features

    spec = F.MusicnnMfccSpec()
    y = clip[: 12 * 22050]
    feats = spec.extract(y)
    ref = F.MusicnnSpec(band_edge_from_hz=22050).extract(resample(y, 22050, 16000))
    assert feats.values.shape == (len(ref.values), 188, 96)
    np.testing.assert_array_equal(feats.values[:, :187], ref.values)
    np.testing.assert_allclose(feats.starts, ref.starts)
    stats = feats.values[:, 187].astype(np.float64)
    assert not stats[:, 41:].any()
    m = spec.mfcc_frames(y)
    counts = stats[:, 0]
    assert counts.sum() == m.shape[1] and np.all(counts[:-1] == np.diff(np.searchsorted(
        np.arange(m.shape[1]) * 512 / 22050, feats.starts - 1e-9)))
    np.testing.assert_allclose(stats[:, 1:21].sum(0), m.astype(np.float64).sum(1), rtol=1e-5)
    whole = F.MfccStatsSpec().extract(y).values[0]  # [mean, var] interleaved per coefficient
    f = window_features(np.concatenate([np.zeros((len(stats), 50)), stats[:, :41]], axis=1), "ms_mfcc")
    np.testing.assert_allclose(f[100:120], whole[0::2], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f[120:], np.log(whole[1::2]), atol=1e-4)


def test_musicnn_mfcc_block_quantum_keeps_both_grids() -> None:
    """Block-wise prediction cuts inputs on multiples of 5 patch hops: whole samples at 22050 and
    16000 Hz, so every block's patch grid is the input's."""
    spec = F.MusicnnMfccSpec()
    q = spec.block_quantum_samples
    assert q == 107604
    q16 = q * 16000 / 22050
    assert q16 == int(q16) and int(q16) % (61 * 256) == 0
    assert spec.segment_hop_samples == 21521 and spec.edge_margin_samples > spec.segment_hop_samples


def test_musicnn_mfcc_short_input_is_one_patch_holding_every_frame() -> None:
    """A 1.5 s input gives one zero-padded patch whose slot holds all of its MFCC frames."""
    spec = F.MusicnnMfccSpec()
    y = tone(1.5, sr=22050)
    feats = spec.extract(y)
    assert feats.values.shape == (1, 188, 96)
    assert feats.values[0, 187, 0] == 1 + len(y) // 512
    assert feats.ends[0] == pytest.approx(len(y) / 22050)


def test_resampler_response_is_kept_in_the_cache(tmp_path, monkeypatch) -> None:
    """The band-edge correction's measurement is stored once per (rates, n_fft, bin, soxr version):
    later processes read the same numbers; a damaged entry is measured again."""
    from genrekit.audio import resampler_response
    from genrekit.features import _stored_resampler_response

    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path))
    ref = resampler_response(22050, 16000, 512, 236)
    first = _stored_resampler_response(22050, 16000, 512, 236)
    files = list((tmp_path / "features" / "resampler").glob("*.npy"))
    assert len(files) == 1 and np.array_equal(first, ref)
    for damage in (b"damaged", b""):  # np.load raises ValueError, then EOFError
        files[0].write_bytes(damage)
        assert np.array_equal(_stored_resampler_response(22050, 16000, 512, 236), ref)
    assert np.array_equal(np.load(files[0]), ref)  # rewritten
    assert np.array_equal(_stored_resampler_response(22050, 16000, 512, 236), ref)  # now read
