"""Feature specs and the one audio-to-features path shared by training, evaluation and prediction.

A *spec* is a small frozen dataclass that says everything needed to turn a signal into model input:
sample rate, mono mix-down, STFT and mel settings, segment length and hop. Specs are saved in every
model file and cache key (``to_dict``) and rebuilt with :func:`spec_from_dict`, so a model is always
fed the features it was trained on.

The maths is numpy only and reproduces librosa (``stft``, ``filters.mel`` with Slaney scale and norm,
``power_to_db``, ``feature.mfcc``) to float32 rounding; tests check that against librosa itself.
librosa is not imported here because its first call compiles numba code for seconds, which would
land on every cold ``genrekit predict``. Each track gets one STFT, which is then sliced into segments
(the notebook called librosa once per one-second segment).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

# --------------------------------------------------------------------------------------- primitives


@lru_cache(maxsize=16)
def hann_window(n_fft: int, win_length: int | None = None) -> np.ndarray:
    """Periodic Hann window of ``win_length`` centred in ``n_fft`` (scipy ``get_window('hann')``)."""
    win_length = win_length or n_fft
    n = np.arange(win_length)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    if win_length < n_fft:
        left = (n_fft - win_length) // 2
        w = np.pad(w, (left, n_fft - win_length - left))
    return w.astype(np.float32)


def frame_signal(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """[n_frames, n_fft] strided view of ``y`` (no copy)."""
    n_frames = 1 + (len(y) - n_fft) // hop_length
    return np.lib.stride_tricks.as_strided(
        y, shape=(n_frames, n_fft), strides=(y.strides[0] * hop_length, y.strides[0]), writeable=False
    )


def _framed(y: np.ndarray, n_fft: int, hop_length: int, center: bool, pad_mode: str) -> np.ndarray:
    """Padded (librosa's ``center``) float32 signal cut into [n_frames, n_fft] frames (a view)."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if center:
        y = np.pad(y, n_fft // 2, mode=pad_mode)
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    return frame_signal(y, n_fft, hop_length)


def _power_batches(frames: np.ndarray, window: np.ndarray, batch: int):
    """Yield (first frame, [b, 1 + n_fft//2] |STFT|^2) over frame batches: temporaries stay bounded
    on long inputs, and |X|^2 = re^2 + im^2 skips the sqrt that ``np.abs`` would take."""
    # numpy's FFT (float32 in, complex64 out on numpy >= 2): scipy's is faster on big batches (the
    # features stage of benchmarks/default_model.py: 24 ms with it, 38-40 ms without), but importing
    # scipy.fft cost a good part of every cold start, and the light install has none; with numpy
    # alone both installs compute the very same features
    for i in range(0, frames.shape[0], batch):
        spec = np.fft.rfft(frames[i : i + batch] * window, axis=1)
        yield i, spec.real**2 + spec.imag**2


def power_spectrogram(
    y: np.ndarray,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    max_frames_per_batch: int = 4096,
) -> np.ndarray:
    """|STFT|**power as [1 + n_fft//2, n_frames] float32, like ``abs(librosa.stft(...))**power``."""
    frames = _framed(y, n_fft, hop_length, center, pad_mode)
    out = np.empty((frames.shape[0], n_fft // 2 + 1), dtype=np.float32)
    for i, pw in _power_batches(frames, hann_window(n_fft, win_length), max_frames_per_batch):
        out[i : i + len(pw)] = pw if power == 2.0 else pw ** (power / 2.0)
    return out.T


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asanyarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """[n_mels, 1 + n_fft//2] Slaney-normalised triangular filters, as ``librosa.filters.mel``."""
    fmax = sr / 2.0 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def power_to_db(S: np.ndarray, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """10 log10(S / ref) with a floor, as ``librosa.power_to_db``."""
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(max(amin, ref))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec.astype(np.float32, copy=False)


@lru_cache(maxsize=8)
def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II rows (``scipy.fft.dct(type=2, norm='ortho')``), first ``n_out`` of them."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    d = np.cos(np.pi * k * (2 * n + 1) / (2.0 * n_in)) * np.sqrt(2.0 / n_in)
    d[0] *= 1.0 / np.sqrt(2.0)
    return d.astype(np.float32)


@lru_cache(maxsize=8)
def band_edge_gain(sr: int, n_fft: int, cutoff_hz: float, width_hz: float, resampled_from: int) -> np.ndarray:
    """[1 + n_fft//2] power gains that turn the band edge of genrekit's resampler into another one.

    The target edge is a Kaiser-windowed sinc low-pass (-6 dB at ``cutoff_hz``, ``width_hz`` from
    pass to 120 dB stop band), the shape of the resampler behind musicnn's stored taggrams; the
    edge already imposed by soxr HQ when resampling from ``resampled_from`` Hz
    (:func:`genrekit.audio.resampler_response`) is divided out. Folding the gains into the mel
    filterbank costs nothing per track and works the same on streamed blocks. Bins where genrekit's
    own resampler left less than -80 dB are set to 0 (the target is below -100 dB there)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    # scipy.signal.kaiserord(120, .) + firwin, in numpy (scipy.signal costs ~1 s to import). The
    # windowed-sinc shape depends on width / fs * taps only, so it is designed at a small rate.
    fs, atten = 4.0 * sr, 120.0
    taps = int(np.ceil((atten - 7.95) / (2.285 * np.pi * width_hz / (fs / 2)) + 1)) | 1
    beta = 0.1102 * (atten - 8.7)
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff_hz / fs * np.sinc(2 * cutoff_hz / fs * n) * np.kaiser(taps, beta)
    h /= h.sum()
    target = np.abs(np.exp(-2j * np.pi * np.outer(freqs, n) / fs) @ h)
    first = int(np.searchsorted(freqs, cutoff_hz - width_hz))  # below, both are flat to < 0.01 dB
    edge = np.arange(len(freqs)) >= first
    own = np.ones_like(freqs)
    own[edge] = _stored_resampler_response(resampled_from, sr, n_fft, first)
    gain = np.where(own > 1e-4, target / np.maximum(own, 1e-4), 0.0)
    gain[~edge] = 1.0  # both edges are flat there (< 0.01 dB): leave those bins exactly as they were
    return np.minimum(gain, 1.0) ** 2


def _stored_resampler_response(orig_sr: int, target_sr: int, n_fft: int, first_bin: int) -> np.ndarray:
    """:func:`genrekit.audio.resampler_response`, kept in the user cache (``features/resampler``).

    Why: measuring it (resampling a 2 s multi-sine and projecting it on each bin) took 0.1-0.2 s of
    every cold ``genrekit predict``, for a result that depends only on these four numbers and the
    resampler's version, both in the key. A damaged or unwritable entry is measured again."""
    import hashlib
    import json

    from genrekit.audio import resampler_response
    from genrekit.cache import cache_dir

    try:
        import soxr

        version = str(getattr(soxr, "__version__", "?"))
    except ImportError:  # pragma: no cover - soxr is a core dependency
        version = "none"
    ident = json.dumps(["resampler_response", 1, orig_sr, target_sr, n_fft, first_bin, "soxr HQ", version])
    want = (max(0, n_fft // 2 + 1 - first_bin),)
    f = None
    try:
        f = cache_dir() / "features" / "resampler" / f"{hashlib.sha256(ident.encode()).hexdigest()[:40]}.npy"
        r = np.load(f, allow_pickle=False)
        if r.shape == want and r.dtype == np.float64 and np.all(np.isfinite(r)):
            return r
    except Exception:  # missing, empty, damaged or unreachable: measured again below
        pass
    r = resampler_response(orig_sr, target_sr, n_fft, first_bin)
    if f is None:
        return r
    try:
        from genrekit.models.modelfile import atomic_path

        with atomic_path(f, suffix=".npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(r, np.float64))
    except OSError:  # a read-only cache costs this time on the next start, nothing else
        pass
    return r


def _mel_plan(fb: np.ndarray, dtype: Any = np.float32) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | np.ndarray:
    """How to apply a triangular filterbank [n_mels, n_bins] without BLAS.

    Why: a BLAS matmul here leaves OpenBLAS's worker threads spinning for a while after it
    returns, and on a 2-core machine they then compete with the model's own threads (the musicnn
    forward pass right after such a matmul: 215 ms instead of 138; ``benchmarks/musicnn_forward.py``).
    Triangular filters overlap only their neighbours, so filters of even index cover disjoint
    bin ranges, and so do the odd ones: each half is one per-bin weighting plus a segment sum
    (``np.add.reduceat``). Returns per half (bin weights, segment starts, mel indices); a
    filterbank that is not of this kind gets its dense transpose back (matmul fallback)."""
    nz = fb != 0
    plan = []
    for parity in (0, 1):
        mels = np.arange(parity, fb.shape[0], 2)
        w = fb[mels].sum(0)
        if np.any(nz[mels].sum(0) > 1):
            return np.ascontiguousarray(fb.T)
        rows = [np.flatnonzero(nz[m]) for m in mels]
        keep = np.array([len(r) > 0 for r in rows], dtype=bool)
        starts = np.array([r[0] for r, k in zip(rows, keep, strict=True) if k], dtype=np.intp)
        plan.append((w.astype(dtype), starts, mels[keep]))
    return plan


def _apply_mel_plan(pw: np.ndarray, plan, n_mels: int) -> np.ndarray:
    """[b, n_bins] power spectra -> [b, n_mels] (see :func:`_mel_plan`)."""
    if isinstance(plan, np.ndarray):
        return pw @ plan
    out = np.zeros((pw.shape[0], n_mels), dtype=np.result_type(pw.dtype, plan[0][0].dtype) if plan else np.float32)
    for w, starts, mels in plan:
        if len(starts):
            out[:, mels] = np.add.reduceat(pw * w, starts, axis=1)
    return out


def mel_power(y: np.ndarray, sr: int, n_fft: int, hop_length: int, n_mels: int, pad_mode: str = "constant",
              fmin: float = 0.0, fmax: float | None = None, bin_gain: np.ndarray | None = None) -> np.ndarray:
    """[n_mels, n_frames] mel power spectrogram (``librosa.feature.melspectrogram`` defaults).

    The filterbank is applied batch by batch of frames, so the full linear spectrogram (8x larger
    than the mel one at 128 mels) is never held: faster, and bounded memory on long files.
    ``bin_gain`` ([1 + n_fft//2] power gains, e.g. :func:`band_edge_gain`) is folded into it."""
    frames = _framed(y, n_fft, hop_length, True, pad_mode)
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    if bin_gain is not None:
        fb = fb * bin_gain[None, :].astype(np.float32)
    plan = _mel_plan(fb)
    out = np.empty((frames.shape[0], n_mels), dtype=np.float32)
    for i, pw in _power_batches(frames, hann_window(n_fft), 1024):
        out[i : i + len(pw)] = _apply_mel_plan(pw, plan, n_mels)
    return out.T


def mfcc(y: np.ndarray, sr: int, n_mfcc: int = 20, n_fft: int = 2048, hop_length: int = 512,
         n_mels: int = 128, pad_mode: str = "constant", top_db: float | None = 80.0) -> np.ndarray:
    """[n_mfcc, n_frames] like ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc)``.

    The DCT is an einsum, not a BLAS matmul, for the reason of :func:`_mel_plan`: OpenBLAS's
    threads spin after a matmul and slow the model that runs next (the default model's
    ``benchmarks/default_model.py`` gave 264 ms per 30 s clip with a matmul here, 193-217 ms with
    the einsum, which costs ~0.5 ms)."""
    S_db = power_to_db(mel_power(y, sr, n_fft, hop_length, n_mels, pad_mode=pad_mode), top_db=top_db)
    return np.einsum("ij,jk->ik", dct_matrix(n_mfcc, n_mels), S_db)


def segment_starts(n_frames: int, seg_frames: int, hop_frames: int) -> np.ndarray:
    """First frame of every whole segment; one segment (zero-padded later) when the input is short."""
    if n_frames <= seg_frames:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n_frames - seg_frames + 1, hop_frames, dtype=np.int64)


def _pad_frames(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad a [.., frames] array to at least ``n`` frames along the last axis."""
    if x.shape[-1] >= n:
        return x
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad)


# --------------------------------------------------------------------------------------------- specs


@dataclass
class Features:
    """Model input for one track: ``values[i]`` is segment i, spanning ``starts[i]``..``ends[i]`` s."""

    values: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


_SPECS: dict[str, type[FeatureSpec]] = {}
#: Spec kinds defined beside the model that uses them (imported when a file names them).
SPEC_MODULES = {"audioset_windows": "genrekit.models.audioset_head"}


@dataclass(frozen=True)
class FeatureSpec:
    """Base of all specs. Subclasses set ``kind`` and implement :meth:`extract`."""

    kind: ClassVar[str] = ""
    sample_rate: int = 22050
    mono: bool = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.kind:
            _SPECS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form stored in model files and cache keys."""
        return {"kind": self.kind, **asdict(self)}

    def extract(self, y: np.ndarray) -> Features:  # pragma: no cover - abstract
        """Features of a mono signal already at ``sample_rate``."""
        raise NotImplementedError

    def extract_file(self, path: str | os.PathLike[str]) -> Features:
        """Load ``path`` with this spec's sample rate and mix-down, then :meth:`extract`. Inputs
        that prediction refuses (under 1 s, digital silence) are refused here too, so a training
        or evaluation folder cannot feed the model what it would never be asked to classify."""
        from genrekit.audio import check_signal, load_audio

        y = load_audio(path, self.sample_rate, mono=self.mono)
        check_signal(y, self.sample_rate, path)
        return self.extract(y)

    @property
    def segment_hop_samples(self) -> int:
        """Samples between segment starts; long files are cut into blocks on multiples of it."""
        raise NotImplementedError

    @property
    def segment_samples(self) -> int:
        """Samples one segment spans (the overlap that blockwise processing must carry over)."""
        raise NotImplementedError

    @property
    def block_quantum_samples(self) -> int:
        """Block-wise prediction cuts long inputs only on multiples of this, so every block's
        segment grid is the whole input's: the segment hop, unless that is not a whole number of
        samples of every rate the spec works at (:class:`MusicnnMfccSpec`)."""
        return self.segment_hop_samples

    @property
    def edge_margin_samples(self) -> int:
        """How far (beyond its own span) a segment kept from a block must stay from the block's
        end, so that nothing it depends on reaches the block's zero-padded edge."""
        return 0


def spec_from_dict(d: dict[str, Any]) -> FeatureSpec:
    """Rebuild a spec saved with :meth:`FeatureSpec.to_dict`."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in _SPECS and kind in SPEC_MODULES:
        importlib.import_module(SPEC_MODULES[kind])
    if kind not in _SPECS:
        raise ValueError(f"unknown feature spec kind {kind!r}; known: {sorted(_SPECS)}")
    cls = _SPECS[kind]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class MfccStatsSpec(FeatureSpec):
    """Whole-clip MFCC mean and variance, the ``mfccN_mean`` / ``mfccN_var`` columns of GTZAN's
    ``features_30_sec.csv`` (librosa defaults: n_fft 2048, hop 512, 128 mels, 20 coefficients)."""

    kind: ClassVar[str] = "mfcc_stats"
    n_mfcc: int = 20
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    #: The table was made with librosa < 0.10, whose STFT padded with reflection: "reflect" matches
    #: it to 1e-5 of a column's spread, "constant" (librosa >= 0.10) only to 3e-2 (tests show both).
    pad_mode: str = "reflect"

    def feature_names(self) -> list[str]:
        return [f"mfcc{i + 1}_{s}" for i in range(self.n_mfcc) for s in ("mean", "var")]

    def extract(self, y: np.ndarray) -> Features:
        m = mfcc(y, self.sample_rate, self.n_mfcc, self.n_fft, self.hop_length, self.n_mels, self.pad_mode)
        v = np.stack([m.mean(axis=1), m.var(axis=1)], axis=1).reshape(1, -1)
        return Features(v.astype(np.float32), np.zeros(1), np.array([len(y) / self.sample_rate]))

    @property
    def segment_hop_samples(self) -> int:
        return 0  # one vector per clip: not segmentable

    @property
    def segment_samples(self) -> int:
        return 0


@dataclass(frozen=True)
class _SegmentedSpec(FeatureSpec):
    """Shared framing of the segment specs: STFT frames grouped into fixed-length segments."""

    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    segment_seconds: float = 1.0
    hop_seconds: float = 1.0
    pad_mode: str = "constant"

    @property
    def segment_frames(self) -> int:
        return max(1, int(round(self.segment_seconds * self.sample_rate / self.hop_length)))

    @property
    def hop_frames(self) -> int:
        return max(1, int(round(self.hop_seconds * self.sample_rate / self.hop_length)))

    @property
    def segment_hop_samples(self) -> int:
        return self.hop_frames * self.hop_length

    @property
    def segment_samples(self) -> int:
        return self.segment_frames * self.hop_length

    @property
    def edge_margin_samples(self) -> int:
        return self.n_fft  # one STFT window

    def _times(self, starts: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        t0 = starts * self.hop_length / self.sample_rate
        t1 = np.minimum(t0 + self.segment_frames * self.hop_length / self.sample_rate, n_samples / self.sample_rate)
        return t0, t1


@dataclass(frozen=True)
class MfccSegmentSpec(_SegmentedSpec):
    """Per-segment MFCC statistics: ``n_mfcc`` means then ``n_mfcc`` standard deviations (26 dims by
    default, the notebook's FNN input over 1 s segments). One MFCC matrix per track, then slicing."""

    kind: ClassVar[str] = "mfcc_segments"
    n_mfcc: int = 13

    def extract(self, y: np.ndarray) -> Features:
        m = mfcc(y, self.sample_rate, self.n_mfcc, self.n_fft, self.hop_length, self.n_mels, self.pad_mode)
        m = _pad_frames(m, self.segment_frames)
        starts = segment_starts(m.shape[1], self.segment_frames, self.hop_frames)
        windows = np.stack([m[:, s : s + self.segment_frames] for s in starts])  # [n, n_mfcc, frames]
        v = np.concatenate([windows.mean(axis=2), windows.std(axis=2)], axis=1).astype(np.float32)
        return Features(v, *self._times(starts, len(y)))


@dataclass(frozen=True)
class LogMelSpec(_SegmentedSpec):
    """Log-mel segments [n_mels, segment_frames] for the CNN.

    Defaults: 22.05 kHz, 2048-point window (93 ms) with a 512 hop (23 ms), 128 mels, 3 s segments
    every 1.5 s. Why not the notebook's 1 s / 50 ms: 50 ms hops give 20 frames per second, too coarse
    for rhythm, and one second holds less than a bar of music; 3 s is what musicnn and most tagging
    CNNs use. The dB floor is absolute (``top_db=None``) so a segment's values do not depend on the
    loudest moment elsewhere in the track, which keeps blockwise prediction of long files exact.
    """

    kind: ClassVar[str] = "logmel_segments"
    segment_seconds: float = 3.0
    hop_seconds: float = 1.5

    def extract(self, y: np.ndarray) -> Features:
        mel = mel_power(y, self.sample_rate, self.n_fft, self.hop_length, self.n_mels, pad_mode=self.pad_mode)
        S = power_to_db(mel, top_db=None)
        S = _pad_frames(S, self.segment_frames)
        starts = segment_starts(S.shape[1], self.segment_frames, self.hop_frames)
        v = np.stack([S[:, s : s + self.segment_frames] for s in starts]).astype(np.float32)
        return Features(v, *self._times(starts, len(y)))


@dataclass(frozen=True)
class MusicnnSpec(_SegmentedSpec):
    """musicnn's front end: 16 kHz, n_fft 512, hop 256, 96 mels, mel power cast to float16, then
    log10(10000 x + 1) in float32; patches of 187 frames (~3 s) every 61 frames (~1 s), as
    ``musicnn.extractor.batch_data`` cuts them (musicnn converts 1 s with
    ``librosa.time_to_frames(1, sr=16000, n_fft=512, hop_length=256)`` = floor((16000-256)/256) =
    61, not 62; the stored taggrams match 61 only). Values are [n_patches, 187, 96] (time, mel)."""

    kind: ClassVar[str] = "musicnn"
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    patch_frames: int = 187
    patch_hop_frames: int = 61
    pad_mode: str = "constant"
    #: Band edge of the stored musicnn run's 16 kHz audio (see :func:`band_edge_gain`); ``None``
    #: keeps genrekit's plain soxr HQ edge. Fitted on 6 clips, checked on all 78 (model card).
    band_edge_hz: float | None = 7600.0
    band_edge_width_hz: float = 600.0
    #: Native rate whose soxr HQ edge is divided out (GTZAN's 22050 Hz; 44.1 kHz gives the same
    #: edge, 48 kHz one within 1.1 dB: ``parity_investigation.py --edges``, docs/model_card.md "Investigations").
    band_edge_from_hz: int = 22050
    segment_seconds: float = field(default=187 * 256 / 16000, repr=False)
    hop_seconds: float = field(default=61 * 256 / 16000, repr=False)

    @property
    def segment_frames(self) -> int:
        return self.patch_frames

    @property
    def hop_frames(self) -> int:
        return self.patch_hop_frames

    def logmel(self, y: np.ndarray) -> np.ndarray:
        """[n_frames, n_mels] log-compressed mel spectrogram exactly as musicnn computes it."""
        gain = None
        if self.band_edge_hz is not None:
            gain = band_edge_gain(self.sample_rate, self.n_fft, self.band_edge_hz, self.band_edge_width_hz,
                                  self.band_edge_from_hz)
        mel = mel_power(y, self.sample_rate, self.n_fft, self.hop_length, self.n_mels, pad_mode=self.pad_mode,
                        bin_gain=gain)
        mel = mel.T.astype(np.float16)
        return np.log10(10000.0 * mel.astype(np.float32) + 1.0)

    def extract(self, y: np.ndarray) -> Features:
        rep = self.logmel(y)
        rep = _pad_frames(rep.T, self.patch_frames).T
        starts = segment_starts(rep.shape[0], self.patch_frames, self.patch_hop_frames)
        v = np.stack([rep[s : s + self.patch_frames] for s in starts]).astype(np.float32)
        return Features(v, *self._times(starts, len(y)))


@dataclass(frozen=True)
class MusicnnMfccSpec(FeatureSpec):
    """musicnn patches plus, per patch, the MFCC statistics of its 1 s slot: the input of the
    default model's ``ms_mfcc`` track head (musicnn tag statistics + the whole clip's MFCC mean
    and variance, the ``mfccN_mean`` / ``mfccN_var`` columns of GTZAN's ``features_30_sec.csv``).

    Why two rates: the MFCCs must be librosa's defaults on 22.05 kHz audio (that is how the table
    the head is trained on was made; 16 kHz audio has no content above 8 kHz), and musicnn wants
    16 kHz. The signal is read at ``sample_rate`` (22050), the MFCCs are computed on it, and it is
    resampled to 16 kHz (soxr HQ) for musicnn: the same 22050 -> 16000 step that the band-edge
    correction measures, whatever the file's own rate.

    ``values`` are [n_patches, 188, 96]: rows 0..186 the patch's log-mel frames exactly as
    :class:`MusicnnSpec` gives them, row 187 holds in its first 41 entries the MFCC sufficient
    statistics of the frames whose centres fall in the patch's slot [start_i, start_{i+1}) (the last
    patch's slot runs to the end of the signal): [frame count, 20 sums, 20 sums of squares]. Any
    run of patches therefore gives the mean and variance of exactly its frames, and all of a clip's
    patches give the clip's (``default_model.window_features``). One array per segment keeps the
    statistics with their patch through caching, block-wise prediction and evaluation.

    The dB floor of the MFCCs (``mfcc_top_db`` below the loudest mel bin, as librosa) is taken over
    the analysed signal: the whole input up to a prediction block (300 s by default), so inputs
    longer than that get a per-block floor.
    """

    kind: ClassVar[str] = "musicnn_mfcc"
    sample_rate: int = 22050  # the input's rate here (MusicnnSpec's is musicnn's): hence the field list
    # the musicnn part's settings: MusicnnSpec's defaults, so the two specs cannot drift apart
    musicnn_sample_rate: int = MusicnnSpec.sample_rate
    n_fft: int = MusicnnSpec.n_fft
    hop_length: int = MusicnnSpec.hop_length
    n_mels: int = MusicnnSpec.n_mels
    patch_frames: int = MusicnnSpec.patch_frames
    patch_hop_frames: int = MusicnnSpec.patch_hop_frames
    band_edge_hz: float | None = MusicnnSpec.band_edge_hz
    band_edge_width_hz: float = MusicnnSpec.band_edge_width_hz
    n_mfcc: int = 20
    mfcc_n_fft: int = 2048
    mfcc_hop_length: int = 512
    mfcc_n_mels: int = 128
    mfcc_pad_mode: str = "reflect"  # the table was made with librosa < 0.10 (see MfccStatsSpec)
    mfcc_top_db: float = 80.0
    #: Seconds of audio from a patch's start that the model reads besides the patch itself (the
    #: default model's AudioSet backbone: a 10 s window), so block-wise prediction keeps that much
    #: signal after a kept patch and a window is never cut at a block's end.
    context_seconds: float = 0.0
    #: Patches between the starts of those windows: blocks are cut only at multiples of it, so every
    #: block keeps the whole input's window grid.
    context_stride: int = 1

    @property
    def musicnn(self) -> MusicnnSpec:
        """The musicnn part (at 16 kHz; its band-edge gains assume the 22050 -> 16000 step)."""
        return MusicnnSpec(sample_rate=self.musicnn_sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
                           n_mels=self.n_mels, patch_frames=self.patch_frames,
                           patch_hop_frames=self.patch_hop_frames, band_edge_hz=self.band_edge_hz,
                           band_edge_width_hz=self.band_edge_width_hz, band_edge_from_hz=self.sample_rate)

    @property
    def stat_columns(self) -> int:
        return 1 + 2 * self.n_mfcc

    def _seconds(self, frames: float) -> float:
        return frames * self.hop_length / self.musicnn_sample_rate

    @property
    def segment_hop_samples(self) -> int:
        """The patch hop at ``sample_rate``, rounded (0.976 s = 21520.8 samples at 22050 Hz)."""
        return int(round(self._seconds(self.patch_hop_frames) * self.sample_rate))

    @property
    def segment_samples(self) -> int:
        return int(np.ceil(self._seconds(self.patch_frames) * self.sample_rate))

    @property
    def block_quantum_samples(self) -> int:
        """Smallest whole number of patch hops that is a whole number of samples at both rates
        (5 hops = 107604 samples at 22050 Hz = 78080 at 16 kHz): block-wise prediction cuts long
        inputs only there, so every block's patch grid is the whole input's."""
        hop16 = self.patch_hop_frames * self.hop_length
        g = np.gcd(self.sample_rate, self.musicnn_sample_rate)
        step16 = self.musicnn_sample_rate // g  # 16 kHz samples that map to whole samples at sample_rate
        k = step16 // np.gcd(hop16, step16)
        k = int(np.lcm(k, max(1, int(self.context_stride))))
        return int(k * hop16 * self.sample_rate // self.musicnn_sample_rate)

    @property
    def edge_margin_samples(self) -> int:
        """Distance a patch kept in a block must keep from the block's end: the MFCC window, the
        resampler's reach, and one patch hop, because the last patch of a signal takes the frames to
        its end into its slot (in a block that is not the last, that patch must be left to the next)."""
        context = max(0, int(np.ceil(self.context_seconds * self.sample_rate)) - self.segment_samples)
        return self.mfcc_n_fft + 2048 + self.segment_hop_samples + context

    def mfcc_frames(self, y: np.ndarray) -> np.ndarray:
        """[n_mfcc, n_frames] MFCCs of ``y`` at ``sample_rate`` (librosa defaults, reflect padding)."""
        return mfcc(y, self.sample_rate, self.n_mfcc, self.mfcc_n_fft, self.mfcc_hop_length, self.mfcc_n_mels,
                    self.mfcc_pad_mode, self.mfcc_top_db)

    def slot_stats(self, m: np.ndarray, starts_s: np.ndarray) -> np.ndarray:
        """[n, 41] per-slot sufficient statistics of MFCC frames ``m`` for patches starting at
        ``starts_s`` seconds (see the class docstring)."""
        centres = np.arange(m.shape[1]) * self.mfcc_hop_length / self.sample_rate
        edges = np.searchsorted(centres, np.asarray(starts_s) - 1e-9)
        edges[0] = 0
        edges = np.append(edges, m.shape[1])
        m64 = m.astype(np.float64)
        cs = np.concatenate([np.zeros((1, 2 * self.n_mfcc)), np.cumsum(np.concatenate([m64, m64**2]).T, axis=0)])
        sums = cs[edges[1:]] - cs[edges[:-1]]
        return np.concatenate([np.diff(edges)[:, None].astype(np.float64), sums], axis=1)

    def extract(self, y: np.ndarray) -> Features:
        from genrekit.audio import resample

        mus = self.musicnn
        f = mus.extract(resample(np.asarray(y, np.float32), self.sample_rate, self.musicnn_sample_rate))
        stats = self.slot_stats(self.mfcc_frames(y), f.starts)
        v = np.zeros((len(f.values), self.patch_frames + 1, self.n_mels), np.float32)
        v[:, : self.patch_frames] = f.values
        v[:, self.patch_frames, : self.stat_columns] = stats
        return Features(v, f.starts, np.minimum(f.ends, len(y) / self.sample_rate))
