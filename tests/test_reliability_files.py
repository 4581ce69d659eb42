"""Reliability against hostile and faulty *files* (issue 16, files half): a container header that
lies about its duration, playlists that make FFmpeg read other files, damaged model files and
checkpoints, file names holding control characters, folders that cannot be read, and decoder
noise in the server log. Every case is built here (``tests/hostile_media.py``), and each test
fails on the code before its fix. A tiny FNN on MFCC segments stands in for musicnn."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genrekit.audio import audio_files_under, header_duration, iter_audio_blocks, quiet_native_stderr
from genrekit.cli.main import main
from genrekit.errors import AudioError, AudioTooLong, GenrekitError, ModelFileError, printable
from genrekit.features import MfccSegmentSpec
from genrekit.models.base import load_model
from genrekit.models.modelfile import DIGEST_KEY, META_KEY, read_model_file, save_model_file
from genrekit.models.notebook import TorchGenreModel, build_model
from genrekit.prediction import Classifier

from .conftest import tone
from .hostile_media import concat_list, damaged_mp3, lying_matroska, mp3_file, playlist_m3u8

SR = 22050
LABELS = ["blues", "jazz", "rock"]
CONFIG = {"arch": "fnn", "hidden": [8], "activation": "relu", "dropout": 0.0, "input_shape": [26], "n_classes": 3}


def _fnn(path: Path, labels: list[str] | None = None, config: dict | None = None) -> Path:
    """A tiny FNN model file on 3 s MFCC segments (loads in milliseconds, reads any audio)."""
    torch.manual_seed(0)
    config = dict(config or CONFIG)
    model = TorchGenreModel(build_model(config), config, labels or LABELS,
                            MfccSegmentSpec(segment_seconds=3.0, hop_seconds=3.0).to_dict(),
                            np.zeros(26, np.float32), np.ones(26, np.float32), info={"name": "tiny"})
    return model.save(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Built once for the module: ~1 s of encoding in all."""
    d = tmp_path_factory.mktemp("hostile")
    secret = mp3_file(d / "secret.mp3", 8.0)
    return {
        "dir": d,
        "model": _fnn(d / "tiny.safetensors"),
        # 90 s of Opus whose Segment Duration (and DURATION tag) claim 10 s
        "lying": lying_matroska(d / "lying.mka", 90.0, 10.0),
        "secret": secret,
        "m3u8": playlist_m3u8(d / "innocent.m3u8", [secret]),
        "concat": concat_list(d / "list.ffconcat", [secret]),
        "wav": _wav(d / "song.wav", 4.0),
        "bad_mp3": damaged_mp3(d / "damaged.mp3", secret),
    }


def _wav(path: Path, seconds: float) -> Path:
    sf.write(path, tone(seconds, SR), SR)
    return path


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------ 1. a header that lies about the length


def test_lying_header_claims_ten_seconds(media):
    """The fixture itself: FFmpeg believes the header (else the tests below would prove nothing)."""
    assert header_duration(media["lying"]) == pytest.approx(10.0)


def test_lying_header_stopped_at_the_limit(media):
    clf = Classifier.load(media["model"])
    with pytest.raises(AudioTooLong) as err:
        clf.predict(media["lying"], name="upload.mka", max_seconds=30.0)
    msg = str(err.value)
    assert msg.startswith("upload.mka: audio is longer than the limit of 30 s") and "\n" not in msg
    # an honest limit is not hit: the whole file, its real length (not the header's 10 s)
    assert clf.predict(media["lying"], max_seconds=120.0).duration_s == pytest.approx(90.0, abs=0.1)


