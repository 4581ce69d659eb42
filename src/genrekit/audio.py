"""Audio loading: any common file to a float32 signal at the sample rate a feature spec asks for.

Decoding goes through soundfile (libsndfile: wav, au, flac, ogg/vorbis, mp3) first and falls back to
PyAV, whose wheel ships FFmpeg, for m4a/aac, webm/opus and the rest; no system ffmpeg is needed.
Channels are mixed down by their mean *before* resampling, and resampling uses soxr at "HQ" quality,
which is exactly what ``librosa.load(path, sr=...)`` does in librosa >= 0.10, so features computed
here match librosa's up to float rounding.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AudioError

#: File name suffixes that the folder walkers treat as audio.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .au .snd .aif .aiff .aifc .flac .ogg .oga .opus .mp3 .m4a .mp4 .aac .webm .mka .wma".split()
)


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds before any conversion."""

    sample_rate: int
    channels: int
    duration_s: float


def is_audio_path(path: str | os.PathLike[str]) -> bool:
    """True when the suffix looks like audio (used when walking folders)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def audio_files_under(folder: str | os.PathLike[str]) -> list[Path]:
    """The audio files under ``folder`` (recursive, sorted), hidden ones left out.

    Names starting with '.' (files or any folder below ``folder``) are skipped: they are macOS
    AppleDouble sidecars (``._song.wav``: metadata, not audio), ``.Trash`` or VCS folders, never
    songs, and reporting each as unreadable would bury the real errors. Shared by ``predict`` and
    the dataset loader so both walk folders the same way.
    """
    root = Path(folder)
    return sorted(
        f for f in root.rglob("*")
        if is_audio_path(f) and not any(part.startswith(".") for part in f.relative_to(root).parts) and f.is_file()
    )


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C libraries (libmpg123, FFmpeg) that print warnings straight to file descriptor 2
    while a file is decoded, so a bad input costs exactly one line of our own on stderr.

    Python-level writes to ``sys.stderr`` inside the block are lost too, so callers keep their own
    messages outside it. ``GENREKIT_DEBUG=1`` leaves stderr alone (to see what a decoder says).
    """
    if os.environ.get("GENREKIT_DEBUG"):
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured / replaced stderr: nothing to do
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file")


def _to_mono(y: np.ndarray) -> np.ndarray:
    """Mix [channels, n] down to [n] by the mean, as librosa.to_mono does."""
    return y.mean(axis=0, dtype=np.float32) if y.ndim == 2 else y


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr HQ (librosa's default ``res_type='soxr_hq'``)."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(y, dtype=np.float32)
    import soxr

    if y.ndim == 1:
        out = soxr.resample(y, orig_sr, target_sr, quality="HQ")
    else:  # soxr wants [n, channels]
        out = soxr.resample(y.T, orig_sr, target_sr, quality="HQ").T
    # librosa.resample fixes the length to ceil(n * ratio) (zero-padding soxr's floor): same here
    n = int(np.ceil(y.shape[-1] * target_sr / orig_sr))
    if out.shape[-1] < n:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, n - out.shape[-1])])
    return np.ascontiguousarray(out[..., :n], dtype=np.float32)


