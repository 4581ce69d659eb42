"""EfficientAT mn04 as an ONNX graph, and the runners that feed it log-mel windows.

The graph is exported from the torch port (:mod:`genrekit.backbones.efficientat`) by
``scripts/export_onnx_graphs.py`` with ``torch.onnx.export`` (TorchScript exporter, opset 17, no
constant folding so that every weight stays one initializer named ``n.<state-dict key>``), then
stripped of its data (``onnx_graphs.strip_initializers``) and committed as
``graphs/efficientat_mn04.onnx`` (~75 KB). On the user's machine the release file found by
:func:`efficientat.find_weights` (flag, environment, cache, or a checked download) is read with
:func:`torch_zip.load_state_dict` (no torch, no unpickled code) and poured into that structure.

Input ``mel`` [batch, 128, frames] (``efficientat.mel_frontend``'s output; both axes dynamic, since
the last window of a track can be shorter); outputs ``logits`` [batch, 527], ``embedding``
[batch, 384], ``hidden`` [batch, 512], as :func:`efficientat.run_mel`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from genrekit.backbones import onnx_graphs
from genrekit.backbones.efficientat import EMBED_DIM, HIDDEN_DIM, N_CLASSES, N_MELS, NAME, WEIGHTS_SHA256

STRUCTURE = onnx_graphs.GRAPHS_DIR / "efficientat_mn04.onnx"
STRUCTURES = {"net": STRUCTURE}
#: Bumped whenever the graph changes, so cached converted models are rebuilt.
GRAPH_VERSION = "1"
#: The wrapper's attribute holding the network: initializer ``n.features.0.0.weight`` is state-dict key
#: ``features.0.0.weight``.
PREFIX = "n."
OUTPUTS = ("logits", "embedding", "hidden")


def build_structure() -> Any:
    """The weight-free ``onnx.ModelProto`` of mn04 (export time only: needs torch and onnx).

    Every parameter and buffer is first set to distinct random values: the exporter merges
    initializers of equal contents (a fresh module's BN weights are all ones), which would tie
    tensors that the release file holds apart. Only names, shapes and the graph are kept."""
    import io

    import onnx
    import torch

    from genrekit.backbones.efficientat import efficientat_module

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n = efficientat_module().eval()

        def forward(self, mel: torch.Tensor):
            o = self.n(mel[:, None])
            return o["logits"], o["embedding"], o["hidden"]

    torch.manual_seed(0)
    wrapper = Wrapper().eval()
    buf = io.BytesIO()
    with torch.no_grad():
        for t in [*wrapper.parameters(), *wrapper.buffers()]:
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5)  # positive: running variances stay valid
        torch.onnx.export(wrapper, (torch.zeros(2, N_MELS, 1000),), buf, dynamo=False,
                          do_constant_folding=False, opset_version=onnx_graphs.OPSET, input_names=["mel"],
                          output_names=list(OUTPUTS),
                          dynamic_axes={"mel": {0: "batch", 2: "frames"}, **{k: {0: "batch"} for k in OUTPUTS}})
    model = onnx.load_from_string(buf.getvalue())
    model.doc_string = ("EfficientAT mn04_as (Schmid, Koutini & Widmer 2023; MIT), weight-free: initializers are "
                        "filled from the release file mn04_as_mAP_432.pt at conversion time")
    return onnx_graphs.strip_initializers(model)


def arrays(weights: str | os.PathLike[str] | None) -> dict[str, np.ndarray]:
    """The graph's initializers from the checked release file (``num_batches_tracked`` counters
    are training state that eval mode never reads)."""
    from genrekit.backbones.efficientat import find_weights
    from genrekit.backbones.torch_zip import load_state_dict

    sd = load_state_dict(find_weights(weights))
    return {PREFIX + k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def _check(path: str | os.PathLike[str]) -> object:
    """A named weights file must be the release file (its SHA-256): one line otherwise."""
    from genrekit.backbones.efficientat import find_weights

    return find_weights(path)


onnx_graphs.register(onnx_graphs.OnnxBackbone(
    name=NAME, structures=STRUCTURES, version=f"{WEIGHTS_SHA256[:8]}-g{GRAPH_VERSION}", arrays=arrays,
    info={"weights": "EfficientAT mn04_as_mAP_432.pt release (MIT licence, (c) 2022 Florian Schmid)"},
    # all optimisations (NCHWc conv layouts): 2-3x faster than basic for this MobileNet, outputs
    # within ~1e-5 (benchmarks/mn04_threads.py prints both)
    optimization="all", check=_check))


def _empty() -> dict[str, np.ndarray]:
    return {"logits": np.zeros((0, N_CLASSES), np.float32), "embedding": np.zeros((0, EMBED_DIM), np.float32),
            "hidden": np.zeros((0, HIDDEN_DIM), np.float32)}


def _as_batch(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim == 2:
        mel = mel[None]
    if mel.ndim != 3 or mel.shape[1] != N_MELS:
        raise ValueError(f"mn04 wants mel inputs [n, {N_MELS}, frames], got {list(mel.shape)}")
    return mel


class OrtEfficientatRunner:
    """``run_mel(mel [B, 128, T])`` -> {'logits', 'embedding', 'hidden'} through ONNX Runtime,
    ``batch_size`` windows per run (bounds the activations of an hour-long file)."""

    engine = "onnx"

    def __init__(self, name: str = NAME, weights: str | os.PathLike[str] | None = None,
                 threads: int | None = None) -> None:
        from genrekit.backbones.efficientat import ENV_WEIGHTS, find_weights

        self.name = name
        if weights is None and os.environ.get(ENV_WEIGHTS):
            # a file the user names must be the release file (one line otherwise, as on the torch
            # path) even when a converted copy is cached (a ``weights`` path: ``check`` below)
            find_weights(None)
        self.session = onnx_graphs.backbone_sessions(name, weights, threads)["net"]

    def run_mel(self, mel: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
        mel = _as_batch(mel)
        if len(mel) == 0:
            return _empty()
        parts = [self.session.run(list(OUTPUTS), {"mel": np.ascontiguousarray(mel[i : i + batch_size])})
                 for i in range(0, len(mel), batch_size)]
        return {k: np.concatenate([p[j] for p in parts]) for j, k in enumerate(OUTPUTS)}

    def run(self, patches: np.ndarray, hop: int | None = None) -> dict[str, np.ndarray]:
        """The runner protocol's name for :meth:`run_mel` (``hop`` unused: windows have their own mel)."""
        return self.run_mel(patches)


class TorchEfficientatRunner:
    """mn04 through the torch port (``GENREKIT_ENGINE=torch``): training and the parity reference."""

    engine = "torch"

    def __init__(self, name: str = NAME, weights: str | os.PathLike[str] | None = None) -> None:
        from genrekit.backbones.efficientat import load_efficientat

        self.name = name
        self.net = load_efficientat(weights)

    def run_mel(self, mel: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
        from genrekit.backbones.efficientat import run_mel

        mel = _as_batch(mel)
        return run_mel(self.net, mel, batch_size) if len(mel) else _empty()

    def run(self, patches: np.ndarray, hop: int | None = None) -> dict[str, np.ndarray]:
        return self.run_mel(patches)