def test_lying_header_decoded_block_by_block(media):
    """Block-wise decoding is chosen by the decoded samples: with 20 s blocks no buffer the model
    sees is longer than a block plus its carried tail, although the header says 10 s."""
    clf = Classifier.load(media["model"], block_seconds=20.0)
    seen: list[int] = []
    features = clf.model.features
    clf.model.features = lambda y: (seen.append(len(y)), features(y))[1]  # type: ignore[method-assign]
    pred = clf.predict(media["lying"])
    assert pred.duration_s == pytest.approx(90.0, abs=0.1)
    assert len(seen) >= 4 and max(seen) <= 30 * SR, seen  # 20 s block + one 3 s segment of carry, rounded up
    assert pred.segments[-1].end_s > 80


def test_iter_audio_blocks_stops_decoding_at_the_limit(media, monkeypatch):
    """Decoding stops at the limit: no more than the limit (plus one decoder frame) is decoded."""
    import genrekit.audio as audio

    decoded = [0]
    frames = audio._av_frames

    def counting(p):
        for chunk, sr in frames(p):
            decoded[0] += chunk.shape[1] / sr
            yield chunk, sr

    monkeypatch.setattr(audio, "_av_frames", counting)
    with pytest.raises(AudioTooLong):
        list(iter_audio_blocks(media["lying"], SR, block_seconds=5.0, max_seconds=12.0))
    assert 12.0 < decoded[0] < 12.5


