"""Real audio files of every format ``genrekit tag`` writes, made from a shared clip with PyAV and
given rich existing tags with mutagen (title, artist, album, album art, ReplayGain, two genres):
the material the library tests prove "nothing lost" on.

Also the readers the tests compare with: decoded samples (PyAV), the byte range of the audio
frames (MP3 after its ID3v2 tag, FLAC after its metadata blocks), and PyAV's view of the tags
(a second reader, as ffprobe and players built on FFmpeg see them).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from pathlib import Path

import numpy as np

# name -> (suffix, PyAV container format, codec, sample rate)
FORMATS = {
    "mp3-v23": (".mp3", "mp3", "libmp3lame", 22050),
    "mp3-v24": (".mp3", "mp3", "libmp3lame", 22050),
    "flac": (".flac", "flac", "flac", 22050),
    "ogg": (".ogg", "ogg", "vorbis", 22050),
    "opus": (".opus", "ogg", "libopus", 48000),
    "m4a": (".m4a", "ipod", "aac", 22050),
    "wav": (".wav", "wav", "pcm_s16le", 22050),
    "aiff": (".aiff", "aiff", "pcm_s16be", 22050),
}

OLD_GENRES = ["Rock", "Blues"]
TITLE, ARTIST, ALBUM = "Señor Title ✓", "Some Artist", "An Album"
GAIN = "-6.50 dB"
# an 1x1 PNG: album art bytes that must survive byte for byte
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def clip_samples(clip: Path, seconds: float = 4.0) -> tuple[np.ndarray, int]:
    import soundfile as sf

    y, sr = sf.read(str(clip), dtype="float32", frames=int(seconds * 22050), always_2d=True)
    y = y.T
    if y.shape[0] == 1:  # stereo, as most songs are (and FFmpeg's Vorbis encoder needs)
        y = np.vstack([y, y * 0.8])
    return np.ascontiguousarray(y), int(sr)  # [channels, n]


def encode(y: np.ndarray, sr: int, path: Path, fmt: str, codec: str, rate: int) -> None:
    """Encode [channels, n] float32 audio into ``path`` with PyAV (FFmpeg in the wheel); Ogg
    Vorbis with libsndfile's libvorbis instead, since FFmpeg's own Vorbis encoder is experimental
    and writes granule positions that make readers see a quarter second of audio."""
    import av

    if codec == "vorbis":
        import soundfile as sf

        sf.write(str(path), y.T, sr, format="OGG", subtype="VORBIS")
        return

    layout = "mono" if y.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=rate, layout=layout)
        resampler = av.AudioResampler(format=s.codec_context.format.name, layout=layout, rate=rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y), format="fltp", layout=layout)
        frame.sample_rate = sr
        for f in resampler.resample(frame) + resampler.resample(None):
            for packet in s.encode(f):
                out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)


def add_rich_tags(path: Path, kind: str) -> None:
    """Title, artist, album, front cover, ReplayGain and two genres, in each format's own way."""
    import mutagen
    from mutagen.flac import Picture

    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    t = f.tags
    if kind.startswith(("mp3", "wav", "aiff")):
        from mutagen.id3 import APIC, TALB, TCON, TIT2, TPE1, TXXX

        t.add(TIT2(encoding=3, text=[TITLE]))
        t.add(TPE1(encoding=3, text=[ARTIST]))
        t.add(TALB(encoding=3, text=[ALBUM]))
        t.add(TCON(encoding=3, text=list(OLD_GENRES)))
        t.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text=[GAIN]))
        t.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=PNG))
        f.save(v2_version=3 if kind == "mp3-v23" else 4, **({"v1": 0} if kind.startswith("mp3") else {}))
    elif kind in ("flac", "ogg", "opus"):
        t["title"], t["artist"], t["album"] = [TITLE], [ARTIST], [ALBUM]
        t["genre"] = list(OLD_GENRES)
        t["replaygain_track_gain"] = [GAIN]
        pic = Picture()
        pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "cover", PNG
        if kind == "flac":
            f.add_picture(pic)
        else:
            t["metadata_block_picture"] = [base64.b64encode(pic.write()).decode("ascii")]
        f.save()
    elif kind == "m4a":
        from mutagen.mp4 import MP4Cover, MP4FreeForm

        t["\xa9nam"], t["\xa9ART"], t["\xa9alb"] = [TITLE], [ARTIST], [ALBUM]
        t["\xa9gen"] = list(OLD_GENRES)
        t["covr"] = [MP4Cover(PNG, imageformat=MP4Cover.FORMAT_PNG)]
        t["----:com.apple.iTunes:replaygain_track_gain"] = [MP4FreeForm(GAIN.encode())]
        f.save()
    else:
        raise ValueError(kind)


