"""EfficientAT ``mn04_as`` (Schmid, Koutini & Widmer, ICASSP 2023) in PyTorch, front end in numpy.

A MobileNetV3 of width 0.4 (0.98 M parameters) trained on AudioSet by distillation from
transformers: 527 multi-label AudioSet classes (49 of them music genres, many instruments and
moods) from 32 kHz audio. Upstream: https://github.com/fschmid56/EfficientAT (MIT licence,
(c) 2022 Florian Schmid). This module is our own code written from the description of the
network and front end (``../shared/weights/efficientat/README.md``, checked against upstream
commit a425fdc); only the weights file is upstream's, read as a plain state dict (never
unpickled code) and never part of this repository.

Public API (all outputs numpy float32):

* :func:`load_efficientat` ``(weights=None) -> torch.nn.Module`` (eval mode, memoised per file);
* :func:`mel_frontend` ``(y_32k [N]) -> [128, 1 + (N - 1) // 320]`` the network input;
* :func:`run_mel` ``(net, mel [B, 128, T]) -> {"logits" [B, 527], "embedding" [B, 384], "hidden" [B, 512]}``;
* :func:`run_windows` ``(net, y_32k, window_s=10.0, hop_s=None) -> run_mel's dict + "starts" [n] (s)``;
* :data:`AUDIOSET_LABELS` (527 display names in logit order), :func:`label_index` (name -> index),
  :data:`GTZAN_CLASSES` (GTZAN genre -> AudioSet class name), :data:`SR` = 32000;
* :func:`find_weights` ``(path=None, allow_download=None) -> Path``: where the checked file is.

Front end (upstream's ``AugmentMelSTFT`` in eval mode): pre-emphasis ``x[n+1] - 0.97 x[n]``
('valid', N samples give N-1), STFT n_fft 1024 / hop 320 / symmetric Hann of 800 zero-padded to
1024 in the centre, centred with reflect padding of 512, power, 128 Kaldi-style triangular mel
filters from 0 to 15 kHz (mel(f) = 1127 ln(1 + f/700), slopes in the mel domain, no area
normalisation, Nyquist bin weight 0), ``ln(x + 1e-5)``, ``(x + 4.5) / 5``. Computed in float64
(upstream: float32), which moves the mel by at most ~1e-4 and the logits by ~1e-5
(``scripts/efficientat_parity.py``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from genrekit.errors import BackboneWeightsError, GenrekitError

NAME = "efficientat_mn04"
SR = 32000
N_FFT = 1024
WIN = 800
HOP = 320
N_MELS = 128
FMIN = 0.0
FMAX = 15000.0
PREEMPHASIS = 0.97

WEIGHTS_FILE = "mn04_as_mAP_432.pt"
WEIGHTS_URL = f"https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/{WEIGHTS_FILE}"
WEIGHTS_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
WEIGHTS_BYTES = 4_066_513
LICENCE = "MIT, Copyright (c) 2022 Florian Schmid (EfficientAT, https://github.com/fschmid56/EfficientAT)"
#: The weights file: ``--efficientat-weights PATH`` sets this for the CLI.
ENV_WEIGHTS = "GENREKIT_EFFICIENTAT_WEIGHTS"
ENV_NO_DOWNLOAD = "GENREKIT_NO_DOWNLOAD"  # shared with musicnn: no network fetch of any weights
CACHE_SUBDIR = "efficientat"
N_KEYS = 312  # tensors in the state dict (266 float32 + 46 num_batches_tracked)


class WeightsNotFoundError(BackboneWeightsError):
    """The EfficientAT weights are not reachable, or a file given as them is not them."""


# --------------------------------------------------------------------------------------------
# labels (shipped with the code: users have no ../shared)


def _read_labels() -> tuple[str, ...]:
    text = (Path(__file__).parent / "assets" / "audioset_labels.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    assert [int(r[0]) for r in rows] == list(range(len(rows))), "audioset_labels.tsv out of order"
    return tuple(r[2] for r in rows)


#: The 527 AudioSet display names in logit order (``assets/audioset_labels.tsv``; CC BY 4.0 names
#: as shipped by MIT-licensed upstream).
AUDIOSET_LABELS: tuple[str, ...] = _read_labels()

#: AudioSet class named after each GTZAN genre (the zero-shot reading: argmax over these ten).
GTZAN_CLASSES: dict[str, str] = {
    "blues": "Blues", "classical": "Classical music", "country": "Country", "disco": "Disco",
    "hiphop": "Hip hop music", "jazz": "Jazz", "metal": "Heavy metal", "pop": "Pop music",
    "reggae": "Reggae", "rock": "Rock music",
}  # fmt: skip


def label_index(name: str) -> int:
    """Logit index of an AudioSet display name (exact spelling, e.g. "Music of Bollywood")."""
    try:
        return AUDIOSET_LABELS.index(name)
    except ValueError:
        raise GenrekitError(f"{name!r}: not an AudioSet class name") from None


# --------------------------------------------------------------------------------------------
# front end


def _mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(f / 700.0)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """[128, 513] float64 Kaldi-style triangular filters (0-15 kHz, 32 kHz, n_fft 1024).

    130 mel points equally spaced from mel(0) to mel(15000); filter m rises from point m to m+1
    and falls to m+2, both slopes linear in mel; bin k sits at k * 31.25 Hz (k < 512); the
    Nyquist bin (512) gets weight 0, as upstream pads Kaldi's 512-column matrix with a zero."""
    lo, hi = _mel(np.float64(FMIN)), _mel(np.float64(FMAX))
    delta = (hi - lo) / (N_MELS + 1)
    m = np.arange(N_MELS, dtype=np.float64)[:, None]
    left, centre, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
    bins = _mel(np.arange(N_FFT // 2, dtype=np.float64) * (SR / N_FFT))[None, :]
    up = (bins - left) / (centre - left)
    down = (right - bins) / (right - centre)
    fb = np.maximum(0.0, np.minimum(up, down))
    return np.concatenate([fb, np.zeros((N_MELS, 1))], axis=1)


@lru_cache(maxsize=1)
def _filterbank_plan():
    """The filterbank as ``features._mel_plan`` lays it out (float64): its even filters cover
    disjoint bins and so do its odd ones, so the product is two per-bin weightings and segment
    sums. The dense [128, 513] @ [513, T] product took ~25 of the front end's ~35 ms per 10 s on
    the project's 2-core machine; this takes ~2 ms, in plain numpy (no scipy to import at start)."""
    from genrekit.features import _mel_plan

    return _mel_plan(mel_filterbank(), np.float64)


def _mel_power(power: np.ndarray) -> np.ndarray:
    """``mel_filterbank() @ power.T`` for ``power`` [T, 513] (float64), summing only the non-zero weights."""
    from genrekit.features import _apply_mel_plan

    return _apply_mel_plan(np.asarray(power, np.float64), _filterbank_plan(), N_MELS).T


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """Symmetric Hann of 800 (``periodic=False``) centred in 1024 zeros (112 each side)."""
    n = np.arange(WIN, dtype=np.float64)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / (WIN - 1))
    left = (N_FFT - WIN) // 2
    out = np.zeros(N_FFT)
    out[left : left + WIN] = w
    return out


def n_frames(n_samples: int) -> int:
    """Frames the front end gives for ``n_samples`` (pre-emphasis drops one sample)."""
    return 1 + (n_samples - 1) // HOP


def mel_frontend(y_32k: np.ndarray) -> np.ndarray:
    """[128, T] float32 network input of one mono 32 kHz waveform (float, in [-1, 1]).

    ``T = 1 + (N - 1) // 320``: 10 s (320,000 samples) give 1000 frames. Needs N >= 514 samples
    (reflect padding of 512 after pre-emphasis)."""
    x = np.asarray(y_32k, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"mel_frontend wants one mono waveform, got shape {x.shape}")
    if len(x) < N_FFT // 2 + 2:
        raise ValueError(f"mel_frontend needs at least {N_FFT // 2 + 2} samples, got {len(x)}")
    x = x[1:] - PREEMPHASIS * x[:-1]
    x = np.pad(x, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]  # [T, 1024], a view
    out = np.empty((N_MELS, len(frames)), np.float32)
    w = _window()
    # a block of frames at a time: its spectrum and power stay in cache (whole-signal temporaries
    # of 8 MB each cost more in memory traffic than the FFT itself); the same numbers either way
    for a in range(0, len(frames), _FRAMES_PER_BLOCK):
        spec = np.fft.rfft(frames[a : a + _FRAMES_PER_BLOCK] * w, axis=1)  # [t, 513]
        power = np.square(spec.real)
        power += np.square(spec.imag)
        out[:, a : a + _FRAMES_PER_BLOCK] = (np.log(_mel_power(power) + 1e-5) + 4.5) / 5.0
    return out


#: Frames per block of :func:`mel_frontend` (128 frames: 1 MB of float64 spectrum).
_FRAMES_PER_BLOCK = 128


# --------------------------------------------------------------------------------------------
# the network (key names follow upstream's state dict so it loads strictly)

# features.1 .. features.15: (in, expand, out, kernel, stride, se_squeeze or 0, activation)
BLOCKS: tuple[tuple[int, int, int, int, int, int, str], ...] = (
    (8, 8, 8, 3, 1, 0, "relu"),
    (8, 24, 16, 3, 2, 0, "relu"),
    (16, 32, 16, 3, 1, 0, "relu"),
    (16, 32, 16, 5, 2, 8, "relu"),
    (16, 48, 16, 5, 1, 16, "relu"),
    (16, 48, 16, 5, 1, 16, "relu"),
    (16, 96, 32, 3, 2, 0, "hardswish"),
    (32, 80, 32, 3, 1, 0, "hardswish"),
    (32, 72, 32, 3, 1, 0, "hardswish"),
    (32, 72, 32, 3, 1, 0, "hardswish"),
    (32, 192, 48, 3, 1, 48, "hardswish"),
    (48, 272, 48, 3, 1, 72, "hardswish"),
    (48, 272, 64, 5, 2, 72, "hardswish"),
    (64, 384, 64, 5, 1, 96, "hardswish"),
    (64, 384, 64, 5, 1, 96, "hardswish"),
)  # fmt: skip
EMBED_DIM = 384
HIDDEN_DIM = 512
N_CLASSES = 527
BN_EPS = 1e-3

_MODULE = None


def _build_module():
    """Define the torch classes lazily so that importing this file does not import torch."""
    import torch
    from torch import nn

    def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=BN_EPS)]  # fmt: skip
        if act is not None:
            layers.append(nn.Hardswish() if act == "hardswish" else nn.ReLU())
        return nn.Sequential(*layers)

    class SqueezeExcite(nn.Module):
        """Channel attention: mean over (freq, time) -> fc1 -> ReLU -> fc2 -> Sigmoid -> scale."""

        def __init__(self, channels: int, squeeze: int):
            super().__init__()
            self.fc1 = nn.Linear(channels, squeeze)
            self.fc2 = nn.Linear(squeeze, channels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = torch.relu(self.fc1(x.mean(dim=(2, 3))))
            return x * torch.sigmoid(self.fc2(s))[:, :, None, None]

    class SEHolder(nn.Module):
        """Upstream's name for the SE step (``conc_se_layers.0``); one SE, nothing to aggregate."""

        def __init__(self, channels: int, squeeze: int):
            super().__init__()
            self.conc_se_layers = nn.ModuleList([SqueezeExcite(channels, squeeze)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conc_se_layers[0](x)

    class InvertedResidual(nn.Module):
        """[1x1 expand] -> depthwise kxk -> [SE] -> 1x1 project (no act) [+ input]."""

        def __init__(self, cin: int, exp: int, cout: int, k: int, stride: int, se: int, act: str):
            super().__init__()
            layers: list[nn.Module] = []
            if exp != cin:
                layers.append(conv_bn(cin, exp, 1, act=act))
            layers.append(conv_bn(exp, exp, k, stride, groups=exp, act=act))
            if se:
                layers.append(SEHolder(exp, se))
            layers.append(conv_bn(exp, cout, 1))
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.block(x)
            return y + x if self.residual else y

    class MN04(nn.Module):
        """EfficientAT mn04_as in eval mode: forward(mel [B, 1, 128, T]) -> dict of outputs."""

        def __init__(self) -> None:
            super().__init__()
            feats: list[nn.Module] = [conv_bn(1, 8, 3, 2, act="hardswish")]
            feats += [InvertedResidual(*b) for b in BLOCKS]
            feats.append(conv_bn(64, EMBED_DIM, 1, act="hardswish"))
            self.features = nn.Sequential(*feats)
            # indices 2 and 5 carry weights, as upstream's (pool, flatten, linear, act, dropout, linear)
            self.classifier = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(EMBED_DIM, HIDDEN_DIM), nn.Hardswish(),
                nn.Dropout(0.2), nn.Linear(HIDDEN_DIM, N_CLASSES),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            f = self.features(x)
            emb = f.mean(dim=(2, 3))
            hidden = self.classifier[3](self.classifier[2](emb))
            return {"logits": self.classifier[5](hidden), "embedding": emb, "hidden": hidden}

    return MN04


def efficientat_module():
    """A fresh, untrained mn04 module (random weights); see :func:`load_efficientat`."""
    global _MODULE
    if _MODULE is None:
        _MODULE = _build_module()
    return _MODULE()


# --------------------------------------------------------------------------------------------
# finding the weights


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_path() -> Path:
    """Where a downloaded copy lives: ``<cache>/efficientat/mn04_as_mAP_432.pt``."""
    from genrekit.cache import cache_dir

    return cache_dir() / CACHE_SUBDIR / WEIGHTS_FILE


def _offline_message(reason: str) -> str:
    return (f"EfficientAT mn04 weights not found ({reason}); on an offline machine download {WEIGHTS_URL} "
            f"elsewhere and set {ENV_WEIGHTS}=PATH (or --efficientat-weights PATH)")


def _checked(path: Path, given_as: str) -> Path:
    """``path`` when it is a readable file holding exactly the release weights, else one-line error."""
    if path.is_dir():
        path = path / WEIGHTS_FILE
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise WeightsNotFoundError(f"{path}: cannot read the EfficientAT weights given as {given_as} "
                                   f"({exc.strerror or exc})") from None
    if digest != WEIGHTS_SHA256:
        raise WeightsNotFoundError(f"{path}: not the EfficientAT {WEIGHTS_FILE} release file (SHA-256 {digest[:16]}..., "
                                   f"expected {WEIGHTS_SHA256[:16]}...; given as {given_as})")
    return path


def _download(dest: Path, url: str = WEIGHTS_URL, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into a temp file beside ``dest``, check size and SHA-256, then rename it into
    place (atomic): a half download or a wrong file is never found at ``dest``."""
    import http.client
    import urllib.request

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise WeightsNotFoundError(_offline_message(f"cannot write to {dest.parent}: {exc.strerror or exc}")) from None
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
                    while block := resp.read(1 << 16):
                        size += len(block)
                        if size > 2 * WEIGHTS_BYTES:
                            raise WeightsNotFoundError(_offline_message(f"{url} sent more than {2 * WEIGHTS_BYTES} bytes"))
                        h.update(block)
                        out.write(block)
            except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, cut-off bodies
                raise WeightsNotFoundError(_offline_message(f"download failed: {getattr(exc, 'reason', exc)}")) from None
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != WEIGHTS_SHA256:
            raise WeightsNotFoundError(f"{url}: downloaded file has SHA-256 {h.hexdigest()[:16]}..., "
                                       f"expected {WEIGHTS_SHA256[:16]}...; not used")
        os.replace(tmp, dest)
    except OSError as exc:  # disk full, cache folder gone meanwhile
        raise WeightsNotFoundError(_offline_message(f"cannot write {dest}: {exc.strerror or exc}")) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _remember(given: Path) -> Path:
    """Copy a verified user-given weights file into the user cache when it holds none, so later
    runs find it without the flag (as a download would have left it); best effort: a read-only
    cache only means the flag is needed again."""
    cached = cached_path()
    if not cached.is_file() and given.resolve() != cached.resolve():
        try:
            from genrekit.models.modelfile import atomic_path

            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cached, suffix=".tmp") as tmp:
                shutil.copyfile(given, tmp)
        except OSError:
            pass
    return given


def find_weights(path: str | os.PathLike[str] | None = None, allow_download: bool | None = None) -> Path:
    """The verified weights file, looked up in this order.

    1. ``path`` (``--efficientat-weights``), then ``GENREKIT_EFFICIENTAT_WEIGHTS``: a file (or a
       folder holding ``mn04_as_mAP_432.pt``); its SHA-256 must be the release's, else an error
       (a given file is never silently replaced by another); a verified one is also copied into
       the cache when the cache has none, so the next run needs no flag;
    2. the user cache ``<cache>/efficientat/mn04_as_mAP_432.pt`` (a copy whose hash no longer
       matches is downloaded again);
    3. a one-time download of the release file into that cache, hashed before it is renamed into
       place (unless ``allow_download`` is False or ``GENREKIT_NO_DOWNLOAD=1``).
    """
    if path is not None:
        return _remember(_checked(Path(path).expanduser(), "--efficientat-weights"))
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        return _remember(_checked(Path(env).expanduser(), f"{ENV_WEIGHTS} / --efficientat-weights"))
    cached = cached_path()
    if cached.is_file():
        try:
            return _checked(cached, "the cached copy")
        except WeightsNotFoundError:
            pass  # damaged or foreign: fetch a good one over it (atomically)
    if allow_download is None:
        allow_download = os.environ.get(ENV_NO_DOWNLOAD, "") in ("", "0")
    if not allow_download:
        raise WeightsNotFoundError(_offline_message(f"none in {cached.parent}, downloads disabled"))
    return _download(cached)


def load_state(path: str | os.PathLike[str]) -> dict:
    """The state dict of a checked weights file (tensors only: ``weights_only=True``)."""
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged zip, not a checkpoint
        raise WeightsNotFoundError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    if not isinstance(sd, dict) or len(sd) != N_KEYS:
        raise WeightsNotFoundError(f"{path}: expected a state dict of {N_KEYS} tensors")
    return sd


_NETS: dict[str, object] = {}
_FOUND: dict[tuple[str, str, str], str] = {}  # (weights arg, env, cache path) -> checked file


def load_efficientat(weights: str | os.PathLike[str] | None = None, allow_download: bool | None = None):
    """The mn04 module in eval mode with the release weights loaded strictly (every one of the 312
    keys used, none missing); memoised per weights file, and per lookup inputs (argument,
    environment, cache folder) so that a per-track call does not hash the file again. See
    :func:`find_weights` for the lookup."""
    asked = (str(weights), os.environ.get(ENV_WEIGHTS, ""), str(cached_path()))
    key = _FOUND.get(asked)
    if key is None:
        key = str(find_weights(weights, allow_download).resolve())
    if key not in _NETS:
        net = efficientat_module()
        net.load_state_dict(load_state(key), strict=True)
        _NETS[key] = net.eval()
    _FOUND[asked] = key
    return _NETS[key]


# --------------------------------------------------------------------------------------------
# running it


def run_mel(net, mel: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Forward mel inputs [B, 128, T] (or one [128, T]) in batches of at most ``batch_size``:
    float32 ``logits`` [B, 527] (pre-sigmoid, multi-label), ``embedding`` [B, 384] (mean of the
    last conv over frequency and time) and ``hidden`` [B, 512] (the head's Hardswish layer)."""
    import torch

    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim == 2:
        mel = mel[None]
    outs: dict[str, list[np.ndarray]] = {"logits": [], "embedding": [], "hidden": []}
    with torch.inference_mode():
        for i in range(0, len(mel), batch_size):
            o = net(torch.from_numpy(np.ascontiguousarray(mel[i : i + batch_size, None])))
            for k in outs:
                outs[k].append(o[k].numpy())
    if not outs["logits"]:
        return {"logits": np.zeros((0, N_CLASSES), np.float32), "embedding": np.zeros((0, EMBED_DIM), np.float32),
                "hidden": np.zeros((0, HIDDEN_DIM), np.float32)}  # fmt: skip
    return {k: np.concatenate(v) for k, v in outs.items()}


def window_starts(n_samples: int, window: int, hop: int) -> np.ndarray:
    """Start samples of the windows over ``n_samples``: every ``hop`` while a whole window fits,
    plus one window ending at the last sample when the regular ones leave a tail uncovered; a
    track shorter than one window is one window of its whole length."""
    if n_samples <= window:
        return np.zeros(1, np.int64)
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return np.asarray(starts, np.int64)


def run_windows(net, y_32k: np.ndarray, window_s: float = 10.0, hop_s: float | None = None,
                batch_size: int = 32) -> dict[str, np.ndarray]:
    """Outputs per window of one 32 kHz mono track: :func:`run_mel`'s ``logits`` [n, 527],
    ``embedding`` [n, 384], ``hidden`` [n, 512], plus ``starts`` [n] (seconds, float64).

    Each window gets its own front end (as upstream runs a 10 s clip), and the windows of a track
    go through the network together, ``batch_size`` at a time (a 5-minute song is one forward; an
    hour holds at most ``batch_size`` windows' mels and activations in memory at once).
    ``hop_s`` defaults to ``window_s`` (no overlap); see :func:`window_starts` for the tail."""
    y = np.asarray(y_32k, dtype=np.float32)
    win = int(round(window_s * SR))
    hop = int(round((hop_s if hop_s is not None else window_s) * SR))
    if win <= N_FFT or hop <= 0:
        raise ValueError(f"window_s={window_s}, hop_s={hop_s}: need a window over {N_FFT / SR:.3f} s and a hop > 0")
    starts = window_starts(len(y), win, hop)
    parts = [run_mel(net, np.stack([mel_frontend(y[s : s + win]) for s in starts[i : i + batch_size]]), batch_size)
             for i in range(0, len(starts), batch_size)]  # fmt: skip
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out["starts"] = starts / SR
    return out