def test_serve_refuses_lying_upload_with_422(media, tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    import tempfile

    from fastapi.testclient import TestClient

    from genrekit.serve import ServeLimits, create_app

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client = TestClient(create_app(Classifier.load(media["model"]), ServeLimits(max_duration_s=60.0)))
    with client:
        r = client.post("/api/predict", files={"file": ("liar.mka", media["lying"].read_bytes(), "audio/x-matroska")})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "liar.mka: audio is longer than the limit of 60 s (decoding stopped there)"
        r = client.post("/api/predict", files={"file": ("ok.wav", media["wav"].read_bytes(), "audio/wav")})
        assert r.status_code == 200, r.text


# --------------------------------------------------------------- 4. playlists and other indirections


@pytest.mark.parametrize("key, what", [("m3u8", "HLS/M3U playlist"), ("concat", "concat script")])
def test_indirections_refused(media, key, what):
    clf = Classifier.load(media["model"])
    with pytest.raises(AudioError) as err:
        clf.predict(media[key], name="innocent")
    assert what in str(err.value) and str(err.value).startswith("innocent: not an audio file")


def test_m3u8_really_points_at_a_readable_file(media):
    """Without the allow-list FFmpeg's hls demuxer would read the listed local file (the finding)."""
    import av

    with av.open(str(media["m3u8"])) as c:
        assert c.format.name == "hls"
        assert sum(f.samples for f in c.decode(audio=0)) > 44100 * 7


def test_protocol_in_a_file_name_is_not_used(media, tmp_path):
    """A file name that looks like an FFmpeg protocol (``subfile:``/``concat:``) is just a file."""
    weird = tmp_path / f"concat:{media['secret']}|x.mka"
    weird.parent.mkdir(parents=True, exist_ok=True)
    weird.write_bytes(b"\x00" * 64)
    clf = Classifier.load(media["model"])
    with pytest.raises(AudioError, match="not a readable audio file|not an audio file"):
        clf.predict(weird)


def test_predict_cli_refuses_playlist_in_one_line(media, capsys):
    code, out, err = _run_cli(["predict", "--model", str(media["model"]), "--no-progress",
                               str(media["m3u8"]), str(media["wav"])], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0] == (f"genrekit: error: {media['m3u8']}: not an audio file: an HLS/M3U playlist that genrekit "
                        "does not read (only audio containers are decoded)")
    assert "song.wav" in out  # the batch went on


def test_serve_refuses_playlist_upload(media, tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    import tempfile

    from fastapi.testclient import TestClient

    from genrekit.serve import ServeLimits, create_app

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with TestClient(create_app(Classifier.load(media["model"]), ServeLimits())) as client:
        r = client.post("/api/predict", files={"file": ("innocent.m3u8", media["m3u8"].read_bytes(), "audio/x-mpegurl")})
        assert r.status_code == 400 and "HLS/M3U playlist" in r.json()["detail"], r.text
        missing = playlist_m3u8(tmp_path / "probe.m3u8", [tmp_path / "does-not-exist.mp3"])
        r2 = client.post("/api/predict", files={"file": ("probe.m3u8", missing.read_bytes(), "audio/x-mpegurl")})
        assert r2.status_code == 400 and r2.json()["detail"] == r.json()["detail"].replace("innocent", "probe")


# ------------------------------------------------------------------ 6. damaged models and checkpoints


def _rewrite_meta(src: Path, dest: Path, edit) -> Path:
    """A copy of the model file ``src`` whose JSON metadata went through ``edit`` (no checksum:
    like a file written before checksums, or one whose editor dropped it)."""
    from safetensors.torch import save_file

    tensors, meta = read_model_file(src)
    meta = edit(json.loads(json.dumps(meta)))
    save_file(tensors, str(dest), metadata={META_KEY: meta if isinstance(meta, str) else json.dumps(meta)})
    return dest


def _drop(key):
    def edit(m):
        m.pop(key)
        return m
    return edit


def _set(path: list[str], value):
    def edit(m):
        d = m
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
        return m
    return edit


@pytest.mark.parametrize("name, edit, reason", [
    ("list-meta", lambda m: "[1, 2, 3]", "metadata is a JSON list, not an object"),
    ("bad-json", lambda m: "{not json", "metadata is not valid JSON"),
    ("no-config", _drop("config"), "'config' is missing"),
    ("no-labels", _drop("labels"), "'labels' is missing or not a list"),
    ("unknown-spec", _set(["spec", "kind"], "bogus"), "unknown feature spec kind 'bogus'"),
    ("hidden-mismatch", _set(["config", "hidden"], [16]), "tensors do not match the network its config describes"),
    ("short-labels", _set(["labels"], ["blues", "jazz"]), "'labels' names 2 genres but the model gives 3"),
    ("dup-labels", _set(["labels"], ["blues", "jazz", "jazz"]), "names a genre twice"),
])
def test_damaged_model_file_one_line(media, tmp_path, name, edit, reason):
    bad = _rewrite_meta(media["model"], tmp_path / f"{name}.safetensors", edit)
    with pytest.raises(ModelFileError) as err:
        load_model(bad)
    msg = str(err.value)
    assert msg.startswith(f"{bad}: ") and reason in msg and "\n" not in msg, msg


def test_short_labels_blamed_on_the_model_not_the_input(media, tmp_path, capsys):
    bad = _rewrite_meta(media["model"], tmp_path / "short.safetensors", _set(["labels"], ["blues", "jazz"]))
    code, out, err = _run_cli(["predict", "--model", str(bad), "--no-progress", str(media["wav"])], capsys)
    assert code == 1 and out == ""
    assert err.strip() == f"genrekit: error: {bad}: damaged model file: 'labels' names 2 genres but the model gives 3 probabilities"


def test_flipped_tensor_bytes_refused(media, tmp_path):
    data = bytearray(media["model"].read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    data[8 + n + 5] ^= 0x40  # one bit of one weight
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="damaged file: its tensors or metadata do not match the checksum"):
        load_model(bad)


def test_checksum_saved_and_old_files_still_load(media, tmp_path):
    from safetensors import safe_open

    with safe_open(str(media["model"]), framework="pt") as f:
        assert len(f.metadata()[DIGEST_KEY]) == 64
    old = _rewrite_meta(media["model"], tmp_path / "old.safetensors", lambda m: m)  # no checksum, as before
    with safe_open(str(old), framework="pt") as f:
        assert DIGEST_KEY not in f.metadata()
    assert load_model(old).labels == LABELS
    save_model_file(tmp_path / "x.safetensors", {"w": torch.ones(2, dtype=torch.bfloat16)}, {"format": "x"})
    assert read_model_file(tmp_path / "x.safetensors")[1] == {"format": "x"}  # metadata reads back unchanged


def test_default_head_asset_still_loads():
    from genrekit.models.base import model_path

    tensors, meta = read_model_file(model_path("default"))
    assert len(meta["labels"]) == 10


@pytest.mark.parametrize("content", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", "truncated"])
def test_damaged_checkpoint_resume_one_line(tmp_path, content):
    from genrekit.training import CHECKPOINT, TrainConfig, train

    x = np.random.default_rng(0).standard_normal((40, 26)).astype(np.float32)
    y = np.arange(40) % 3
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=8, seed=0)
    train(build_model(CONFIG), x, y, x, y, LABELS, cfg, out_dir=out, log=None)
    ckpt = out / CHECKPOINT
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(GenrekitError) as err:
        train(build_model(CONFIG), x, y, x, y, LABELS, TrainConfig(epochs=3, batch_size=8, seed=0),
              out_dir=out, resume=True, log=None)
    assert str(err.value).startswith(f"{ckpt}: cannot resume: the checkpoint is ")


def test_checkpoint_with_flipped_bytes_refused(tmp_path):
    from genrekit.training import CHECKPOINT, TrainConfig, train

    x = np.random.default_rng(0).standard_normal((40, 26)).astype(np.float32)
    y = np.arange(40) % 3
    out = tmp_path / "run"
    train(build_model(CONFIG), x, y, x, y, LABELS, TrainConfig(epochs=1, batch_size=8, seed=0), out_dir=out, log=None)
    ckpt = out / CHECKPOINT
    data = bytearray(ckpt.read_bytes())
    data[-3] ^= 0x01
    ckpt.write_bytes(bytes(data))
    with pytest.raises(GenrekitError, match="do not match the checksum"):
        train(build_model(CONFIG), x, y, x, y, LABELS, TrainConfig(epochs=2, batch_size=8, seed=0),
              out_dir=out, resume=True, log=None)


# -------------------------------------------------------------------- 9. names shown to people


def test_printable_escapes_controls_and_bidi():
    assert printable("a\nb\tc\x1b[31m\u202egnp.wav") == "a\\nb\\tc\\x1b[31m\\u202egnp.wav"
    assert printable("bad\udcffname.wav") == "bad\ufffdname.wav"
    assert printable("Björk – Jóga.flac") == "Björk – Jóga.flac"


def test_names_escaped_in_table_and_errors_exact_in_jsonl(media, tmp_path, capsys):
    nasty = tmp_path / "row\nsplit\x1b[2J.wav"
    nasty.write_bytes(media["wav"].read_bytes())
    missing = tmp_path / "gone\n\x1b]0;owned\x07.wav"
    code, out, err = _run_cli(["predict", "--model", str(media["model"]), "--no-progress", str(nasty), str(missing)],
                              capsys)
    assert code == 1
    assert "\x1b" not in out + err
    rows = out.strip().splitlines()
    assert len(rows) == 2 and "row\\nsplit\\x1b[2J.wav" in rows[1]  # header + one row, not three lines
    errs = err.strip().splitlines()
    assert errs[0] == f"genrekit: error: {printable(str(missing))}: no such file" and len(errs) == 2
    code, out, _ = _run_cli(["predict", "--model", str(media["model"]), "--format", "jsonl", str(nasty), str(missing)],
                            capsys)
    recs = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["input"] for r in recs] == [str(nasty), str(missing)]  # JSON keeps the names exact


# ----------------------------------------------------- 12. folders, links and decoder noise


def _tree(root: Path) -> Path:
    (root / "a").mkdir(parents=True)
    (root / "locked").mkdir()
    _wav(root / "a" / "one.wav", 2.0)
    _wav(root / "locked" / "two.wav", 2.0)
    return root


def _deny(monkeypatch, locked: Path) -> None:
    """chmod 000 does not stop root: refuse listing ``locked`` the way the OS would."""
    real = os.scandir

    def scandir(path="."):
        if Path(os.fspath(path)) == locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_subfolder_is_reported(tmp_path, monkeypatch):
    root = _tree(tmp_path / "music")
    _deny(monkeypatch, root / "locked")
    problems: list[tuple[Path, str]] = []
    assert audio_files_under(root, problems) == [root / "a" / "one.wav"]
    assert problems == [(root / "locked", "cannot read folder (permission denied)")]
    with pytest.raises(AudioError, match="locked: cannot read folder"):  # training data must not shrink silently
        audio_files_under(root)


def test_predict_reports_locked_folders(media, tmp_path, monkeypatch, capsys):
    root = _tree(tmp_path / "music")
    _deny(monkeypatch, root / "locked")
    code, out, err = _run_cli(["predict", "--model", str(media["model"]), "--no-progress", str(root)], capsys)
    assert code == 1 and "one.wav" in out
    assert f"genrekit: error: {root / 'locked'}: cannot read folder (permission denied)" in err
    _deny(monkeypatch, root)
    code, out, err = _run_cli(["predict", "--model", str(media["model"]), "--no-progress", str(root)], capsys)
    assert err.strip() == f"genrekit: error: {root}: cannot read folder (permission denied)"
    assert "holds no audio files" not in err


def test_symlink_loop_and_dangling_link_say_so(media, tmp_path, capsys):
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "nowhere.wav")
    clf = Classifier.load(media["model"])
    with pytest.raises(AudioError, match="loop.wav: symbolic link loop$"):
        clf.predict(loop)
    with pytest.raises(AudioError, match=r"dangling.wav: broken symbolic link \(to .*nowhere.wav\)$"):
        clf.predict(dangling)
    problems: list[tuple[Path, str]] = []
    audio_files_under(tmp_path, problems)
    assert sorted(r for _, r in problems)[1] == "symbolic link loop"