def make_library(clip: Path, folder: Path, kinds: list[str] | None = None) -> dict[str, Path]:
    """One tagged file per format kind, named ``song-<kind><suffix>``."""
    folder.mkdir(parents=True, exist_ok=True)
    y, sr = clip_samples(clip)
    out = {}
    for kind in kinds or list(FORMATS):
        suffix, fmt, codec, rate = FORMATS[kind]
        path = folder / f"song-{kind}{suffix}"
        encode(y, sr, path, fmt, codec, rate)
        add_rich_tags(path, kind)
        out[kind] = path
    return out


# ------------------------------------------------------------------------------------ readers


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def decoded(path: Path) -> np.ndarray:
    """All decoded samples (PyAV, the file's own rate and format), concatenated."""
    import av

    chunks = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            chunks.append(frame.to_ndarray().reshape(-1))
    return np.concatenate(chunks)


def audio_bytes(path: Path) -> bytes:
    """The bytes of the audio frames: an MP3 after its ID3v2 tag, a FLAC after its metadata blocks."""
    data = Path(path).read_bytes()
    if data[:3] == b"ID3":
        size = 0
        for b in data[6:10]:
            size = (size << 7) | (b & 0x7F)
        start = 10 + size + (10 if data[5] & 0x10 else 0)
        end = len(data) - 128 if data[-128:-125] == b"TAG" else len(data)
        return data[start:end]
    if data[:4] == b"fLaC":
        pos = 4
        while True:
            header = data[pos]
            length = struct.unpack(">I", b"\0" + data[pos + 1 : pos + 4])[0]
            pos += 4 + length
            if header & 0x80:
                return data[pos:]
    raise ValueError(f"{path}: not an MP3 with ID3v2 or a FLAC")


def av_tags(path: Path) -> dict[str, str]:
    """Tags as FFmpeg sees them (container and first audio stream), keys lower-cased."""
    import av

    with av.open(str(path)) as c:
        meta = {k.lower(): v for k, v in c.metadata.items()}
        meta.update({k.lower(): v for k, v in c.streams.audio[0].metadata.items()})
    return meta


def other_tags(path: Path) -> dict[str, str]:
    """Every tag except the genre and genrekit's marker, as comparable text (mutagen's view)."""
    import mutagen

    f = mutagen.File(path)
    out = {}
    for key in f.tags.keys():
        if key.upper() in ("TCON", "GENRE", "\xa9GEN", "TXXX:GENREKIT", "GENREKIT", "----:COM.APPLE.ITUNES:GENREKIT"):
            continue
        value = f.tags[key]
        out[str(key)] = repr(value)
    if hasattr(f, "pictures"):
        out["flac-pictures"] = repr([(p.type, p.mime, p.data) for p in f.pictures])
    return out


# --------------------------------------------------------------- small songs and batch results


def songs(folder: Path, n: int) -> list[Path]:
    import soundfile as sf

    from .conftest import tone

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"s{i}.wav"
        sf.write(p, tone(2.0, 22050, 220.0 * (i + 1)), 22050)
        out.append(p)
    return out


def row(p: Path, genre: str, conf: float, error: str = "", **extra) -> dict:
    st = os.stat(p)
    return {"input": str(p.resolve()), "size": st.st_size, "mtime": st.st_mtime, "genre": genre,
            "confidence": conf, "error": error, **extra}