def resampler_response(orig_sr: int, target_sr: int, n_fft: int, first_bin: int = 0) -> np.ndarray:
    """Magnitude response of :func:`resample` (soxr HQ) from ``orig_sr`` to ``target_sr`` at the
    rfft bins ``first_bin .. n_fft // 2`` of an ``n_fft``-point grid at ``target_sr``.

    Why: feature specs that must reproduce another pipeline's band edge (musicnn) divide out the
    band edge that genrekit's own resampler already imposed. Measured by resampling one multi-sine
    (Schroeder phases, so it stays inside [-1, 1]) and projecting the output on each sine over
    64 * n_fft samples, a whole number of cycles of every bin frequency (no leakage between them)."""
    k = np.arange(first_bin, n_fft // 2 + 1)
    if orig_sr == target_sr or len(k) == 0:
        return np.ones(len(k))
    freqs = k * target_sr / n_fft
    n = 64 * n_fft
    guard = target_sr // 4  # the resampler's own transients stay outside the analysed stretch
    phases = np.pi * np.arange(len(k)) ** 2 / len(k)
    t = np.arange(int((n + 2 * guard) / target_sr * orig_sr) + 1) / orig_sr
    x = np.cos(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None]).sum(0) / len(k)
    y = resample(x, orig_sr, target_sr).astype(np.float64)[guard : guard + n]
    tk = (guard + np.arange(n)) / target_sr
    proj = np.exp(-2j * np.pi * freqs[:, None] * tk[None, :] - 1j * phases[:, None]) @ y
    return np.abs(proj) * 2 * len(k) / n