def test_quiet_native_stderr_from_threads_restores_fd2(tmp_path):
    """fd 2 is process-wide: overlapping users from two threads must leave it as it was."""
    before = os.fstat(2)
    started, release = threading.Barrier(2), threading.Event()

    def worker():
        with quiet_native_stderr():
            started.wait(5)
            release.wait(5)

    def other():
        with quiet_native_stderr():
            started.wait(5)
        release.set()  # leaves first, while the worker is still inside

    threads = [threading.Thread(target=worker), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_serve_log_has_no_libmpg123_noise(media):
    """What ``genrekit serve`` installs: decoder noise dropped, the server's own lines kept."""
    code = (
        "import sys, time, soundfile as sf\n"
        "from genrekit.audio import filter_native_stderr\n"
        "filter_native_stderr()\n"
        f"sf.read({str(media['bad_mp3'])!r})\n"
        "print('INFO: server line', file=sys.stderr, flush=True)\n"
        "time.sleep(0.3)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "INFO: server line" in r.stderr
    assert "libmpg123" not in r.stderr and "Illegal Audio-MPEG-Header" not in r.stderr, r.stderr
    # and without the filter libmpg123 does write there (so the test can fail)
    r = subprocess.run([sys.executable, "-c", code.replace("filter_native_stderr()\n", "")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert "libmpg123" in r.stderr or "Illegal Audio-MPEG-Header" in r.stderr


def test_unreadable_file_says_permission_denied(media, monkeypatch):
    """A file that exists but cannot be opened (root ignores chmod, so the open is refused here)."""
    import builtins

    import genrekit.audio as audio

    def deny(path, *a, **k):
        if Path(path) == media["wav"]:
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *a, **k)

    monkeypatch.setattr(audio, "open", deny, raising=False)
    with pytest.raises(AudioError, match=r"song.wav: permission denied$"):
        Classifier.load(media["model"]).predict(media["wav"])
