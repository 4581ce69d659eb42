"""musicnn (Pons & Serra, ISMIR-LBD 2019) in PyTorch, with its weights read from the PyPI wheel.

musicnn 0.1.0 (ISC licence, https://github.com/jordipons/musicnn) ships TF1 checkpoints of
CNNs that tag 3-second log-mel patches with 50 tags. Its code needs TensorFlow 1; this module
re-implements the graph of ``musicnn/models.py::build_musicnn`` and loads the checkpoint with
:mod:`genrekit.backbones.tf_checkpoint`, so no TensorFlow is needed.

Graph details that matter for parity (all from ``models.py``):

* input: [batch, 187 frames, 96 mels], BatchNorm over a single channel first (TF eps 1e-3);
* timbral branch: zero-pad time by 3 *after* that BN, conv 7x38 and 7x67 ('valid'), ReLU, BN,
  max over frequency (204 filters each);
* temporal branch: conv 128x1, 64x1, 32x1 with TF 'same' padding (for an even kernel k TF pads
  (k-1)//2 before and k//2 after), ReLU, BN, max over frequency (51 filters each);
* mid-end: three 7-tap 1-D convs over time (64 filters), ReLU then BN, residual on 2 and 3; the
  front-end (561) and the three mid-end maps are concatenated densely (753 channels);
* back-end: max and mean over time, *interleaved* per channel by TF's concat+flatten
  ([c0max, c0mean, c1max, ...]), BN, dense 200 ReLU, BN (= the "penultimate" embedding),
  dense 50, sigmoid.

The weights are converted once and cached as safetensors in the user cache; see
:func:`load_backbone` for where they are looked up.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.errors import BackboneWeightsError, GenrekitError

MUSICNN_VERSION = "0.1.0"
WHEEL_NAME = f"musicnn-{MUSICNN_VERSION}-py3-none-any.whl"
#: Environment variables that point at the weights for offline machines.
ENV_WHEEL = "GENREKIT_MUSICNN_WHEEL"  # the wheel file, or a folder holding it
ENV_DIR = "GENREKIT_MUSICNN_DIR"  # a folder holding MSD_musicnn/ (an unpacked musicnn package)
ENV_NO_DOWNLOAD = "GENREKIT_NO_DOWNLOAD"

MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")

# Sample rate and front-end constants of musicnn/configuration.py.
SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
N_FRAMES = 187  # librosa.time_to_frames(3 s) + 1

# Tag names from musicnn/configuration.py (musicnn 0.1.0, ISC licence, (c) Jordi Pons).
MTT_LABELS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
MSD_LABELS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
    "60s", "rnb", "indie pop", "sad", "House", "happy",
)  # fmt: skip
LABELS = {"MSD_musicnn": MSD_LABELS, "MTT_musicnn": MTT_LABELS, "MSD_vgg": MSD_LABELS, "MTT_vgg": MTT_LABELS}


class WeightsNotFoundError(BackboneWeightsError):
    """musicnn's weights are not reachable (no wheel, no installed package, no network)."""


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise GenrekitError(f"{model}: unknown musicnn model (choose from {', '.join(MODELS)})")


def cache_dir() -> Path:
    """The user cache root, as :func:`genrekit.cache.cache_dir` says (one rule for features and
    weights, so ``genrekit cache info`` finds both)."""
    from genrekit.cache import cache_dir as root

    return root()


# --------------------------------------------------------------------------------------------
# the network