def write_result(folder: Path, *parts: list[dict]) -> Path:
    """Each part becomes one Parquet file of the dataset, in order (part-0, part-1...)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(parts):
        keys = list(dict.fromkeys(k for r in rows for k in r))  # from_pylist takes the first row's keys only
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), folder / f"part-{i}.parquet")
    return folder


# ------------------------------------------------------------------- hand-built ID3v2.3 tags


def v23_frame(fid: bytes, data: bytes, flags: int = 0) -> bytes:
    """One ID3v2.3 frame (plain 32-bit size), built by hand so no library translates it."""
    return fid + struct.pack(">IH", len(data), flags) + data


def v23_tag(frames: list[bytes], padding: int = 0) -> bytes:
    body = b"".join(frames) + bytes(padding)
    n = len(body)
    size = bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
    return b"ID3\x03\x00\x00" + size + body


def v1_tag(title: str, artist: str, album: str, year: str, comment: str, genre: int) -> bytes:
    def field(text: str, n: int) -> bytes:
        return text.encode("latin-1")[:n].ljust(n, b"\0")

    return b"TAG" + field(title, 30) + field(artist, 30) + field(album, 30) + field(year, 4) + field(comment, 30) \
        + bytes([genre])


#: The frames the review found damaged by mutagen's re-rendering: v2.3-only date, volume, size and
#: people frames, the genre "(17)Rock/Pop" (an ID3v1 reference plus a refinement), cover art.
V23_FRAMES = [
    v23_frame(b"TIT2", b"\x00v2 title"),
    v23_frame(b"TPE1", b"\x01" + "Señor ✓".encode("utf-16")),
    v23_frame(b"TYER", b"\x001999"),
    v23_frame(b"TDAT", b"\x000102"),
    v23_frame(b"TRDA", b"\x00Jan 2nd, 1999"),
    v23_frame(b"TSIZ", b"\x00123456"),
    v23_frame(b"RVAD", b"\x03\x10" + bytes([0x12, 0x34, 0x12, 0x34, 0, 0, 0, 0])),
    v23_frame(b"IPLS", b"\x00producer\x00Some One\x00engineer\x00Else\x00"),
    v23_frame(b"TCON", b"\x00(17)Rock/Pop"),
    v23_frame(b"APIC", b"\x00image/png\x00\x03cover\x00" + PNG),
    v23_frame(b"TXXX", b"\x00REPLAYGAIN_TRACK_GAIN\x00-6.50 dB"),
]


def mp3_frames(clip: Path) -> bytes:
    """MPEG audio frames of a few seconds of ``clip`` (FFmpeg's own ID3 tag cut off)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "a.mp3"
        encode(*clip_samples(clip, 2.0), p, "mp3", "libmp3lame", 22050)
        return audio_bytes(p)


def v23_mp3(path: Path, frames_audio: bytes, case: str) -> Path:
    """An MP3 with a hand-built ID3v2.3 tag: ``rich`` (V23_FRAMES, no padding: the tag must grow),
    ``v1`` (a small v2.3 tag with padding plus an ID3v1 tag whose fields v2 lacks), ``damaged``
    (a text frame with an invalid encoding byte, an unknown frame and two TCON frames)."""
    if case == "rich":
        data = v23_tag(V23_FRAMES, padding=0) + frames_audio
    elif case == "v1":
        tag = v23_tag([v23_frame(b"TIT2", b"\x00v2 title"), v23_frame(b"TCON", b"\x00Blues")], padding=512)
        data = tag + frames_audio + v1_tag("v1 title", "v1 artist", "v1 album", "1987", "v1 comment", 17)
    elif case == "damaged":
        frames = [v23_frame(b"TIT2", b"\x00title"), v23_frame(b"TCON", b"\x00Rock"),
                  v23_frame(b"TPE1", b"\x09not a valid encoding"), v23_frame(b"XYZ1", b"\x00\x01\x02private"),
                  v23_frame(b"TCON", b"\x00Pop")]
        data = v23_tag(frames, padding=64) + frames_audio
    else:
        raise ValueError(case)
    path.write_bytes(data)
    return path


def streaming_wav(path: Path, seconds: float = 2.0) -> Path:
    """A WAV as ``ffmpeg -f wav pipe:`` writes it: RIFF and data sizes 0xFFFFFFFF (unknown)."""
    n = int(22050 * seconds)
    pcm = (np.sin(np.arange(n) * 2 * np.pi * 220 / 22050) * 8000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    info = b"INFOISFT" + struct.pack("<I", 14) + b"Lavf60.16.100\0"
    path.write_bytes(b"RIFF" + b"\xff" * 4 + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
                     + b"LIST" + struct.pack("<I", len(info)) + info + b"data" + b"\xff" * 4 + pcm)
    return path


def full_disk_on(monkeypatch, path: Path, fail_at: int):
    """(see below) Returns a function that frees the disk again."""
    return _full_disk_on(monkeypatch, path, fail_at)


def _full_disk_on(monkeypatch, path: Path, fail_at: int):
    """The disk fills while ``path`` (an undo log or journal) is written: from its ``fail_at``-th
    fsync on (the first is its header line) ``os.fsync`` of that file raises ENOSPC, as a full
    disk does for data the kernel could not place. Other files sync as usual."""
    import errno

    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        try:
            mine = os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path)
        except OSError:
            mine = False
        if mine:
            calls["n"] += 1
            if calls["n"] >= fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return lambda: monkeypatch.setattr(os, "fsync", real_fsync)
