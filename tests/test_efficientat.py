"""EfficientAT mn04 port (``genrekit.backbones.efficientat``) and the backbone registry.

Parity is against the original implementation's stored outputs in ``../shared/weights/efficientat``
(skipped without it); the front end is also checked against an independent float64 rewrite of
the formulas (loops, ``np.hanning``, full complex FFT), and the weights lookup against fake
downloads (no network is ever used here).
"""

from __future__ import annotations

import importlib.util
import io
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from genrekit.backbones import efficientat as E
from genrekit.errors import GenrekitError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reference(efficientat_dir: Path) -> dict[str, np.ndarray]:
    with np.load(efficientat_dir / "mn04_as_reference.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def net(efficientat_dir: Path):
    import torch

    torch.set_num_threads(1)
    return E.load_efficientat(efficientat_dir / E.WEIGHTS_FILE, allow_download=False)


def _waves(ref: dict[str, np.ndarray]) -> np.ndarray:
    return ref["wave_int16_32k"].astype(np.float32) / np.float32(32768.0)


# ------------------------------------------------------------------------------------------
# parity with the original


def test_front_end_matches_the_stored_mel(reference) -> None:
    own = np.stack([E.mel_frontend(w) for w in _waves(reference)])
    assert own.shape == reference["mel"].shape == (3, 128, 500) and own.dtype == np.float32
    d = np.abs(own.astype(np.float64) - reference["mel"])
    assert d.max() <= 2e-4 and d.mean() <= 1e-5  # upstream computes in float32: README expects ~1e-4


def test_network_matches_the_stored_outputs(net, reference) -> None:
    for name, mel in (("stored", reference["mel"]), ("own", np.stack([E.mel_frontend(w) for w in _waves(reference)]))):
        out = E.run_mel(net, mel)
        assert out["logits"].shape == (3, 527) and out["embedding"].shape == (3, 384) and out["hidden"].shape == (3, 512)
        tol = 1e-4 if name == "stored" else 1e-3  # the network alone / the whole path (the bar)
        assert np.abs(out["logits"] - reference["logits"]).max() <= tol, name
        assert np.abs(out["embedding"] - reference["embedding"]).max() <= tol / 10, name
        assert np.abs(out["hidden"] - reference["hidden"]).max() <= tol, name


def test_top5_matches_the_readme_table(net, reference) -> None:
    """The shared README's sanity table (sigmoid of the logits, top 5, rounded to 3 places)."""
    table = {
        "blues.00000": [("Music", 0.918), ("Country", 0.281), ("Blues", 0.205), ("Singing", 0.171), ("Guitar", 0.135)],
        "metal.00000": [("Music", 0.847), ("Heavy metal", 0.462), ("Musical instrument", 0.321),
                        ("Progressive rock", 0.307), ("Guitar", 0.291)],
        "classical.00000": [("Music", 0.592), ("Clarinet", 0.460), ("Musical instrument", 0.318),
                            ("Wind instrument, woodwind instrument", 0.222), ("Brass instrument", 0.175)],
    }  # fmt: skip
    logits = E.run_mel(net, np.stack([E.mel_frontend(w) for w in _waves(reference)]))["logits"]
    probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    for i, name in enumerate(map(str, reference["names"])):
        top = np.argsort(-probs[i])[:5]
        assert [E.AUDIOSET_LABELS[j] for j in top] == [n for n, _ in table[name]], name
        assert np.allclose(probs[i, top], [p for _, p in table[name]], atol=6e-4), name


def _parity_script():
    spec = importlib.util.spec_from_file_location("efficientat_parity", REPO / "scripts" / "efficientat_parity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parity_script_passes_and_fails_on_its_tolerance(efficientat_dir: Path, capsys) -> None:
    mod = _parity_script()
    ref = str(efficientat_dir / "mn04_as_reference.npz")
    assert mod.main(["--reference", ref]) == 0
    assert "PASS" in capsys.readouterr().out
    assert mod.main(["--reference", ref, "--tol", "1e-9"]) == 1  # the float32 port cannot be that close
    assert "FAIL" in capsys.readouterr().out


def test_parity_from_the_gtzan_files(net, reference, gtzan_clips: Path) -> None:
    """From the audio files, resampled as the reference was (scipy resample_poly, int16), the port
    reproduces the original's logits: the whole path, decoding included."""
    res = _parity_script().from_audio(net, reference, gtzan_clips)
    assert res["resample_poly int16"]["logits_max"] <= 1e-3


# ------------------------------------------------------------------------------------------
# the front end against an independent float64 reference of the formulas


def _reference_filterbank() -> np.ndarray:
    """Kaldi's triangular mel banks, written out per filter and bin (not vectorised, np.log)."""
    def mel(f: float) -> float:
        return 1127.0 * np.log(1.0 + f / 700.0)

    lo, hi, n = mel(0.0), mel(15000.0), 128
    step = (hi - lo) / (n + 1)
    fb = np.zeros((n, 513))
    for m in range(n):
        a, b, c = lo + m * step, lo + (m + 1) * step, lo + (m + 2) * step
        for k in range(512):  # bin 512 (Nyquist) stays 0
            x = mel(k * 32000.0 / 1024.0)
            if a < x < c:
                fb[m, k] = (x - a) / (b - a) if x <= b else (c - x) / (c - b)
    return fb


def _reference_mel(y: np.ndarray) -> np.ndarray:
    x = np.asarray(y, np.float64)
    x = np.array([x[i + 1] - 0.97 * x[i] for i in range(len(x) - 1)])
    padded = np.concatenate([x[1:513][::-1], x, x[-513:-1][::-1]])  # reflect, edge sample not repeated
    window = np.concatenate([np.zeros(112), np.hanning(800), np.zeros(112)])  # np.hanning is symmetric
    n_frames = 1 + len(x) // 320
    power = np.empty((513, n_frames))
    for t in range(n_frames):
        spec = np.fft.fft(padded[t * 320 : t * 320 + 1024] * window)[:513]
        power[:, t] = np.abs(spec) ** 2
    return (np.log(_reference_filterbank() @ power + 1e-5) + 4.5) / 5.0


def test_filterbank_matches_the_formula() -> None:
    fb = E.mel_filterbank()
    assert fb.shape == (128, 513) and np.all(fb[:, 512] == 0) and np.all(fb >= 0)
    np.testing.assert_allclose(fb, _reference_filterbank(), atol=1e-9)
    assert fb[:, 481:].sum() == 0  # nothing above 15 kHz (bin 480 = 15,000 Hz is a right edge)


def test_front_end_matches_an_independent_rewrite() -> None:
    rng = np.random.default_rng(26)
    t = np.arange(32000 * 2 + 123) / 32000.0
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 5200 * t) + 0.05 * rng.standard_normal(len(t)))
    mel = E.mel_frontend(y.astype(np.float32))
    ref = _reference_mel(y.astype(np.float32))
    assert mel.shape == ref.shape == (128, E.n_frames(len(y)))
    np.testing.assert_allclose(mel, ref, atol=2e-6)  # float32 output of a float64 computation