def _read_soundfile(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        start = int(round(offset * sr))
        if start:
            f.seek(min(start, f.frames))
        frames = -1 if duration is None else int(round(duration * sr))
        data = f.read(frames=frames, dtype="float32", always_2d=True)
    return data.T, sr


def _av_frames(path: Path) -> Iterator[tuple[np.ndarray, int]]:
    """Decode with PyAV, yielding ([channels, n] float32, sample_rate) chunks."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError):  # type: ignore[attr-defined]
        raise AudioError(path, "not a readable audio file") from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioError(path, "no audio stream in file")
        stream = streams[0]
        resampler = av.AudioResampler(format="fltp")
        try:
            for packet_frame in container.decode(stream):
                for frame in resampler.resample(packet_frame):
                    yield frame.to_ndarray().astype(np.float32, copy=False), frame.sample_rate
            for frame in resampler.resample(None):
                yield frame.to_ndarray().astype(np.float32, copy=False), frame.sample_rate
        except av.error.FFmpegError:  # type: ignore[attr-defined]
            raise AudioError(path, "corrupt or truncated audio") from None


def _read_av(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    chunks: list[np.ndarray] = []
    sr = 0
    skip = None
    need = None
    have = 0
    for chunk, sr in _av_frames(path):
        if skip is None:
            skip = int(round(offset * sr))
            need = None if duration is None else int(round(duration * sr))
        if skip:
            drop = min(skip, chunk.shape[1])
            chunk = chunk[:, drop:]
            skip -= drop
        if need is not None and have + chunk.shape[1] > need:
            chunk = chunk[:, : need - have]
        if chunk.shape[1]:
            chunks.append(chunk)
            have += chunk.shape[1]
        if need is not None and have >= need:
            break
    if not chunks:
        if sr == 0:
            raise AudioError(path, "no decodable audio in file")
        return np.zeros((1, 0), np.float32), sr
    return np.concatenate(chunks, axis=1), sr


def decode(path: str | os.PathLike[str], offset: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a file to ([channels, n] float32, native sample rate); no mixing, no resampling."""
    p = Path(path)
    _check_file(p)
    try:
        return _read_soundfile(p, offset, duration)
    except AudioError:
        raise
    except Exception:  # libsndfile does not know the format (or the file is damaged): try FFmpeg
        pass
    return _read_av(p, offset, duration)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Load ``path`` as float32 at ``sample_rate``: [n] when ``mono`` else [channels, n].

    Raises :class:`AudioError` with a one-line reason for missing, empty, non-audio or damaged files.
    """
    y, sr = decode(path, offset=offset, duration=duration)
    if y.shape[-1] == 0:
        raise AudioError(path, "file holds no audio samples")
    if not np.all(np.isfinite(y)):
        raise AudioError(path, "audio holds NaN or infinite samples")
    if mono:
        y = _to_mono(y)
    return resample(y, sr, sample_rate)


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Sample rate, channels and duration without decoding the whole file when avoidable."""
    p = Path(path)
    _check_file(p)
    try:
        import soundfile as sf

        i = sf.info(str(p))
        if i.frames > 0:
            return AudioInfo(int(i.samplerate), int(i.channels), i.frames / i.samplerate)
    except Exception:
        pass
    import av

    try:
        with av.open(str(p)) as c:
            if not c.streams.audio:
                raise AudioError(p, "no audio stream in file")
            s = c.streams.audio[0]
            dur = None
            if s.duration is not None and s.time_base is not None:
                dur = float(s.duration * s.time_base)
            elif c.duration is not None:
                dur = c.duration / 1_000_000
            if dur is None:  # streams without a header duration: count the samples
                n, sr = 0, s.rate
                for chunk, _sr in _av_frames(p):
                    sr = _sr
                    n += chunk.shape[1]
                dur = n / sr
            return AudioInfo(int(s.rate), int(s.channels), float(dur))
    except AudioError:
        raise
    except Exception:
        raise AudioError(p, "not a readable audio file") from None


def iter_audio_blocks(
    path: str | os.PathLike[str], sample_rate: int, block_seconds: float = 600.0, mono: bool = True
) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of about ``block_seconds`` at ``sample_rate``.

    Memory stays bounded by the block size whatever the file length: decoding is streamed and the
    resampler keeps its state across blocks (soxr.ResampleStream), so the concatenation of the blocks
    equals a whole-file load up to resampler edge effects.
    """
    import soxr

    p = Path(path)
    _check_file(p)
    stream: soxr.ResampleStream | None = None
    pending: list[np.ndarray] = []
    pending_n = 0
    block = int(block_seconds * sample_rate)

    def feed(chunk: np.ndarray, sr: int, last: bool) -> np.ndarray:
        nonlocal stream
        x = _to_mono(chunk) if mono else chunk.T.copy()
        if sr == sample_rate:
            return np.ascontiguousarray(x if mono else x.T, dtype=np.float32)
        if stream is None:
            stream = soxr.ResampleStream(sr, sample_rate, 1 if mono else chunk.shape[0], dtype="float32", quality="HQ")
        out = stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)
        return out if mono else out.T

    def chunks() -> Iterator[tuple[np.ndarray, int]]:
        try:
            import soundfile as sf

            f = sf.SoundFile(str(p))
        except Exception:
            yield from _av_frames(p)
            return
        with f:
            for data in f.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
                yield data.T, f.samplerate

    got_any = False
    it = chunks()
    prev = next(it, None)
    while prev is not None:
        nxt = next(it, None)
        out = feed(prev[0], prev[1], last=nxt is None)
        got_any = got_any or prev[0].shape[1] > 0
        prev = nxt
        if out.shape[-1]:
            pending.append(out)
            pending_n += out.shape[-1]
        while pending_n >= block:
            allx = np.concatenate(pending, axis=-1)
            yield allx[..., :block]
            rest = allx[..., block:]
            pending, pending_n = ([rest], rest.shape[-1]) if rest.shape[-1] else ([], 0)
    if not got_any:
        raise AudioError(p, "file holds no audio samples")
    if pending_n:
        yield np.concatenate(pending, axis=-1)


def check_signal(y: np.ndarray, sample_rate: int, source: object, min_seconds: float = 1.0) -> None:
    """Refuse signals that cannot carry a genre: shorter than ``min_seconds`` or digital silence."""
    check_levels(float(np.max(np.abs(y))) if y.size else 0.0, y.shape[-1], sample_rate, source, min_seconds)


def check_levels(peak: float, n_samples: int, sample_rate: int, source: object, min_seconds: float = 1.0) -> None:
    """:func:`check_signal` from a running peak and length, for signals seen block by block."""
    seconds = n_samples / sample_rate
    if seconds < min_seconds:
        raise AudioError(source, f"too short: {seconds:.2f} s of audio, at least {min_seconds:g} s needed")
    if peak < 1e-4:
        raise AudioError(source, "audio is silent")
