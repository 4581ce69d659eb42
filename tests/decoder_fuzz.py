"""Hostile inputs for the decoder and the check every one of them must pass (issue 21).

A plain importable module (no pytest fixtures) shared by ``tests/test_audio.py`` (a fixed, fast set
of cases) and ``scripts/fuzz_decoder.py`` (seeded random cases for as long as asked).

The promise checked, for each case: decoding ends within a time bound with either an
:class:`~genrekit.errors.AudioError` or a finite signal no longer than what the file can hold, by
three bounds (the tightest that applies): the samples of the honest source(s) the file was cut or
joined from (scaled by the share of bytes kept, for cuts), and never more than
``MAX_SAMPLES_PER_BYTE`` per byte of file. Both readers are checked: :func:`genrekit.audio.decode`
(native rate, what ``load_audio`` uses) and :func:`genrekit.audio.iter_audio_blocks` (what
``predict``, ``serve`` and ``batch`` use).
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .hostile_media import _music_like, chained_ogg
from .library_files import FORMATS, encode

#: Which encoders make the honest sources: name -> (suffix, container, codec, sample rate).
SOURCES = {k: FORMATS[k] for k in ("wav", "flac", "ogg", "opus", "mp3-v24", "m4a", "aiff")}
SOURCE_SECONDS = 1.5
#: The most samples per byte of file any codec stores (``genrekit.audio._MAX_SAMPLES_PER_BYTE``).
MAX_SAMPLES_PER_BYTE = 1 << 16
#: One case must end within this many seconds (the slowest honest case takes a few milliseconds).
CASE_SECONDS = 10.0
#: What a cut may decode beyond its share of the source: codec frames straddle the cut, and Vorbis
#: and Opus pages are larger at the start (headers) than the share of bytes suggests.
SLACK_SECONDS = 0.35
EXTENSIONS = [".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aiff", ".mka", ".webm", ".au"]


@dataclass
class Case:
    """One file to decode and the most samples (at ``rate``) an honest decoder may return for it."""

    path: Path
    kind: str
    max_seconds: float | None  # bound on the decoded length; None: only the bytes bound applies


@dataclass
class Outcome:
    case: Case
    result: str  # "error" (an AudioError), "signal", or "BAD: ..." (the promise broken)
    seconds: float  # decoded length (0 for errors)
    elapsed: float


def make_sources(folder: Path) -> dict[str, tuple[Path, float]]:
    """Encode the honest sources: name -> (path, decoded seconds)."""
    from genrekit.audio import decode

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, float]] = {}
    for name, (suffix, fmt, codec, rate) in SOURCES.items():
        n = int(SOURCE_SECONDS * rate)
        y = _music_like(n, rate, 0)
        y = np.ascontiguousarray(np.vstack([y, 0.8 * y]), dtype=np.float32)
        path = folder / f"src-{name}{suffix}"
        encode(y, rate, path, fmt, codec, rate)
        d, sr = decode(path)
        out[name] = (path, d.shape[-1] / sr)
    return out


def _cut(src: Path, length: int, dest: Path) -> Path:
    dest.write_bytes(src.read_bytes()[:length])
    return dest


def _share(seconds: float, kept: int, size: int) -> float:
    return seconds * kept / size + SLACK_SECONDS


def truncations(sources: dict[str, tuple[Path, float]], folder: Path) -> list[Case]:
    """Every source cut in its header, its first frame, its middle and its last bytes."""
    cases = []
    for name, (src, secs) in sources.items():
        size = src.stat().st_size
        for label, at in [("header-4", 4), ("header-12", 12), ("header-44", 44), ("first-frame-300", 300),
                          ("first-frame-1000", 1000), ("middle", size // 2), ("last-16", size - 16),
                          ("last-1", size - 1)]:
            if 0 < at < size:
                p = _cut(src, at, folder / f"cut-{name}-{label}{src.suffix}")
                cases.append(Case(p, f"truncated {name} at {label}", _share(secs, at, size)))
    return cases


def chains(sources: dict[str, tuple[Path, float]], folder: Path) -> list[Case]:
    """``cat a a > c`` for each format, and a long Ogg link after a short one (libsndfile then
    states an unknown length, SF_COUNT_MAX: the chained Ogg of issue 21 that hung)."""
    cases = []
    for name, (src, secs) in sources.items():
        p = folder / f"chain-{name}{src.suffix}"
        p.write_bytes(src.read_bytes() * 2)
        cases.append(Case(p, f"chained {name} x2", 2 * secs + SLACK_SECONDS))
    c = chained_ogg(folder / "chain-short-long.ogg", 1.0, 10.0)
    cases.append(Case(c, "chained ogg 1 s + 10 s (unknown length)", 11 + SLACK_SECONDS))
    return cases


def _wav_with_sizes(src: Path, dest: Path, riff: int | None, data: int | None) -> Path:
    """A copy of a WAV with its RIFF and/or data chunk sizes rewritten (0xFFFFFFFF: streaming)."""
    b = bytearray(src.read_bytes())
    if riff is not None:
        b[4:8] = struct.pack("<I", riff)
    if data is not None:
        i = b.find(b"data")
        b[i + 4 : i + 8] = struct.pack("<I", data)
    dest.write_bytes(bytes(b))
    return dest


def _flac_total(src: Path, dest: Path, total: int) -> Path:
    """A copy of a FLAC whose STREAMINFO claims ``total`` samples (36 bits)."""
    b = bytearray(src.read_bytes())
    assert b[:4] == b"fLaC"
    at = 8 + 10  # STREAMINFO body: 10 bytes of block/frame sizes, then rate|channels|bps|total
    v = struct.unpack(">Q", bytes(b[at : at + 8]))[0]
    v = (v & ~((1 << 36) - 1)) | (total & ((1 << 36) - 1))
    b[at : at + 8] = struct.pack(">Q", v)
    dest.write_bytes(bytes(b))
    return dest


def headers(sources: dict[str, tuple[Path, float]], folder: Path) -> list[Case]:
    """Zero-length files, a header with no audio, and headers that claim absurd lengths."""
    wav, wsecs = sources["wav"]
    flac, fsecs = sources["flac"]
    cases = [Case(_wav_with_sizes(wav, folder / "huge-riff-data.wav", 0xFFFFFFFF, 0xFFFFFFFF),
                  "wav with streaming sizes 0xFFFFFFFF", wsecs + SLACK_SECONDS),
             Case(_wav_with_sizes(wav, folder / "huge-data.wav", None, 0x7FFFFFF0),
                  "wav whose data chunk claims 2 GB", wsecs + SLACK_SECONDS),
             Case(_wav_with_sizes(wav, folder / "zero-data.wav", None, 0), "wav whose data chunk claims 0 bytes",
                  wsecs + SLACK_SECONDS),
             Case(_flac_total(flac, folder / "huge-total.flac", (1 << 36) - 1),
                  "flac claiming 2^36-1 samples", fsecs + SLACK_SECONDS),
             Case(_flac_total(flac, folder / "small-total.flac", 100), "flac claiming 100 samples",
                  fsecs + SLACK_SECONDS)]
    head = wav.read_bytes()
    i = head.find(b"data") + 8
    (folder / "header-only.wav").write_bytes(head[:i])
    cases.append(Case(folder / "header-only.wav", "wav header, no audio", SLACK_SECONDS))
    for ext in EXTENSIONS:
        p = folder / f"empty{ext}"
        p.write_bytes(b"")
        cases.append(Case(p, f"zero-length {ext}", 0.0))
    return cases


def random_bytes(rng: np.random.Generator, folder: Path, n: int, tag: str = "") -> list[Case]:
    """Files of random bytes (some starting with a real magic number) under audio extensions."""
    magics = [b"", b"RIFF\xff\xff\xff\xffWAVEfmt ", b"fLaC", b"OggS\x00\x02", b"ID3\x03\x00\x00", b"\xff\xfb\x90\x64",
              b"FORM\x00\x00\x10\x00AIFF", b"\x1aE\xdf\xa3", b".snd", b"\x00\x00\x00\x20ftypM4A "]
    cases = []
    for i in range(n):
        size = int(rng.choice([1, 7, 64, 500, 4096, 40000]))
        magic = magics[int(rng.integers(len(magics)))]
        body = magic + rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        ext = EXTENSIONS[int(rng.integers(len(EXTENSIONS)))]
        p = folder / f"random{tag}-{i}{ext}"
        p.write_bytes(body)
        cases.append(Case(p, f"random bytes ({len(body)} B{', magic ' + repr(magic[:4]) if magic else ''}) as {ext}",
                          None))
    return cases


def flipped(rng: np.random.Generator, sources: dict[str, tuple[Path, float]], folder: Path, n: int,
            tag: str = "") -> list[Case]:
    """Honest sources cut at a random byte, with a few random bytes overwritten before the cut."""
    names = sorted(sources)
    cases = []
    for i in range(n):
        name = names[int(rng.integers(len(names)))]
        src, secs = sources[name]
        b = bytearray(src.read_bytes())
        cut = int(rng.integers(1, len(b) + 1))
        b = b[:cut]
        flips = int(rng.integers(0, 4))
        for _ in range(flips):
            j = int(rng.integers(len(b)))
            b[j] = int(rng.integers(256))
        p = folder / f"flip{tag}-{i}-{name}{src.suffix}"
        p.write_bytes(bytes(b))
        # a flipped header byte may change the rate, channels or sample size (an honest, longer decode
        # of a damaged header), so only the bytes bound applies; unflipped cuts keep the share bound
        cases.append(Case(p, f"{name} cut at {cut} of {src.stat().st_size}, {flips} bytes flipped",
                          _share(secs, cut, src.stat().st_size) if not flips else None))
    return cases


#: The lowest native rate a bytes bound assumes for the resampled blocks (libsndfile reads any).
_MIN_RATE = 1000


def _decode_both(path: Path) -> tuple[str, float]:
    """("error"|"signal", decoded seconds) from both readers, or ("BAD: ...", s) when either broke
    the promise in a way only it can see (NaN, more samples than the bytes hold); raises anything
    that is not an AudioError."""
    from genrekit.audio import decode, iter_audio_blocks
    from genrekit.errors import AudioError

    try:
        y, sr = decode(path)
    except AudioError:
        y, sr = None, 0
    try:
        blocks = list(iter_audio_blocks(path, 8000, block_seconds=2.0, max_seconds=600.0))
    except AudioError:
        blocks = None
    if y is None and blocks is None:
        return "error", 0.0
    secs = 0.0
    most = path.stat().st_size * MAX_SAMPLES_PER_BYTE
    if y is not None:
        if not np.all(np.isfinite(y)):
            return "BAD: decode() returned NaN or infinite samples", y.shape[-1] / sr
        if y.shape[-1] > most:
            return f"BAD: decode() returned {y.shape[-1]} samples from {path.stat().st_size} bytes", y.shape[-1] / sr
        secs = y.shape[-1] / sr
    if blocks is not None:
        if not all(np.all(np.isfinite(b)) for b in blocks):
            return "BAD: iter_audio_blocks() returned NaN or infinite samples", 0.0
        n = sum(len(b) for b in blocks)
        if n / 8000 > most / _MIN_RATE:
            return f"BAD: iter_audio_blocks() returned {n / 8000:.1f} s from {path.stat().st_size} bytes", n / 8000
        secs = max(secs, n / 8000)
    return "signal", secs


def check(case: Case, timeout: float = CASE_SECONDS) -> Outcome:
    """Decode ``case`` in a daemon thread (a hang fails the case instead of the whole run)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["r"] = _decode_both(case.path)
        except BaseException as exc:  # noqa: BLE001 - anything but an AudioError breaks the promise
            box["r"] = (f"BAD: {type(exc).__name__}: {str(exc)[:200]}", 0.0)

    t0 = time.perf_counter()
    th = threading.Thread(target=target, daemon=True, name=f"fuzz-{case.path.name}")
    th.start()
    th.join(timeout)
    elapsed = time.perf_counter() - t0
    if th.is_alive():
        return Outcome(case, f"BAD: still decoding after {timeout:g} s", 0.0, elapsed)
    result, secs = box["r"]  # type: ignore[misc]
    if result == "signal" and case.max_seconds is not None and secs > case.max_seconds + 1e-6:
        result = f"BAD: {secs:.3f} s decoded, at most {case.max_seconds:.3f} s possible"
    return Outcome(case, str(result), float(secs), elapsed)


def fixed_cases(folder: Path) -> list[Case]:
    """The suite's set: every truncation class, chains, headers, zero-length and 20 random files."""
    sources = make_sources(folder / "sources")
    cases = truncations(sources, folder) + chains(sources, folder) + headers(sources, folder)
    return cases + random_bytes(np.random.default_rng(21), folder, 20)
