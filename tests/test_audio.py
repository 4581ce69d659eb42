"""Audio loading: formats, channel mix-down, resampling, blocks and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit.audio import audio_info, check_signal, decode, iter_audio_blocks, load_audio
from genrekit.errors import AudioError

from .conftest import tone

librosa = pytest.importorskip("librosa")


def test_load_matches_librosa_load(gtzan_clips: Path) -> None:
    path = gtzan_clips / "blues" / "blues.00009.au"  # the Sun .au on purpose
    for sr in (22050, 16000):
        ours = load_audio(path, sr)
        ref, _ = librosa.load(path, sr=sr)
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        assert np.max(np.abs(ours - ref)) < 1e-6


def test_stereo_is_mixed_by_mean_then_resampled(tmp_path: Path) -> None:
    left, right = tone(2.0, 44100, 220.0), tone(2.0, 44100, 330.0)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    y = load_audio(path, 22050)
    ref, _ = librosa.load(path, sr=22050)
    assert np.max(np.abs(y - ref)) < 1e-6
    both = load_audio(path, 44100, mono=False)
    assert both.shape == (2, 88200)
    np.testing.assert_allclose(load_audio(path, 44100), (left + right) / 2, atol=1e-6)


def test_offset_and_duration(tmp_path: Path) -> None:
    path = tmp_path / "t.flac"
    sf.write(path, tone(4.0, 8000), 8000)
    y = load_audio(path, 8000, offset=1.0, duration=2.0)
    assert len(y) == 16000
    assert audio_info(path).duration_s == pytest.approx(4.0)


def test_pyav_fallback_for_m4a(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    path = tmp_path / "t.m4a"
    y = tone(2.0, 44100)
    with av.open(str(path), "w") as out:
        st = out.add_stream("aac", rate=44100)
        st.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y[None, :], format="fltp", layout="mono")
        frame.sample_rate = 44100
        for p in st.encode(frame):
            out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    z = load_audio(path, 22050)
    assert abs(len(z) - 22050 * 2) < 2048  # codec priming/padding
    assert audio_info(path).duration_s == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("<html>not audio</html>" * 20), "not a readable audio file|no audio stream|no decodable"),
    ],
)
def test_bad_files_raise_one_line(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as err:
        load_audio(path, 22050)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_wav(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    sf.write(good, tone(2.0), 22050)
    bad = tmp_path / "cut.wav"
    bad.write_bytes(good.read_bytes()[:30])
    with pytest.raises(AudioError):
        load_audio(bad, 22050)


def test_check_signal() -> None:
    check_signal(tone(2.0), 22050, "x")
    with pytest.raises(AudioError, match="too short"):
        check_signal(tone(0.5), 22050, "x")
    with pytest.raises(AudioError, match="silent"):
        check_signal(np.zeros(44100, np.float32), 22050, "x")


def test_blocks_concatenate_to_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, tone(25.0, 44100), 44100)
    blocks = list(iter_audio_blocks(path, 16000, block_seconds=4.0))
    assert all(len(b) == 64000 for b in blocks[:-1])
    joined = np.concatenate(blocks)
    whole = load_audio(path, 16000)
    assert abs(len(joined) - len(whole)) <= 2
    n = min(len(joined), len(whole))
    assert np.max(np.abs(joined[100 : n - 100] - whole[100 : n - 100])) < 1e-3


def test_decode_keeps_native_rate(tmp_path: Path) -> None:
    path = tmp_path / "six.wav"
    sf.write(path, np.stack([tone(1.0, 48000)] * 6, axis=1), 48000)
    y, sr = decode(path)
    assert sr == 48000 and y.shape == (6, 48000)


# ------------------------------------------------------------------ issue 21: decoded samples only


def _mp3_and_cut(folder: Path) -> tuple[Path, Path]:
    """A 30 s MP3 and its first 1000 bytes (``head -c 1000 good.mp3 > t.mp3``): the header (an
    Xing frame) still claims 30 s, the bytes hold about 50 ms."""
    from .hostile_media import mp3_file

    good = mp3_file(folder / "good.mp3", 30.0)
    cut = folder / "t.mp3"
    cut.write_bytes(good.read_bytes()[:1000])
    return good, cut


def test_truncated_mp3_gives_only_the_samples_it_decodes(tmp_path: Path) -> None:
    good, cut = _mp3_and_cut(tmp_path)
    assert sf.info(str(cut)).frames == 30 * 44100  # the claim the old block reader filled from memory
    y, sr = decode(cut)
    assert sr == 44100 and 0 < y.shape[-1] < 0.1 * sr and np.all(np.isfinite(y))
    answers = []
    for first in (None, good, cut, good):  # whatever was decoded before it
        if first is not None:
            list(iter_audio_blocks(first, 22050))
        blocks = list(iter_audio_blocks(cut, 22050))
        assert len(blocks) == 1 and np.all(np.isfinite(blocks[0]))
        answers.append(blocks[0])
    assert all(np.array_equal(a, answers[0]) for a in answers)
    np.testing.assert_array_equal(answers[0], load_audio(cut, 22050))
    assert len(answers[0]) <= int(np.ceil(y.shape[-1] * 22050 / 44100))


def _within(seconds: float, fn, *args, **kwargs):
    """``fn(*args)`` in a daemon thread; fail (instead of hanging the suite) when it runs longer."""
    import threading

    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_chained_ogg_with_unknown_length_decodes_every_link_and_ends(tmp_path: Path) -> None:
    from genrekit.audio import header_duration

    from .hostile_media import chained_ogg

    c = chained_ogg(tmp_path / "c.ogg", 1.0, 10.0)
    assert sf.info(str(c)).frames == (1 << 63) - 1  # libsndfile: length unknown
    claim = header_duration(c)
    assert claim is not None and 9.5 < claim < 12  # a claim (PyAV: the last granule), not 418293516410647 s
    assert 9.5 < audio_info(c).duration_s < 12
    blocks = _within(20, lambda: list(iter_audio_blocks(c, 22050, block_seconds=4.0)))
    y = np.concatenate(blocks)
    assert np.all(np.isfinite(y)) and abs(len(y) - 11 * 22050) < 2048  # both links, nothing invented
    whole = _within(20, load_audio, c, 22050)
    assert abs(len(whole) - len(y)) <= 2
    from genrekit.errors import AudioTooLong

    with pytest.raises(AudioTooLong):  # the limits follow the decoded samples
        _within(20, lambda: list(iter_audio_blocks(c, 22050, max_seconds=5.0)))


def test_decoder_fuzz_every_case_ends_with_an_error_or_an_honest_signal(tmp_path: Path) -> None:
    """Truncations at every offset class, chained streams, absurd and zero-length headers, random
    bytes under audio extensions (tests/decoder_fuzz.py; ``scripts/fuzz_decoder.py`` runs random
    cases for longer)."""
    import time

    from .decoder_fuzz import check, fixed_cases

    t0 = time.perf_counter()
    cases = fixed_cases(tmp_path)
    outcomes = [check(c) for c in cases]
    bad = [f"{o.case.kind}: {o.result}" for o in outcomes if o.result.startswith("BAD")]
    assert not bad, "\n".join(bad)
    kinds = {o.result for o in outcomes}
    assert kinds == {"error", "signal"} and len(outcomes) >= 90
    assert time.perf_counter() - t0 < 30  # a few seconds here; a hang fails its case after 10 s