def test_frame_counts() -> None:
    assert E.n_frames(160_000) == 500 and E.n_frames(320_000) == 1000
    assert E.mel_frontend(np.zeros(320_000, np.float32)).shape == (128, 1000)
    with pytest.raises(ValueError, match="at least 514 samples"):
        E.mel_frontend(np.zeros(400, np.float32))
    with pytest.raises(ValueError, match="mono"):
        E.mel_frontend(np.zeros((2, 32000), np.float32))


# ------------------------------------------------------------------------------------------
# the network and its weights


def test_state_dict_loads_strictly(efficientat_dir: Path) -> None:
    import torch

    sd = E.load_state(efficientat_dir / E.WEIGHTS_FILE)
    assert len(sd) == E.N_KEYS == 312
    mine = E.efficientat_module().state_dict()
    assert list(mine) == list(sd)  # same names in the same order, none missing or left over
    assert all(mine[k].shape == sd[k].shape for k in sd)
    assert sum(v.numel() for k, v in sd.items() if v.dtype == torch.float32
               and "running" not in k) == 983_599  # the README's parameter count
    del sd["classifier.5.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        E.efficientat_module().load_state_dict(sd, strict=True)


def test_run_windows_batches_a_track(net, reference) -> None:
    y = np.concatenate([_waves(reference).reshape(-1)] * 2)[: 32000 * 25]  # 25 s
    out = E.run_windows(net, y)
    np.testing.assert_array_equal(out["starts"], [0.0, 10.0, 15.0])  # the tail gets a window ending at the end
    assert out["logits"].shape == (3, 527) and out["embedding"].shape == (3, 384) and out["hidden"].shape == (3, 512)
    alone = E.run_mel(net, E.mel_frontend(y[32000 * 15 :]))
    np.testing.assert_allclose(out["logits"][2], alone["logits"][0], atol=1e-4)  # batched = one by one
    chunked = E.run_windows(net, y, batch_size=2)  # long tracks go in bounded chunks: same rows
    np.testing.assert_allclose(chunked["embedding"], out["embedding"], atol=1e-5)
    short = E.run_windows(net, y[: 32000 * 3], hop_s=5.0)
    assert short["logits"].shape == (1, 527) and short["starts"].tolist() == [0.0]
    assert E.window_starts(32000 * 30, 320000, 160000).tolist() == [0, 160000, 320000, 480000, 640000]


def test_labels_ship_with_the_code(efficientat_dir: Path) -> None:
    import csv

    assert len(E.AUDIOSET_LABELS) == 527 and E.AUDIOSET_LABELS[137] == "Music"
    assert [E.label_index(E.GTZAN_CLASSES[g]) for g in sorted(E.GTZAN_CLASSES)] == [
        251, 237, 229, 236, 217, 235, 220, 216, 228, 219]  # blues .. rock
    with pytest.raises(GenrekitError, match="not an AudioSet class"):
        E.label_index("Polka")
    with open(efficientat_dir / "audioset_labels.csv", newline="") as fh:
        assert tuple(r["display_name"] for r in csv.DictReader(fh)) == E.AUDIOSET_LABELS


# ------------------------------------------------------------------------------------------
# finding the weights: flag/env, cache, download checked before use


def _bad_file(tmp_path: Path) -> Path:
    p = tmp_path / E.WEIGHTS_FILE
    p.write_bytes(b"not the weights")
    return p


def test_given_file_with_the_wrong_hash_is_one_line(tmp_path: Path, monkeypatch) -> None:
    bad = _bad_file(tmp_path)
    with pytest.raises(E.WeightsNotFoundError) as exc:
        E.find_weights(bad)
    msg = str(exc.value)
    assert "\n" not in msg and str(bad) in msg and "SHA-256" in msg and "--efficientat-weights" in msg
    monkeypatch.setenv(E.ENV_WEIGHTS, str(tmp_path))  # a folder holding the file
    with pytest.raises(E.WeightsNotFoundError, match=E.ENV_WEIGHTS):
        E.find_weights()
    monkeypatch.setenv(E.ENV_WEIGHTS, str(tmp_path / "missing.pt"))
    with pytest.raises(E.WeightsNotFoundError, match="cannot read"):
        E.find_weights()


def test_offline_error_names_the_variable_and_the_url(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(E.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(E.ENV_NO_DOWNLOAD, raising=False)
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(E.WeightsNotFoundError) as exc:
        E.find_weights(allow_download=False)
    msg = str(exc.value)
    assert "\n" not in msg and E.ENV_WEIGHTS in msg and E.WEIGHTS_URL in msg and "--efficientat-weights" in msg

    def offline(url, timeout):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(E.WeightsNotFoundError) as exc:
        E.find_weights()
    msg = str(exc.value)
    assert "\n" not in msg and E.ENV_WEIGHTS in msg and E.WEIGHTS_URL in msg and "name resolution" in msg
    assert not list((tmp_path / "cache" / "efficientat").iterdir())  # no temp file left behind

    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "blocked"))
    with pytest.raises(E.WeightsNotFoundError, match="cannot write to") as exc:
        E.find_weights()
    assert "\n" not in str(exc.value) and E.ENV_WEIGHTS in str(exc.value)


def _serve(monkeypatch, payload: bytes) -> list[str]:
    asked: list[str] = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    return asked


def test_download_is_checked_before_use_then_cached(efficientat_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(E.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(E.ENV_NO_DOWNLOAD, raising=False)
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "efficientat" / E.WEIGHTS_FILE
    asked = _serve(monkeypatch, b"<html>rate limited</html>")  # a wrong file from the server
    with pytest.raises(E.WeightsNotFoundError, match="SHA-256"):
        E.find_weights()
    assert asked == [E.WEIGHTS_URL] and not list(target.parent.iterdir())  # neither kept nor half-written

    asked = _serve(monkeypatch, (efficientat_dir / E.WEIGHTS_FILE).read_bytes())
    assert E.find_weights() == target and E.sha256_file(target) == E.WEIGHTS_SHA256
    assert asked == [E.WEIGHTS_URL] and [p.name for p in target.parent.iterdir()] == [E.WEIGHTS_FILE]
    assert E.find_weights() == target and len(asked) == 1  # second time: the cache, no download

    target.write_bytes(b"damaged")  # a damaged cached copy is fetched again, atomically
    assert E.find_weights() == target and len(asked) == 2 and E.sha256_file(target) == E.WEIGHTS_SHA256


def test_cli_flag_reaches_the_lookup_and_is_undone(tmp_path: Path, monkeypatch) -> None:
    from genrekit.cli import main as cli

    monkeypatch.delenv(E.ENV_WEIGHTS, raising=False)
    bad = _bad_file(tmp_path)
    seen: list[str] = []

    def fake_run(args) -> int:
        seen.append(str(E.find_weights()))  # what a command that loads mn04 would do
        return 0

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert "--efficientat-weights" not in parser._subparsers._group_actions[0].choices["info"].format_help()
    predict = parser._subparsers._group_actions[0].choices["predict"]
    predict.set_defaults(func=fake_run)
    assert "--efficientat-weights" in predict.format_help()
    rc = cli.main(["predict", "--efficientat-weights", str(bad), "x.wav"])
    assert rc == 1 and not seen  # wrong hash: one-line error, exit 1
    assert os.environ.get(E.ENV_WEIGHTS) is None  # the environment is left as found


# ------------------------------------------------------------------------------------------
# the registry


def test_registry_lists_both_backbones() -> None:
    from genrekit.backbones import BACKBONES, get_backbone, list_backbones

    assert list_backbones() == ["efficientat_mn04", "musicnn_msd"]
    eat = get_backbone("efficientat_mn04")
    assert eat.sha256 == E.WEIGHTS_SHA256 and eat.size_bytes == E.WEIGHTS_BYTES and eat.sample_rate == 32000
    assert "MIT" in eat.licence and eat.weights_url.startswith("https://github.com/fschmid56/EfficientAT/releases/")
    assert eat.outputs == {k: (w, eat.outputs[k][1]) for k, w in (("logits", 527), ("embedding", 384), ("hidden", 512))}
    assert eat.runner() is E.run_windows and len(eat.labels) == 527
    msd = BACKBONES["musicnn_msd"]
    assert msd.sample_rate == 16000 and "ISC" in msd.licence and len(msd.labels) == 50
    from genrekit.backbones.musicnn import run_patches

    assert msd.runner() is run_patches
    with pytest.raises(GenrekitError, match="unknown backbone.*efficientat_mn04"):
        get_backbone("vggish")


def test_registry_loads_efficientat(efficientat_dir: Path) -> None:
    from genrekit.backbones import get_backbone

    net = get_backbone("efficientat_mn04").load()  # GENREKIT_EFFICIENTAT_WEIGHTS -> the shared copy
    assert net is E.load_efficientat(efficientat_dir / E.WEIGHTS_FILE) and not net.training


def test_mel_product_equals_the_dense_one() -> None:
    """The front end's BLAS-free, scipy-free product sums the same non-zero terms as the dense one."""
    assert isinstance(E._filterbank_plan(), list)  # even and odd filters disjoint: the fast layout
    rng = np.random.default_rng(0)
    power = rng.random((37, 513))
    np.testing.assert_allclose(E._mel_power(power), E.mel_filterbank() @ power.T, rtol=1e-12, atol=1e-12)
