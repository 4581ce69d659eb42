"""Builders of hostile media files for the reliability tests and benchmarks.

A plain importable module (no pytest fixtures) so ``benchmarks/serve.py`` can build the same
files the tests use. Every builder writes real, decodable audio made with PyAV (its wheel ships
FFmpeg with libopus), then lies about it in a few bytes, the way a hostile upload would.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

#: Matroska element IDs (EBML): Segment Info's Duration (a float in TimecodeScale units, by
#: default milliseconds) is what FFmpeg's demuxer reports as the container's duration.
_EBML_DURATION = b"\x44\x89"


def _music_like(n: int, sample_rate: int, start: int) -> np.ndarray:
    """A cheap non-silent signal with some rhythm: a chord plus noise bursts on the beat.

    Deterministic in the absolute sample index ``start`` so blocks join without clicks."""
    t = (start + np.arange(n)) / sample_rate
    chord = 0.15 * (np.sin(2 * np.pi * 110 * t) + np.sin(2 * np.pi * 165 * t) + np.sin(2 * np.pi * 220 * t))
    beat = np.exp(-((t % 0.5) * 30.0))
    rng = np.random.default_rng(start)
    noise = 0.3 * beat * rng.standard_normal(n)
    return (chord + noise).astype(np.float32)


def _encode_music(out, stream, n_total: int, sample_rate: int, block: int) -> None:
    """Encode ``n_total`` samples of ``_music_like`` mono audio into ``stream`` of container
    ``out``, ``block`` samples a frame, then flush the encoder."""
    import av

    pts = 0
    while pts < n_total:
        n = min(block, n_total - pts)
        frame = av.AudioFrame.from_ndarray(_music_like(n, sample_rate, pts)[None, :], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        for packet in stream.encode(frame):
            out.mux(packet)
        pts += n
    for packet in stream.encode(None):
        out.mux(packet)


def opus_matroska(path: str | Path, seconds: float, *, sample_rate: int = 48000, bitrate: int = 16000) -> Path:
    """Write ``seconds`` of mono Opus in Matroska (``.mka``) at ``path``; an honest file."""
    import av

    path = Path(path)
    n_total = int(round(seconds * sample_rate))
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libopus", rate=sample_rate)
        stream.layout = "mono"
        stream.bit_rate = bitrate
        _encode_music(out, stream, n_total, sample_rate, block=sample_rate * 10)
    return path


def rewrite_matroska_duration(path: str | Path, claimed_seconds: float) -> Path:
    """Rewrite, in place, every duration a Matroska file states so it claims ``claimed_seconds``.

    Two places: Segment Info's Duration element (EBML ID 0x4489, an 8-byte big-endian float of
    milliseconds as FFmpeg writes it) and the per-track ``DURATION`` tag FFmpeg adds
    ("HH:MM:SS.nnnnnnnnn", rewritten at the same length). The audio itself is untouched."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    i = data.find(_EBML_DURATION + b"\x88")
    if i < 0:
        raise ValueError(f"{path}: no 8-byte Segment Duration element found")
    data[i + 3 : i + 11] = struct.pack(">d", claimed_seconds * 1000.0)
    tag = b"DURATION"
    j = data.find(tag)
    while j >= 0:
        # TagName "DURATION" then TagString (ID 0x4487, 1-byte size 0x80|len) holding the value
        k = data.find(b"\x44\x87", j)
        if 0 <= k < j + 32:
            size = data[k + 2] & 0x7F
            old = bytes(data[k + 3 : k + 3 + size])
            h, rem = divmod(claimed_seconds, 3600)
            m, s = divmod(rem, 60)
            frac = f"{s:012.9f}"
            new = f"{int(h):02d}:{int(m):02d}:{frac}".encode()
            if len(new) <= len(old):  # FFmpeg stores it NUL-terminated: pad to the same size
                data[k + 3 : k + 3 + size] = new.ljust(len(old), b"\0")
        j = data.find(tag, j + 1)
    path.write_bytes(bytes(data))
    return path


def lying_matroska(path: str | Path, real_seconds: float, claimed_seconds: float, *, bitrate: int = 16000) -> Path:
    """An Opus-in-Matroska file holding ``real_seconds`` of audio whose header claims
    ``claimed_seconds`` (finding 1 of issue 16: a header that lies about the duration must not
    defeat ``--max-duration`` or the memory bound). Returns ``path``."""
    return rewrite_matroska_duration(opus_matroska(path, real_seconds, bitrate=bitrate), claimed_seconds)


def playlist_m3u8(path: str | Path, targets: list[str | Path]) -> Path:
    """An HLS/extended-M3U playlist at ``path`` that points at ``targets`` (local paths or URLs):
    a container format whose demuxer opens *other* files (finding 4 of issue 16)."""
    path = Path(path)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:600", "#EXT-X-MEDIA-SEQUENCE:0"]
    for t in targets:
        lines += ["#EXTINF:600.0,", str(t)]
    lines.append("#EXT-X-ENDLIST")
    path.write_text("\n".join(lines) + "\n")
    return path


def concat_list(path: str | Path, targets: list[str | Path]) -> Path:
    """An FFmpeg ``concat`` demuxer script at ``path`` naming ``targets`` (another indirection)."""
    path = Path(path)
    body = "ffconcat version 1.0\n" + "".join(f"file '{t}'\n" for t in targets)
    path.write_text(body)
    return path


def mp3_file(path: str | Path, seconds: float, *, sample_rate: int = 44100) -> Path:
    """``seconds`` of mono MP3 (PyAV's libmp3lame): a file an HLS playlist may list as a segment."""
    import av

    path = Path(path)
    n_total = int(round(seconds * sample_rate))
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("mp3", rate=sample_rate)
        stream.layout = "mono"
        _encode_music(out, stream, n_total, sample_rate, block=sample_rate)
    return path


def damaged_mp3(path: str | Path, source: str | Path, *, seed: int = 0) -> Path:
    """A copy of the MP3 ``source`` with random bytes sprayed over its frames: libmpg123 decodes
    it with complaints ("Illegal Audio-MPEG-Header", "big_values too large") on file descriptor 2."""
    data = bytearray(Path(source).read_bytes())
    rng = np.random.default_rng(seed)
    for i in range(2000, len(data) - 40, 997):
        data[i : i + 40] = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    Path(path).write_bytes(bytes(data))
    return Path(path)


def chained_ogg(path: str | Path, first_seconds: float = 1.0, second_seconds: float = 10.0,
                sample_rate: int = 22050) -> Path:
    """``cat a.ogg b.ogg > path``: two Ogg Vorbis links (libsndfile's encoder, separate serial
    numbers), a short one then a long noisy one. libsndfile looks for the first link's last page
    only near the end of the file, does not find it behind tens of kB of the second link, and
    states the length as unknown (SF_COUNT_MAX: "418293516410647 s" at 22050 Hz), the file that
    hung the decoder in issue 21. PyAV decodes both links."""
    import soundfile as sf

    path = Path(path)
    a, b = path.with_name(path.stem + ".link-a.ogg"), path.with_name(path.stem + ".link-b.ogg")
    sf.write(str(a), _music_like(int(first_seconds * sample_rate), sample_rate, 0), sample_rate,
             format="OGG", subtype="VORBIS")
    n = int(second_seconds * sample_rate)
    noise = 0.1 * np.random.default_rng(21).standard_normal(n).astype(np.float32)
    sf.write(str(b), _music_like(n, sample_rate, 3) + noise, sample_rate, format="OGG", subtype="VORBIS")
    path.write_bytes(a.read_bytes() + b.read_bytes())
    a.unlink()
    b.unlink()
    return path