def _build_module():
    """Define the torch module lazily so that importing this file does not import torch."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    eps = 1e-3  # TF's BatchNormalization default

    class Musicnn(nn.Module):
        """musicnn's graph in eval mode; forward(x [B, 187, 96]) -> dict of outputs."""

        def __init__(self, n_classes: int = 50, midend: int = 64, dense: int = 200):
            super().__init__()
            self.bn_input = nn.BatchNorm2d(1, eps=eps)
            self.timbral = nn.ModuleList(
                [nn.Conv2d(1, 204, (7, 38)), nn.Conv2d(1, 204, (7, 67))]
            )
            self.bn_timbral = nn.ModuleList([nn.BatchNorm2d(204, eps=eps) for _ in range(2)])
            self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in (128, 64, 32)])
            self.bn_temporal = nn.ModuleList([nn.BatchNorm2d(51, eps=eps) for _ in range(3)])
            self.mid = nn.ModuleList(
                [nn.Conv1d(561, midend, 7), nn.Conv1d(midend, midend, 7), nn.Conv1d(midend, midend, 7)]
            )
            self.bn_mid = nn.ModuleList([nn.BatchNorm1d(midend, eps=eps) for _ in range(3)])
            n_feat = 561 + 3 * midend
            self.bn_pool = nn.BatchNorm1d(2 * n_feat, eps=eps)
            self.dense = nn.Linear(2 * n_feat, dense)
            self.bn_dense = nn.BatchNorm1d(dense, eps=eps)
            self.out = nn.Linear(dense, n_classes)

        def frontend_reference(self, x):
            """The TF graph step by step (conv, ReLU, BN, max over frequency)."""
            x = self.bn_input(x.unsqueeze(1))  # [B, 1, T, F]
            feats = []
            xp = F.pad(x, (0, 0, 3, 3))
            for conv, bn in zip(self.timbral, self.bn_timbral, strict=False):
                feats.append(bn(F.relu(conv(xp))).amax(dim=3))  # [B, C, T]
            for conv, bn in zip(self.temporal, self.bn_temporal, strict=False):
                k = conv.kernel_size[0]
                h = bn(F.relu(conv(F.pad(x, (0, 0, (k - 1) // 2, k // 2)))))
                feats.append(h.amax(dim=3))
            return torch.cat(feats, dim=1)  # [B, 561, T]

        def fuse(self, bf16: bool = False):
            """Precompute the fast front end (call after loading weights).

            BN after ReLU is a per-channel affine a*r + c; max over frequency commutes with it
            when a > 0 and turns into a min when a < 0. Flipping the sign of those channels'
            filters turns every case into a max: out = a * relu(s * max_f(s * z)) + c with
            s = sign(a). This skips ReLU and BN on the big [B, C, T, F] maps (exact up to float
            rounding). The five convolutions then run as blocked GEMMs whose outputs put the
            channels innermost, so the max over frequency is a max over rows.

            ``bf16`` runs those GEMMs (~98% of the work) in bfloat16 on CPUs with native bf16 dot
            products (AVX512-BF16/AMX; see docs/model_card.md); the track-mean taggram then moves
            by ~0.01 at most, so the parity checks use float32.
            """
            self._fused = []
            for conv, bn in list(zip(self.timbral, self.bn_timbral, strict=False)) + list(zip(self.temporal, self.bn_temporal, strict=False)):
                a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                c = bn.bias - a * bn.running_mean
                sgn = torch.where(a < 0, -1.0, 1.0)
                w = (conv.weight * sgn[:, None, None, None]).contiguous(memory_format=torch.channels_last)
                b = conv.bias * sgn
                if bf16:
                    w, b = w.bfloat16(), b.bfloat16()
                self._fused.append((w, b, sgn[None, :, None], a[None, :, None], c[None, :, None]))
            # The convolutions run as blocked GEMMs (see _timbral_gemm, _temporal_gemm): oneDNN's
            # direct convolutions with a single input channel take about twice as long in bf16
            # and ~1.3x as long in float32 (benchmarks/musicnn_forward.py). Block sizes measured.
            dtype = torch.bfloat16 if bf16 else torch.float32
            blocks, tblock = ((12, 10), 4) if bf16 else ((4, 4), 8)
            self._gemm = [self._block_weights(w.float(), blk, dtype) for (w, *_), blk in zip(self._fused[:2], blocks, strict=True)]
            self._tgemm = [self._block_temporal(w.float(), tblock, dtype) for (w, *_) in self._fused[2:]]
            return self

        @staticmethod
        def _block_temporal(w, s, dtype=torch.bfloat16):
            """[s + k - 1, s * C] weights computing ``s`` neighbouring time outputs of a (k, 1)
            filter bank at once from one window of s + k - 1 frames of one mel band."""
            c_out, _, k, _ = w.shape
            wb = torch.zeros(s + k - 1, s, c_out)
            for o in range(s):
                wb[o : o + k, o, :] = w[:, 0, :, 0].T
            return wb.reshape(s + k - 1, s * c_out).to(dtype), s, k

        @staticmethod
        def _temporal_gemm(x, tgemm):
            """max over frequency of a 'valid' (k, 1) convolution of x [B, T + k - 1, F] (in the
            weights' dtype), without the bias: [B, C, T] float32. Each mel band's frames are cut into windows
            of s + k - 1 frames every s frames (a strided view, copied once); one GEMM gives s
            outputs per window, and the max over frequency is a max over the outermost axis."""
            wb, s, k = tgemm
            b, tp, f = x.shape
            t = tp - k + 1
            nbt = -(-t // s)
            need = nbt * s + k - 1
            xt = F.pad(x.transpose(1, 2), (0, need - tp)).contiguous()  # [B, F, need]
            cols = xt.as_strided((b, f, nbt, s + k - 1), (f * need, need, s, 1)).reshape(b * f * nbt, s + k - 1)
            y = (cols @ wb).view(b, f, nbt * s, -1).amax(1)[:, :t]  # [B, T, C]
            return y.transpose(1, 2).float()

        @staticmethod
        def _block_weights(w, s, dtype=torch.bfloat16):
            """[7 * (s + kf - 1), s * C] weights computing ``s`` neighbouring frequency outputs
            of a (7, kf) filter bank at once from one (7, s + kf - 1) input window."""
            c_out, _, kt, kf = w.shape
            width = s + kf - 1
            wb = torch.zeros(kt, width, s, c_out)
            for o in range(s):
                wb[:, o : o + kf, o, :] = w[:, 0].permute(1, 2, 0)
            return wb.reshape(kt * width, s * c_out).to(dtype), s, kf

        def _timbral_gemm(self, x, gemm):
            """max over frequency of a 'valid' (7, kf) convolution of x [B, T + 6, F] (in the
            weights' dtype), without the bias: [B, C, T] float32. The input is cut into overlapping (7, s + kf - 1)
            windows every s frequency bins (a strided view, copied once), one GEMM gives all
            outputs with channels innermost, and the max over frequency is a max over rows."""
            wb, s, kf = gemm
            b, tp, f = x.shape
            t, n_out = tp - 6, f - kf + 1
            nb = -(-n_out // s)
            width = s + kf - 1
            if nb * s + kf - 1 > f:
                x = F.pad(x, (0, nb * s + kf - 1 - f))
            x = x.contiguous()
            fw = x.shape[2]
            cols = x.as_strided((b, t, nb, 7, width), (tp * fw, fw, s, fw, 1)).reshape(b * t * nb, 7 * width)
            y = (cols @ wb).view(b * t, nb * s, -1)[:, :n_out].amax(1)  # [B * T, C]
            return y.view(b, t, -1).transpose(1, 2).float()

        def _pads(self, i: int) -> tuple[int, int]:
            """Zero frames (before, after) that front-end branch ``i`` adds to a patch: 3 and 3
            for the timbral 7-frame filters, TF 'same' padding for the temporal ones."""
            kt = (list(self.timbral) + list(self.temporal))[i].kernel_size[0]
            return (3, 3) if i < 2 else ((kt - 1) // 2, kt // 2)

        def _branch(self, i: int, xp):
            """Fused branch ``i`` (0-1 timbral, 2-4 temporal) on an already padded input
            xp [B, T + pads, F] (after bn_input): [B, C, T] with ReLU, BN and the max over
            frequency applied."""
            _w, b, sgn, a, c = self._fused[i]
            if i < 2:
                gemm = self._gemm[i]
                m = self._timbral_gemm(xp.to(gemm[0].dtype), gemm)
            else:
                gemm = self._tgemm[i - 2]
                m = self._temporal_gemm(xp.to(gemm[0].dtype), gemm)
            return a * F.relu(sgn * (m + b.float()[None, :, None])) + c

        def frontend(self, x):
            if getattr(self, "_fused", None) is None:
                return self.frontend_reference(x)
            x = self.bn_input(x.unsqueeze(1))[:, 0]
            return torch.cat([self._branch(i, F.pad(x, (0, 0, *self._pads(i)))) for i in range(5)], dim=1)

        def frontend_shared(self, seq, starts, n: int = N_FRAMES):
            """Front-end maps [len(starts), 561, n] of the patches ``seq[s : s + n]`` of one
            log-mel sequence seq [T, F], equal to ``frontend`` on the stacked patches.

            Every front-end filter is a convolution over time followed by a max over frequency,
            so a patch's per-frame features are those of the whole sequence, except for the
            frames whose receptive field crosses the patch's edges, where musicnn zero-pads each
            patch: 3 frames per side for the timbral branch, up to 63 / 64 for the temporal one.
            The sequence is convolved once and only those edge frames are recomputed per patch:
            a 30 s clip's 28 patches 1 s apart take about half the time of running them one by
            one (``benchmarks/musicnn_forward.py``, part 4)."""
            x = self.bn_input(seq[None, None])[:, 0]  # [1, T, F]
            idx = torch.as_tensor(np.asarray(starts, dtype=np.int64))[:, None] + torch.arange(n)  # [B, n]
            feats = []
            for i in range(5):
                pl, pr = self._pads(i)
                if pl + pr > n:
                    raise ValueError(f"patches of {n} frames are shorter than the receptive field")
                whole = self._branch(i, F.pad(x, (0, 0, pl, pr)))[0]  # [C, T]
                f = whole[:, idx].permute(1, 0, 2)  # [B, C, n] (a copy, by advanced indexing)
                if pl:
                    left = torch.stack([x[0, s : s + pl + pr] for s in starts])
                    f[:, :, :pl] = self._branch(i, F.pad(left, (0, 0, pl, 0)))
                if pr:
                    right = torch.stack([x[0, s + n - pl - pr : s + n] for s in starts])
                    f[:, :, n - pr :] = self._branch(i, F.pad(right, (0, 0, 0, pr)))
                feats.append(f)
            return torch.cat(feats, dim=1)

        def backend(self, front):
            """Mid-end, pooling and dense layers on front-end maps [B, 561, T]."""
            h1 = self.bn_mid[0](F.relu(self.mid[0](F.pad(front, (3, 3)))))
            h2 = self.bn_mid[1](F.relu(self.mid[1](F.pad(h1, (3, 3))))) + h1
            h3 = self.bn_mid[2](F.relu(self.mid[2](F.pad(h2, (3, 3))))) + h2
            fmap = torch.cat([front, h1, h2, h3], dim=1)  # [B, 753, T]
            max_pool = fmap.amax(dim=2)
            mean_pool = fmap.mean(dim=2)
            pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF interleaving
            penultimate = self.bn_dense(F.relu(self.dense(self.bn_pool(pooled))))
            logits = self.out(penultimate)
            return {
                "tags": torch.sigmoid(logits),
                "logits": logits,
                "penultimate": penultimate,
                "max_pool": max_pool,
                "mean_pool": mean_pool,
            }

        def forward(self, x):
            return self.backend(self.frontend(x))

        def forward_shared(self, seq, starts, n: int = N_FRAMES):
            """``forward`` of the patches ``seq[s : s + n]`` (see :meth:`frontend_shared`)."""
            if getattr(self, "_fused", None) is None:
                return self.forward(torch.stack([seq[s : s + n] for s in starts]))
            return self.backend(self.frontend_shared(seq, starts, n))

    return Musicnn


_MODULE_CLASS = None
_VGG_CLASS = None


def _build_vgg():
    """musicnn's VGG baseline (``models.py::vgg`` with 128 filters), lazily defined like the
    musicnn module. Graph: BN over the single input channel; five 3x3 'same' convolutions, each
    ReLU -> BN -> max-pool ('valid': 4x1 stride 2, then 2x2 stride 2 three times, then 4x4
    stride 4); [B, 2, 1, 128] flattened in TF's NHWC order (256) -> dense 50 -> sigmoid."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    eps = 1e-3
    pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]

    class MusicnnVGG(nn.Module):
        """forward(x [B, 187, 96]) -> dict(tags, logits, penultimate = flattened pool5 [B, 256])."""

        embedding_dim = 256

        def __init__(self, n_classes: int = 50, filters: int = 128):
            super().__init__()
            self.bn_input = nn.BatchNorm2d(1, eps=eps)
            self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5)])
            self.bns = nn.ModuleList([nn.BatchNorm2d(filters, eps=eps) for _ in range(5)])
            self.out = nn.Linear(2 * filters, n_classes)

        def fuse(self, bf16: bool = False):
            """No fused path (the VGG runs as is, in float32); kept for load_backbone's sake."""
            return self

        def forward(self, x):
            h = self.bn_input(x.unsqueeze(1))  # [B, 1, T, F]
            for conv, bn, (k, st) in zip(self.convs, self.bns, pools, strict=True):
                h = F.max_pool2d(bn(F.relu(conv(h))), k, st)
            flat = h.permute(0, 2, 3, 1).flatten(1)  # TF flattens NHWC
            logits = self.out(flat)
            return {"tags": torch.sigmoid(logits), "logits": logits, "penultimate": flat}

    return MusicnnVGG


def musicnn_module(n_classes: int = 50, model: str = "MSD_musicnn"):
    """A fresh (randomly initialised, eval mode) torch module for ``model``'s architecture."""
    global _MODULE_CLASS, _VGG_CLASS
    if model.endswith("_vgg"):
        if _VGG_CLASS is None:
            _VGG_CLASS = _build_vgg()
        return _VGG_CLASS(n_classes).eval()
    if _MODULE_CLASS is None:
        _MODULE_CLASS = _build_module()
    return _MODULE_CLASS(n_classes).eval()


# --------------------------------------------------------------------------------------------
# TF checkpoint -> torch state dict


def _bn(sd: dict, prefix: str, tf: dict, name: str) -> None:
    sd[f"{prefix}.weight"] = tf[f"{name}/gamma"]
    sd[f"{prefix}.bias"] = tf[f"{name}/beta"]
    sd[f"{prefix}.running_mean"] = tf[f"{name}/moving_mean"]
    sd[f"{prefix}.running_var"] = tf[f"{name}/moving_variance"]


def convert_vgg_checkpoint(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """musicnn's VGG: ``1CNN``..``5CNN`` (HWIO kernels), batch_normalization (input) and _1.._5,
    ``dense``."""
    sd: dict[str, np.ndarray] = {}
    _bn(sd, "bn_input", tf, "batch_normalization")
    for i in range(5):
        sd[f"convs.{i}.weight"] = tf[f"{i + 1}CNN/kernel"].transpose(3, 2, 0, 1)
        sd[f"convs.{i}.bias"] = tf[f"{i + 1}CNN/bias"]
        _bn(sd, f"bns.{i}", tf, f"batch_normalization_{i + 1}")
    sd["out.weight"] = tf["dense/kernel"].T
    sd["out.bias"] = tf["dense/bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def convert_checkpoint(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map musicnn's TF variable names/layouts to :func:`musicnn_module`'s state dict.

    TF layer names follow creation order in ``build_musicnn``: conv2d, conv2d_1 (timbral 7x38,
    7x67), conv2d_2..4 (temporal 128, 64, 32), conv2d_5..7 (mid-end), dense, dense_1; batch norms
    batch_normalization (input), _1.._2 timbral, _3.._5 temporal, _6.._8 mid-end, _9 pooled, _10
    penultimate. Kernels are HWIO in TF and OIHW in torch.
    """
    sd: dict[str, np.ndarray] = {}
    _bn(sd, "bn_input", tf, "batch_normalization")
    for i in range(2):
        k = tf[f"conv2d{'_' + str(i) if i else ''}/kernel"]
        sd[f"timbral.{i}.weight"] = k.transpose(3, 2, 0, 1)
        sd[f"timbral.{i}.bias"] = tf[f"conv2d{'_' + str(i) if i else ''}/bias"]
        _bn(sd, f"bn_timbral.{i}", tf, f"batch_normalization_{i + 1}")
    for i in range(3):
        n = f"conv2d_{i + 2}"
        sd[f"temporal.{i}.weight"] = tf[f"{n}/kernel"].transpose(3, 2, 0, 1)
        sd[f"temporal.{i}.bias"] = tf[f"{n}/bias"]
        _bn(sd, f"bn_temporal.{i}", tf, f"batch_normalization_{i + 3}")
    for i in range(3):
        n = f"conv2d_{i + 5}"
        # [7, C_in, 1, C_out] (kernel spans all channels as the "width") -> Conv1d [C_out, C_in, 7]
        sd[f"mid.{i}.weight"] = tf[f"{n}/kernel"][:, :, 0, :].transpose(2, 1, 0)
        sd[f"mid.{i}.bias"] = tf[f"{n}/bias"]
        _bn(sd, f"bn_mid.{i}", tf, f"batch_normalization_{i + 6}")
    _bn(sd, "bn_pool", tf, "batch_normalization_9")
    sd["dense.weight"] = tf["dense/kernel"].T
    sd["dense.bias"] = tf["dense/bias"]
    _bn(sd, "bn_dense", tf, "batch_normalization_10")
    sd["out.weight"] = tf["dense_1/kernel"].T
    sd["out.bias"] = tf["dense_1/bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


# --------------------------------------------------------------------------------------------
# finding the weights


@dataclass(frozen=True)
class WeightsSource:
    """Where musicnn's checkpoint files are: a folder holding ``<model>/`` or a wheel file."""

    kind: str  # "explicit", "env", "installed", "cache", "download"
    path: Path

    def read_checkpoint_files(self, model: str) -> tuple[bytes, bytes]:
        """(index bytes, data bytes) of ``model``'s checkpoint."""
        names = (f"{model}/.index", f"{model}/.data-00000-of-00001")
        if self.path.is_dir():
            base = self.path / "musicnn" if (self.path / "musicnn" / model).is_dir() else self.path
            try:
                return tuple((base / n).read_bytes() for n in names)  # type: ignore[return-value]
            except OSError as exc:
                raise WeightsNotFoundError(f"{self.path}: no {model} checkpoint ({exc.strerror})") from None
        try:
            with zipfile.ZipFile(self.path) as zf:
                return tuple(zf.read(f"musicnn/{n}") for n in names)  # type: ignore[return-value]
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise WeightsNotFoundError(f"{self.path}: not a musicnn wheel with {model} ({exc})") from None


def _as_source(kind: str, p: Path, model: str) -> WeightsSource:
    p = p.expanduser()
    if p.is_dir() and not any((p / d / model).is_dir() for d in (".", "musicnn")):
        wheel = p / WHEEL_NAME
        if wheel.is_file():
            return WeightsSource(kind, wheel)
        raise WeightsNotFoundError(f"{p}: holds neither {model}/ nor musicnn/{model}/ nor {WHEEL_NAME}")
    if not p.exists():
        raise WeightsNotFoundError(f"{p}: no such file (given as the musicnn weights)")
    return WeightsSource(kind, p)


def _installed_source(model: str) -> WeightsSource | None:
    """The installed ``musicnn`` distribution, found by metadata (importing it would import TF)."""
    try:
        dist = importlib.metadata.distribution("musicnn")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(f"musicnn/{model}/.index"):
            folder = Path(str(dist.locate_file(f))).parent.parent
            if (folder / model / ".data-00000-of-00001").is_file():
                return WeightsSource("installed", folder)
    return None


def _download_wheel(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), f"musicnn=={MUSICNN_VERSION}"]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsNotFoundError(_offline_message(f"pip download failed ({exc})")) from None
    wheel = dest / WHEEL_NAME
    if proc.returncode != 0 or not wheel.is_file():
        last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise WeightsNotFoundError(_offline_message(f"pip download failed: {last[0]}"))
    return wheel


def _offline_message(reason: str) -> str:
    return (
        f"musicnn weights not found ({reason}); on an offline machine copy {WHEEL_NAME} "
        f"(from https://pypi.org/project/musicnn/{MUSICNN_VERSION}/) and set {ENV_WHEEL}=PATH "
        f"(or --musicnn-weights PATH), or point {ENV_DIR} at an unpacked musicnn package folder"
    )


def find_weights(
    model: str = "MSD_musicnn", path: str | os.PathLike | None = None, allow_download: bool | None = None
) -> WeightsSource:
    """Locate musicnn's checkpoint, in this order.

    1. ``path`` (a CLI flag): a wheel file, a folder holding the wheel, or an unpacked package;
    2. ``GENREKIT_MUSICNN_WHEEL`` / ``GENREKIT_MUSICNN_DIR``;
    3. an installed ``musicnn`` distribution (via importlib.metadata; never imported);
    4. the wheel cached in ``<cache>/musicnn/``;
    5. ``pip download --no-deps musicnn==0.1.0`` into that cache folder (unless
       ``allow_download`` is False or ``GENREKIT_NO_DOWNLOAD=1``).

    Raises :class:`WeightsNotFoundError` saying how to supply the wheel offline.
    """
    _check_model(model)
    if path is not None:
        return _as_source("explicit", Path(path), model)
    for var in (ENV_WHEEL, ENV_DIR):
        val = os.environ.get(var)
        if val:
            return _as_source("env", Path(val), model)
    installed = _installed_source(model)
    if installed is not None:
        return installed
    cached = cache_dir() / "musicnn" / WHEEL_NAME
    if cached.is_file():
        return WeightsSource("cache", cached)
    if allow_download is None:
        allow_download = os.environ.get(ENV_NO_DOWNLOAD, "") in ("", "0")
    if not allow_download:
        raise WeightsNotFoundError(_offline_message("no installed musicnn, no cached wheel, downloads disabled"))
    return WeightsSource("download", _download_wheel(cached.parent))


# --------------------------------------------------------------------------------------------
# converted-weights cache


def converted_path(model: str) -> Path:
    return cache_dir() / "musicnn" / f"{model}-{MUSICNN_VERSION}.safetensors"


def _atomic_save(tensors: dict[str, np.ndarray], meta: dict[str, str], path: Path) -> None:
    from safetensors.numpy import save

    path.parent.mkdir(parents=True, exist_ok=True)
    from genrekit.models.modelfile import atomic_path

    blob = save(tensors, metadata=meta)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)


def convert_weights(model: str, source: WeightsSource) -> dict[str, np.ndarray]:
    """Read ``model``'s TF checkpoint from ``source`` and return the torch state dict (numpy)."""
    from genrekit.backbones.tf_checkpoint import TFCheckpoint

    index, data = source.read_checkpoint_files(model)
    ckpt = TFCheckpoint.from_bytes(index, data, name=f"{source.path}:{model}")
    return (convert_vgg_checkpoint if model.endswith("_vgg") else convert_checkpoint)(ckpt.read_all())


def backbone_state(
    model: str = "MSD_musicnn", weights: str | os.PathLike | None = None, allow_download: bool | None = None
) -> dict[str, np.ndarray]:
    """The converted state dict: from the safetensors cache, else converted now and cached."""
    from safetensors.numpy import load

    _check_model(model)  # before the cache: a model name never becomes a path unchecked
    target = converted_path(model)
    if weights is None and target.is_file():
        try:
            return load(target.read_bytes())
        except Exception:  # damaged cache file: rebuild it
            pass
    source = find_weights(model, weights, allow_download)
    sd = convert_weights(model, source)
    digest = hashlib.sha256(b"".join(sd[k].tobytes() for k in sorted(sd))).hexdigest()[:16]
    meta = {"model": model, "musicnn_version": MUSICNN_VERSION, "source": source.kind, "sha256_16": digest}
    try:
        _atomic_save(sd, meta, target)
    except OSError:
        pass  # a read-only cache is not fatal; we convert again next time
    return sd


_BACKBONES: dict[str, object] = {}


ENV_PRECISION = "GENREKIT_MUSICNN_PRECISION"


def resolve_precision(precision: str = "auto") -> str:
    """"fp32" or "bf16". ``auto`` (the default, overridable with GENREKIT_MUSICNN_PRECISION)
    picks bf16 front-end convolutions only where oneDNN has native bf16 support."""
    precision = os.environ.get(ENV_PRECISION, precision) if precision == "auto" else precision
    if precision == "auto":
        import torch

        try:
            precision = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
        except Exception:  # older torch / no oneDNN
            precision = "fp32"
    if precision not in ("fp32", "bf16"):
        raise GenrekitError(f"{ENV_PRECISION}={precision}: use fp32, bf16 or auto")
    return precision


def load_backbone(model: str = "MSD_musicnn", weights: str | os.PathLike | None = None, precision: str = "auto"):
    """The musicnn torch module with converted weights (memoised per process).

    ``precision``: "fp32" (exact; what the parity checks use), "bf16" (front-end convolutions in
    bfloat16, faster on CPUs with native bf16) or "auto" (see :func:`resolve_precision`).
    """
    import torch

    precision = resolve_precision(precision)
    key = f"{model}:{weights}:{precision}"
    if key not in _BACKBONES:
        sd = backbone_state(model, weights)  # first: it refuses an unknown model
        net = musicnn_module(len(LABELS[model]), model)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
        _BACKBONES[key] = net.eval().fuse(bf16=precision == "bf16")
    return _BACKBONES[key]


# --------------------------------------------------------------------------------------------
# running the network (the patches themselves come from features.MusicnnSpec)


def _as_sequence(patches: np.ndarray, hop: int) -> np.ndarray | None:
    """The log-mel sequence that ``patches`` [n, frames, F] were cut from every ``hop`` frames,
    or None when they are not overlapping cuts of one sequence (then each runs on its own)."""
    n, frames = patches.shape[:2]
    if n < 2 or not 0 < hop < frames:
        return None
    if not np.array_equal(patches[1:, : frames - hop], patches[:-1, hop:]):
        return None
    return np.concatenate([patches[0], patches[1:, frames - hop :].reshape(-1, patches.shape[2])])


def run_patches(net, patches: np.ndarray, batch_size: int = 6, hop: int | None = None,
                shared_batch: int = 16) -> dict[str, np.ndarray]:
    """Forward [n, 187, 96] log-mel patches; returns numpy 'tags' [n, 50] and 'penultimate'
    [n, embedding width] (200 for musicnn, 256 for the VGGs).

    ``hop``: the patches' spacing in frames when they were cut from one sequence (as
    ``MusicnnSpec.extract`` cuts them). When they overlap, musicnn's front end runs once over
    the sequence and recomputes only each patch's edge frames (``Musicnn.forward_shared``),
    ``shared_batch`` patches at a time (16 was fastest in bf16 and float32 among 8, 12, 16 and 32,
    and it bounds the buffers of long inputs: ``benchmarks/musicnn_forward.py``, part 4); the
    outputs equal the patch-by-patch ones up to float rounding. Checked, not trusted: patches that are not such cuts run one by one.

    Otherwise the patches go in ceil(n / batch_size) nearly equal batches of at most
    ``batch_size``: on a 2-core CPU 10 disjoint patches take ~138 ms as 5 + 5 against ~165 ms as
    one batch of 10 (larger batches' front-end activations fall out of cache;
    ``benchmarks/musicnn_forward.py``), and peak memory stays bounded whatever the input length."""
    import torch

    outs: dict[str, list[np.ndarray]] = {"tags": [], "penultimate": []}
    seq = _as_sequence(patches, hop) if hop and hasattr(net, "forward_shared") else None
    n_batches = -(-len(patches) // max(1, shared_batch if seq is not None else batch_size))
    chunks = np.array_split(np.arange(len(patches)), n_batches) if n_batches else []
    with torch.inference_mode():
        if seq is not None:
            seq_t = torch.from_numpy(np.ascontiguousarray(seq, dtype=np.float32))
            frames = patches.shape[1]
        for chunk in chunks:
            first, last = int(chunk[0]), int(chunk[-1]) + 1
            if seq is not None:
                o = net.forward_shared(seq_t[first * hop : (last - 1) * hop + frames],
                                       [(c - first) * hop for c in range(first, last)], frames)
            else:
                o = net(torch.from_numpy(np.ascontiguousarray(patches[first:last], dtype=np.float32)))
            for k in outs:
                outs[k].append(o[k].numpy())
    if not outs["tags"]:
        dim = getattr(net, "embedding_dim", 200)
        return {"tags": np.zeros((0, net.out.out_features), np.float32), "penultimate": np.zeros((0, dim), np.float32)}
    return {k: np.concatenate(v) for k, v in outs.items()}
