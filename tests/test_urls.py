"""URL inputs: yt-dlp run for real against a local http.server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from genrekit.prediction import Classifier
from genrekit.urls import UrlError, download_audio, is_url

from .conftest import tone
from .predict_toy import LocalServer, ToyModel


@pytest.fixture()
def site(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    sf.write(root / "song.wav", tone(5, 22050, 220), 22050)
    sf.write(root / "long.wav", np.tile(tone(2, 8000, 300), 40), 8000)  # 80 s at 8 kHz, 1.3 MB
    (root / "song.ogg").write_bytes(b"")
    sf.write(root / "song.ogg", tone(4, 22050, 330), 22050, format="OGG")
    srv = LocalServer(root)
    yield srv
    srv.close()


def test_is_url():
    assert is_url("http://x/y.mp3") and is_url("https://x") and is_url("ftp://x")
    assert not is_url("song.mp3") and not is_url("/a/b.wav") and not is_url("C:/a.wav")


@pytest.mark.parametrize("name", ["song.wav", "song.ogg"])
def test_download_ok(site, tmp_path, name):
    dest = tmp_path / "dl"
    path = download_audio(f"{site.url}/{name}", dest)
    assert path.is_file() and path.parent == dest
    y, sr = sf.read(path)
    assert sr == 22050 and len(y) > sr * 3


def test_download_without_content_length(site, tmp_path):
    path = download_audio(f"{site.url}/nolength/song.wav", tmp_path / "dl")
    assert path.stat().st_size > 100_000


@pytest.mark.parametrize("url,kwargs,reason", [
    ("/missing.wav", {}, "HTTP error 404"),
    ("/page", {}, "web page"),
    ("/long.wav", {"max_bytes": 200_000}, "too large"),  # Content-Length known: refused up front
    ("/nolength/long.wav", {"max_bytes": 200_000}, "too large"),  # no length: stopped while downloading
    ("/long.wav", {"max_duration_s": 60}, "too long"),  # duration known only after download
])
def test_download_errors(site, tmp_path, url, kwargs, reason, capfd):
    dest = tmp_path / "dl"
    full = site.url + url
    with pytest.raises(UrlError) as ei:
        download_audio(full, dest, **kwargs)
    msg = str(ei.value)
    assert msg.startswith(full + ": ") and reason in msg and "\n" not in msg
    assert not dest.exists() or not any(dest.iterdir())  # nothing left behind
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # yt-dlp's own output is silenced


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/song.wav", "file:///etc/passwd", "http:///nohost"])
def test_refuses_other_schemes(url, tmp_path):
    with pytest.raises(UrlError, match="scheme|no host"):
        download_audio(url, tmp_path)


def test_classifier_predicts_url_and_cleans_up(site, tmp_path, monkeypatch):
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    clf = Classifier(ToyModel())
    url = f"{site.url}/song.wav"
    p = clf.predict(url)
    assert p.input == url and 4.9 < p.duration_s < 5.1
    assert list(tmp.iterdir()) == []  # the download's temporary folder is gone
    with pytest.raises(UrlError):
        clf.predict(f"{site.url}/page")
    assert list(tmp.iterdir()) == []
    small = Classifier(ToyModel(), max_bytes=100_000)
    res = dict(small.predict_many([url, f"{site.url}/missing.wav"]))
    assert all(isinstance(r, UrlError) for r in res.values())
