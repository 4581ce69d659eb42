"""Audio loading: any common file to a float32 signal at the sample rate a feature spec asks for.

Decoding goes through soundfile (libsndfile: wav, au, flac, ogg/vorbis, mp3) first and falls back to
PyAV, whose wheel ships FFmpeg, for m4a/aac, webm/opus and the rest; no system ffmpeg is needed.
Channels are mixed down by their mean *before* resampling, and resampling uses soxr at "HQ" quality,
which is exactly what ``librosa.load(path, sr=...)`` does in librosa >= 0.10, so features computed
here match librosa's up to float rounding.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.errors import AudioError, AudioTooLong, printable, with_detail

#: File name suffixes that the folder walkers treat as audio.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .au .snd .aif .aiff .aifc .flac .ogg .oga .opus .mp3 .m4a .mp4 .aac .webm .mka .wma".split()
)

#: FFmpeg demuxers PyAV may use: containers that hold their audio themselves. Everything else is
#: refused before its header is read, above all the demuxers that open *other* files or URLs named
#: inside the input (hls/m3u8 playlists, concat scripts, dash manifests, image2 patterns, tee,
#: ...): an uploaded ``innocent.m3u8`` listing ``/home/me/secret.mp3`` would otherwise be decoded.
#: Matched by FFmpeg against each comma-separated part of a demuxer's name ("mov,mp4,m4a,...").
AV_AUDIO_FORMATS = (
    "wav", "w64", "aiff", "au", "caf", "flac", "ogg", "mp3", "aac", "mov", "matroska", "asf",
    "ac3", "eac3", "amr", "amrnb", "amrwb", "ape", "wv", "tta", "mpc", "mpc8", "dts", "truehd",
    "mlp", "voc", "tak", "shn", "oma", "mpegts", "mp4", "m4a", "webm",
)

#: The only I/O protocol FFmpeg may use: the given file itself (names such as ``concat:a|b`` or
#: ``subfile:...`` would otherwise select a protocol that reads other files).
_AV_OPEN_OPTIONS = {"format_whitelist": ",".join(AV_AUDIO_FORMATS), "protocol_whitelist": "file"}

#: First bytes of formats that point at other files, to say what was refused in one line.
_INDIRECTIONS = (
    (re.compile(rb"^\s*#EXTM3U|#EXT-X-", re.M), "an HLS/M3U playlist"),
    (re.compile(rb"^\s*ffconcat version", re.M), "an FFmpeg concat script"),
    (re.compile(rb"<MPD[\s>]"), "a DASH manifest"),
    (re.compile(rb"^\s*\[playlist\]", re.M | re.I), "a PLS playlist"),
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


def audio_files_under(folder: str | os.PathLike[str],
                      problems: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The audio files under ``folder`` (recursive, sorted), hidden ones left out.

    Names starting with '.' (files or any folder below ``folder``) are skipped: they are macOS
    AppleDouble sidecars (``._song.wav``: metadata, not audio), ``.Trash`` or VCS folders, never
    songs, and reporting each as unreadable would bury the real errors. Shared by ``predict`` and
    the dataset loader so both walk folders the same way. Symbolic links to folders are not
    followed (no loops, no escaping the folder); links to files are.

    What cannot be read is never skipped silently: a folder that cannot be listed (permission
    denied, vanished) or an audio name that is a dangling link or a link loop is appended to
    ``problems`` as ``(path, reason)`` when a list is given (``predict`` reports each and goes on),
    else the first one raises :class:`AudioError` (a training set must not shrink unnoticed).
    """
    root = Path(folder)
    found: list[Path] = []

    def problem(path: Path, reason: str) -> None:
        if problems is None:
            raise AudioError(path, reason)
        problems.append((path, reason))

    def onerror(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        problem(where, f"cannot read folder ({_os_reason(exc)})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            f = here / name
            if name.startswith(".") or not is_audio_path(f):
                continue
            try:
                st = os.stat(f)
            except OSError as exc:
                problem(f, _os_reason(exc, f))
                continue
            if stat.S_ISREG(st.st_mode):
                found.append(f)
    return sorted(found)


def _os_reason(exc: OSError, path: Path | None = None) -> str:
    """Why an OS call on ``path`` failed, in words a user can act on."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENOENT and path is not None and os.path.islink(path):
        return f"broken symbolic link (to {printable(os.readlink(path))})"
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: int | None = None
_quiet_log: int | None = None  # the temporary file fd 2 points at meanwhile


class NativeNoise:
    """What C decoders wrote on file descriptor 2 during one :func:`quiet_native_stderr` block.

    Filled when the block ends: ``lines`` holds the distinct lines (undecodable bytes replaced),
    so a failed input's record can say what the decoder said (:meth:`note`) instead of the
    decoder saying it on the user's terminal. Several threads inside blocks at once share the
    one descriptor, so a block may also see a neighbour's lines; commands that decode in one
    thread (predict, batch workers, tag, sort) get exactly their own.
    """

    MAX_BYTES = 64 * 1024  # a decoder that repeats itself for an hour is not worth more

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _read(self, fd: int, start: int) -> None:
        end = os.lseek(fd, 0, os.SEEK_END)
        if end <= start:
            return
        data = os.pread(fd, min(end - start, self.MAX_BYTES), start)
        seen = dict.fromkeys(ln.strip() for ln in data.decode("utf-8", "replace").splitlines())
        self.lines = [ln for ln in seen if ln]

    def note(self, limit: int = 240) -> str:
        """`` (decoder: first line; N more lines)``, or "" when the decoder said nothing: a suffix
        for an error reason, one line, at most about ``limit`` characters."""
        if not self.lines:
            return ""
        first = printable(self.lines[0])
        if len(first) > limit:
            first = first[: limit - 3] + "..."
        more = len(self.lines) - 1
        return f" (decoder: {first}" + (f"; {more} more line{'s' if more > 1 else ''}" if more else "") + ")"


@contextmanager
def quiet_native_stderr() -> Iterator[NativeNoise]:
    """Keep what C libraries (libmpg123, FFmpeg) print straight to file descriptor 2 while a file
    is decoded off the terminal, so a bad input costs exactly one line of our own on stderr; the
    block yields a :class:`NativeNoise` that holds those lines when it ends (fd 2 points at a
    temporary file meanwhile), so the caller can put them into that input's error.

    Python-level writes to ``sys.stderr`` inside the block end up there too, so callers keep their
    own messages outside it. ``GENREKIT_DEBUG=1`` leaves stderr alone (to see what a decoder says).
    Safe from several threads at once: fd 2 is process-wide, so the first thread in redirects it
    and the last one out restores it (a per-thread save/restore would leave it redirected).
    A long-running server uses :func:`filter_native_stderr` instead, which keeps its own log lines.
    """
    global _quiet_depth, _quiet_saved, _quiet_log
    noise = NativeNoise()
    if os.environ.get("GENREKIT_DEBUG"):
        yield noise
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured / replaced stderr: nothing to do
        yield noise
        return
    with _quiet_lock:
        if _quiet_depth == 0:
            import tempfile

            sys.stderr.flush()
            _quiet_saved = os.dup(fd)
            tmp = tempfile.TemporaryFile()  # unlinked at once: nothing is left behind, whatever happens
            _quiet_log = os.dup(tmp.fileno())
            tmp.close()
            os.dup2(_quiet_log, fd)
        _quiet_depth += 1
        log = _quiet_log
        start = os.lseek(log, 0, os.SEEK_END) if log is not None else 0
    try:
        yield noise
    finally:
        with _quiet_lock:
            sys.stderr.flush()
            if log is not None:
                try:
                    noise._read(log, start)
                except OSError:
                    pass
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                os.dup2(_quiet_saved, fd)
                os.close(_quiet_saved)
                _quiet_saved = None
                if _quiet_log is not None:
                    os.close(_quiet_log)
                    _quiet_log = None


#: Lines that libmpg123 (inside libsndfile) prints on fd 2 about damaged MP3 frames.
NATIVE_NOISE = re.compile(rb"^(\[src/libmpg123/[^\]]*\] |Note: (Illegal Audio-MPEG-Header|Trying to resync|"
                          rb"Skipped \d+ bytes|Hit end of)|Warning: .*mpg123)")


def filter_native_stderr(noise: re.Pattern[bytes] = NATIVE_NOISE) -> int:
    """Route file descriptor 2 through a pipe that drops decoder noise and forwards every other line.

    For ``genrekit serve``: requests decode in several threads at once, so fd 2 cannot be pointed
    at /dev/null around each decode (the server's own log lines written meanwhile would vanish),
    yet libmpg123 writes its complaints about every damaged MP3 upload straight to fd 2. Installed
    once for the process; returns the number of the descriptor that now reaches the real stderr.
    """
    sys.stderr.flush()
    real = os.dup(2)
    r, w = os.pipe()
    os.dup2(w, 2)
    os.close(w)

    def pump() -> None:
        with os.fdopen(r, "rb", buffering=0) as src:
            pending = b""
            while chunk := src.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = b"".join(line + b"\n" for line in lines if not noise.match(line))
                if out:
                    os.write(real, out)
            if pending and not noise.match(pending):
                os.write(real, pending)

    thread = threading.Thread(target=pump, name="genrekit-stderr-filter", daemon=True)
    thread.start()

    def drain() -> None:  # at exit: put the real stderr back, let the pump forward what is left
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end, so the pump reads to EOF and stops
        thread.join(2.0)

    import atexit

    atexit.register(drain)
    return real


def _check_file(path: Path) -> None:
    """Refuse what is not a readable, non-empty regular file, saying which (no such file, a link
    loop or a dangling link, a folder, permission denied) instead of a decoder's guess."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AudioError(path, _os_reason(exc, path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a folder, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(path, "not a regular file (a device, pipe or socket)")
    if st.st_size == 0:
        raise AudioError(path, "empty file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise AudioError(path, _os_reason(exc, path)) from None


def _open_av(path: Path):  # -> av.container.InputContainer
    """Open ``path`` with PyAV, allowing only audio container demuxers and the file protocol.

    Why: FFmpeg picks a demuxer from the file's content, not its name, and several demuxers read
    other files or URLs named inside the input. The allow-list (:data:`AV_AUDIO_FORMATS`) is
    checked by FFmpeg after probing and *before* the demuxer reads its header, so a refused
    playlist never opens what it lists. ``file:`` + the absolute path keeps names with colons
    from selecting a protocol.
    """
    import av

    try:
        return av.open("file:" + os.path.abspath(path), options=dict(_AV_OPEN_OPTIONS))
    except (av.error.FFmpegError, OSError, ValueError) as exc:  # type: ignore[attr-defined]
        if getattr(exc, "errno", None) == errno.EINVAL:  # the format allow-list said no
            raise AudioError(path, f"not an audio file: {_sniff_indirection(path) or 'a container format'} "
                                   "that genrekit does not read (only audio containers are decoded)") from None
        raise AudioError(path, "not a readable audio file") from None


def _sniff_indirection(path: Path) -> str | None:
    """What kind of file-that-names-other-files ``path`` looks like, for the refusal message."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    return next((what for pat, what in _INDIRECTIONS if pat.search(head)), None)


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


#: libsndfile's "length unknown" (SF_COUNT_MAX): a chained Ogg whose last page belongs to another
#: stream reports it, and trusting it meant a read loop that never ended and a "418293516410647 s"
#: duration (that count at 22050 Hz).
_SF_UNKNOWN = (1 << 63) - 1

#: More samples per byte of file (per channel) than any codec can store: FLAC's densest frame (a
#: constant subframe of 65535 samples) costs a few bytes, Opus at 6 kbit/s 64 samples a byte. A
#: header claiming more than this is not a length, it is damage.
_MAX_SAMPLES_PER_BYTE = 1 << 16

#: Frames asked of libsndfile per read: a fresh array each time, sliced to what was decoded.
_SF_BLOCK = 1 << 18


def _claimed_frames(frames: int, path: Path) -> int | None:
    """A libsndfile frame count as a *claim*: None when it is unknown or absurd for the file's size.

    Why: this number is only ever a claim (the header's), used to refuse an honestly long file early
    or to show a length; an unknown or impossible one must neither refuse a file ("418293516410647
    s long") nor size anything. Decoding itself never reads it (see :func:`_sf_blocks`)."""
    if frames <= 0 or frames >= _SF_UNKNOWN:
        return None
    try:
        size = os.stat(path).st_size
    except OSError:
        return None
    return frames if frames <= size * _MAX_SAMPLES_PER_BYTE else None


def _sf_blocks(f, blocksize: int = _SF_BLOCK, limit: int | None = None) -> Iterator[np.ndarray]:
    """[channels, n] float32 blocks of an open ``soundfile.SoundFile``, from its position to the end
    of what actually decodes (or ``limit`` frames).

    Why not ``SoundFile.blocks``: it loops over the *header's* frame count and yields slices of one
    buffer made with ``np.empty``, whatever each read returned. A stream that ends early (``head -c
    1000 song.mp3``) then gave 30 s of never-written memory (leftovers of the previously decoded
    file, sometimes NaN), and a chained Ogg whose length libsndfile reports as unknown never ended.
    Here each read gets a new array that ``SoundFile.read`` cuts to the frames libsndfile returned,
    the loop ends when a read returns none, and the header's count is never consulted."""
    got = 0
    while limit is None or got < limit:
        want = blocksize if limit is None else min(blocksize, limit - got)
        data = f.read(frames=want, dtype="float32", always_2d=True)
        n = int(data.shape[0])
        if n == 0 or n > want:  # n > want cannot happen; were it to, the block would not be trusted
            return
        got += n
        yield np.ascontiguousarray(data.T)


def _open_sf(path: Path):  # -> soundfile.SoundFile | None
    """``path`` opened by libsndfile, or None when libsndfile cannot read it or states no usable
    length (unknown or absurd): such files go to PyAV, which decodes every link of a chained Ogg
    instead of libsndfile's first one, and is bounded by the samples it decodes, like every reader."""
    import soundfile as sf

    try:
        f = sf.SoundFile(str(path))
    except Exception:
        return None
    if _claimed_frames(f.frames, path) is None:
        f.close()
        return None
    return f


def _read_soundfile(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    f = _open_sf(path)
    if f is None:
        raise ValueError("not for libsndfile")  # decode() falls back to PyAV
    with f:
        sr = f.samplerate
        start = int(round(offset * sr))
        if start:
            f.seek(min(start, f.frames))
        limit = None if duration is None else int(round(duration * sr))
        blocks = list(_sf_blocks(f, limit=limit))
        data = np.concatenate(blocks, axis=1) if blocks else np.zeros((f.channels, 0), np.float32)
    return data, sr


def _av_frames(path: Path) -> Iterator[tuple[np.ndarray, int]]:
    """Decode with PyAV, yielding ([channels, n] float32, sample_rate) chunks.

    Every chunk has the rate and channel layout of the first decoded frame: a chained stream
    (``cat a.ogg b.ogg``) may change both between links, and a resampler is set up for one input
    format only, so a change flushes the old one and converts the rest to the first link's."""
    import av

    container = _open_av(path)
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioError(path, "no audio stream in file")
        stream = streams[0]
        resampler = None
        source: tuple | None = None
        try:
            for packet_frame in container.decode(stream):
                fmt = (packet_frame.format.name, packet_frame.layout.name, packet_frame.sample_rate)
                if resampler is None:
                    out_layout, out_rate = packet_frame.layout, packet_frame.sample_rate
                if fmt != source:
                    if resampler is not None:
                        for frame in resampler.resample(None):
                            yield frame.to_ndarray().astype(np.float32, copy=False), frame.sample_rate
                    resampler = av.AudioResampler(format="fltp", layout=out_layout, rate=out_rate)
                    source = fmt
                for frame in resampler.resample(packet_frame):
                    yield frame.to_ndarray().astype(np.float32, copy=False), frame.sample_rate
            if resampler is not None:
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


def header_duration(path: str | os.PathLike[str]) -> float | None:
    """The duration the file's header *claims*, in seconds, without decoding; None when it states none.

    A claim only: a hostile or broken header may say 10 s for 30 minutes of audio. Use it to
    refuse early (an honest long file costs nothing) or to show a length, never to let audio
    through a limit or to size a buffer: :func:`iter_audio_blocks` counts the decoded samples.
    """
    p = Path(path)
    _check_file(p)
    try:
        import soundfile as sf

        i = sf.info(str(p))
        frames = _claimed_frames(i.frames, p)
        if frames is not None:
            return frames / i.samplerate
    except Exception:
        pass
    with _open_av(p) as c:
        if not c.streams.audio:
            raise AudioError(p, "no audio stream in file")
        s = c.streams.audio[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        if c.duration is not None:
            return c.duration / 1_000_000
    return None


def audio_info(path: str | os.PathLike[str], max_count_s: float | None = None) -> AudioInfo:
    """Sample rate, channels and duration without decoding the whole file when avoidable.

    The duration is the header's claim (see :func:`header_duration`); streams that state none are
    decoded to count their samples, stopping after ``max_count_s`` when given (the duration then
    reads as just over that bound, enough for a caller's "too long")."""
    p = Path(path)
    _check_file(p)
    try:
        import soundfile as sf

        i = sf.info(str(p))
        frames = _claimed_frames(i.frames, p)
        if frames is not None:
            return AudioInfo(int(i.samplerate), int(i.channels), frames / i.samplerate)
    except Exception:
        pass
    try:
        with _open_av(p) as c:
            if not c.streams.audio:
                raise AudioError(p, "no audio stream in file")
            s = c.streams.audio[0]
            rate, channels = int(s.rate), int(s.channels)
        dur = header_duration(p)
        if dur is None:  # streams without a header duration: count the samples
            n, sr = 0, rate
            for chunk, sr in _av_frames(p):
                n += chunk.shape[1]
                if max_count_s is not None and n > max_count_s * sr:
                    break
            dur = n / sr
        return AudioInfo(rate, channels, float(dur))
    except AudioError:
        raise
    except Exception:
        raise AudioError(p, "not a readable audio file") from None


def _native_chunks(p: Path) -> Iterator[tuple[np.ndarray, int]]:
    """([channels, n] float32, native rate) chunks of the whole file: libsndfile first (when it
    can open the file and states a plausible length), else PyAV. Only decoded samples come out."""
    f = _open_sf(p)
    if f is None:
        yield from _av_frames(p)
        return
    yielded = False
    with f:
        sr = f.samplerate
        blocks = _sf_blocks(f)
        while True:
            try:
                data = next(blocks)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - libsndfile gave up inside the stream (a cut FLAC)
                if yielded:  # audio already handed on: a clear error, never a splice of two decoders
                    raise AudioError(p, with_detail("corrupt or truncated audio", exc)) from None
                break
            yielded = True
            yield data, sr
    yield from _av_frames(p)  # failed before any audio came out: FFmpeg decodes what is there


def iter_audio_blocks(
    path: str | os.PathLike[str], sample_rate: int, block_seconds: float | None = 600.0, mono: bool = True,
    *, max_seconds: float | None = None,
) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of about ``block_seconds`` at ``sample_rate`` (None: one block).

    Driven only by the samples actually decoded, never by what the header claims, so a header that
    lies about the length changes neither the memory bound nor the limit:

    - Decoded chunks are held at the file's own rate until they exceed one block. A file that ends
      first comes back as a single block equal to :func:`load_audio` (one whole-signal resample).
      Longer files are streamed: the resampler keeps its state across blocks
      (soxr.ResampleStream), so the concatenation of the blocks equals a whole-file load up to
      resampler edge effects, and memory stays bounded by the block size whatever the length.
    - ``max_seconds``: as soon as the decoded samples pass it, decoding stops and
      :class:`AudioTooLong` is raised; nothing beyond the limit is decoded or kept.
    """
    import soxr

    p = Path(path)
    _check_file(p)
    stream: soxr.ResampleStream | None = None
    pending: list[np.ndarray] = []
    pending_n = 0
    block = int(block_seconds * sample_rate) if block_seconds else None

    def feed(chunk: np.ndarray, sr: int, last: bool) -> np.ndarray:
        nonlocal stream
        x = _to_mono(chunk) if mono else chunk.T.copy()
        if sr == sample_rate:
            return np.ascontiguousarray(x if mono else x.T, dtype=np.float32)
        if stream is None:
            stream = soxr.ResampleStream(sr, sample_rate, 1 if mono else chunk.shape[0], dtype="float32", quality="HQ")
        out = stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)
        return out if mono else out.T

    def counted() -> Iterator[tuple[np.ndarray, int]]:
        """The native chunks, refused as soon as they pass ``max_seconds`` or hold NaN/inf."""
        n = 0
        for chunk, sr in _native_chunks(p):
            n += chunk.shape[1]
            if max_seconds is not None and n > max_seconds * sr:
                raise AudioTooLong(p, max_seconds)
            if not np.all(np.isfinite(chunk)):
                raise AudioError(p, "audio holds NaN or infinite samples")
            yield chunk, sr

    it = counted()
    # read ahead, at the native rate, until the audio is known to exceed one block
    head: list[tuple[np.ndarray, int]] = []
    head_n = 0.0
    for chunk, sr in it:
        head.append((chunk, sr))
        head_n += chunk.shape[1] * sample_rate / sr
        if block is not None and head_n > block:
            break
    else:  # the file ended within one block: exactly what load_audio returns
        if not head or sum(c.shape[1] for c, _ in head) == 0:
            raise AudioError(p, "file holds no audio samples")
        y = np.concatenate([c for c, _ in head], axis=1)
        yield resample(_to_mono(y) if mono else y, head[0][1], sample_rate)
        return

    def replay() -> Iterator[tuple[np.ndarray, int]]:
        yield from head
        head.clear()
        yield from it

    src = replay()
    prev = next(src, None)
    while prev is not None:
        nxt = next(src, None)
        out = feed(prev[0], prev[1], last=nxt is None)
        prev = nxt
        if out.shape[-1]:
            pending.append(out)
            pending_n += out.shape[-1]
        while pending_n >= block:
            allx = np.concatenate(pending, axis=-1)
            yield allx[..., :block]
            rest = allx[..., block:]
            pending, pending_n = ([rest], rest.shape[-1]) if rest.shape[-1] else ([], 0)
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
