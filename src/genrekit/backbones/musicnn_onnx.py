"""musicnn's network as an ONNX graph, and the runner that feeds it patches through ONNX Runtime.

The graphs (front end and back end) are built here with ``onnx.helper`` (no torch) and committed
weight-free as ``graphs/musicnn_{frontend,backend}.onnx`` (``scripts/export_onnx_graphs.py``
writes them; a test checks the committed files are what this code builds). Its initializers are named exactly like the state dict that
:func:`genrekit.backbones.musicnn.convert_checkpoint` makes from the wheel's TF1 checkpoint, so
filling it is that conversion and nothing else. MSD_musicnn and MTT_musicnn share the structure.

The graph follows :class:`~genrekit.backbones.musicnn` (see its docstring for the TF details)
and its fused front end: BN after ReLU is a per-channel affine ``a * r + c``, so with
``s = sign(a)`` the branch output is ``a * relu(s * max_f(conv_{s w, s b}(x))) + c``: ReLU and BN
then run on [B, C, T] instead of the [B, C, T, F] maps. ``a``, ``s`` and the sign-flipped
filters are computed *in the graph* from the checkpoint's own tensors; ONNX Runtime folds those
constant subgraphs once when the session starts.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from genrekit.backbones import onnx_graphs
from genrekit.backbones.musicnn import LABELS, MUSICNN_VERSION, N_FRAMES

STRUCTURES = {"frontend": onnx_graphs.GRAPHS_DIR / "musicnn_frontend.onnx",
              "backend": onnx_graphs.GRAPHS_DIR / "musicnn_backend.onnx"}
#: Bumped whenever a graph changes, so cached converted models are rebuilt.
GRAPH_VERSION = "2"
EPS = 1e-3  # TF's BatchNormalization default
TIMBRAL = ((7, 38), (7, 67))
TEMPORAL = (128, 64, 32)
N_FILTERS_TIMBRAL, N_FILTERS_TEMPORAL, MIDEND, DENSE, N_TAGS = 204, 51, 64, 200, 50
#: The front end's inputs: one per distinct time padding (both timbral branches pad 3 and 3;
#: each temporal one pads like TF's 'same'), as (name, frames before, frames after).
FRONT_INPUTS = (("timbral", 3, 3),) + tuple((f"temporal_{i}", (k - 1) // 2, k // 2) for i, k in enumerate(TEMPORAL))


def initializer_shapes() -> dict[str, tuple[int, ...]]:
    """The state dict of musicnn's network (``convert_checkpoint``'s names): the graph's weights."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for k in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{k}"] = (c,)

    bn("bn_input", 1)
    for i, (kt, kf) in enumerate(TIMBRAL):
        shapes[f"timbral.{i}.weight"] = (N_FILTERS_TIMBRAL, 1, kt, kf)
        shapes[f"timbral.{i}.bias"] = (N_FILTERS_TIMBRAL,)
        bn(f"bn_timbral.{i}", N_FILTERS_TIMBRAL)
    for i, k in enumerate(TEMPORAL):
        shapes[f"temporal.{i}.weight"] = (N_FILTERS_TEMPORAL, 1, k, 1)
        shapes[f"temporal.{i}.bias"] = (N_FILTERS_TEMPORAL,)
        bn(f"bn_temporal.{i}", N_FILTERS_TEMPORAL)
    front = 2 * N_FILTERS_TIMBRAL + 3 * N_FILTERS_TEMPORAL
    for i in range(3):
        shapes[f"mid.{i}.weight"] = (MIDEND, front if i == 0 else MIDEND, 7)
        shapes[f"mid.{i}.bias"] = (MIDEND,)
        bn(f"bn_mid.{i}", MIDEND)
    pooled = 2 * (front + 3 * MIDEND)
    bn("bn_pool", pooled)
    shapes["dense.weight"] = (DENSE, pooled)
    shapes["dense.bias"] = (DENSE,)
    bn("bn_dense", DENSE)
    shapes["out.weight"] = (N_TAGS, DENSE)
    shapes["out.bias"] = (N_TAGS,)
    return shapes


def build_structures() -> dict[str, Any]:
    """The weight-free ONNX models (``onnx.ModelProto``) of musicnn's two parts.

    ``frontend``: inputs ``timbral``, ``temporal_0..2`` [batch, frames, 96] log-mel frames and
    ``pads_<input>`` (int64 [8], ONNX Pad's layout over [batch, 1, frames, 96]: the zero frames
    added before and after that input *after* musicnn's input BN, as the TF graph pads); outputs
    ``timbral`` [batch, 408, t] (both timbral branches) and ``temporal_0..2`` [batch, 51, t], each
    the branch's conv -> ReLU -> BN -> max over frequency ('valid' over the padded input).
    ``backend``: input ``front`` [batch, 561, frames] -> ``tags`` [batch, 50], ``penultimate``
    [batch, 200]. Splitting there lets overlapping patches share the front end's work
    (:class:`OrtMusicnnRunner`)."""
    from onnx import TensorProto, helper

    def new_builder():
        nodes: list[Any] = []
        counter = [0]

        def node(op: str, inputs: list[str], **attrs: Any) -> str:
            counter[0] += 1
            out = f"{op.lower()}_{counter[0]}"
            nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
            return out

        def const(values: Any, dtype: Any = np.float32) -> str:
            a = np.asarray(values, dtype=dtype)
            counter[0] += 1
            out = f"const_{counter[0]}"
            nodes.append(helper.make_node("Constant", [], [out], name=out, value=helper.make_tensor(
                out, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape, a.reshape(-1).tolist())))
            return out

        def bn(x: str, p: str) -> str:
            return node("BatchNormalization", [x, f"{p}.weight", f"{p}.bias", f"{p}.running_mean",
                                               f"{p}.running_var"], epsilon=EPS)

        return nodes, node, const, bn

    def finish(nodes, name, inputs, outputs, shapes):
        # weight-free: each initializer keeps its name, type and dims, and holds no data
        inits = [TensorProto(name=n, data_type=TensorProto.FLOAT, dims=list(sh)) for n, sh in shapes.items()]
        graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_graphs.OPSET)],
                                  producer_name="genrekit", doc_string="musicnn (Pons & Serra 2019), weight-free: "
                                  "initializers are filled from musicnn 0.1.0's TF1 checkpoint at conversion time")
        model.ir_version = 8  # what ONNX Runtime >= 1.14 reads
        return model

    shapes = initializer_shapes()
    # -- front end
    nodes, node, const, bn = new_builder()

    def fused_branch(x4: str, conv: str, bnp: str) -> str:
        """conv -> ReLU -> BN -> max over frequency, as conv(s w, s b) -> max -> s* -> ReLU -> a* + c."""
        a = node("Div", [f"{bnp}.weight", node("Sqrt", [node("Add", [f"{bnp}.running_var", const(EPS)])])])
        c = node("Sub", [f"{bnp}.bias", node("Mul", [a, f"{bnp}.running_mean"])])
        s = node("Where", [node("Less", [a, const(0.0)]), const(-1.0), const(1.0)])
        w = node("Mul", [f"{conv}.weight", node("Reshape", [s, const([-1, 1, 1, 1], np.int64)])])
        b = node("Mul", [f"{conv}.bias", s])
        z = node("Conv", [x4, w, b])  # [B, C, T, F'], 'valid' over the padded input
        m = node("ReduceMax", [z], axes=[3], keepdims=0)  # [B, C, T]
        col = const([-1, 1], np.int64)
        r = node("Relu", [node("Mul", [m, node("Reshape", [s, col])])])
        return node("Add", [node("Mul", [r, node("Reshape", [a, col])]), node("Reshape", [c, col])])

    outs = []
    for name, _, _ in FRONT_INPUTS:
        x4 = node("Pad", [bn(node("Unsqueeze", [name, const([1], np.int64)]), "bn_input"), f"pads_{name}"])
        if name == "timbral":
            out = node("Concat", [fused_branch(x4, f"timbral.{i}", f"bn_timbral.{i}") for i in range(len(TIMBRAL))], axis=1)
        else:
            i = int(name.rsplit("_", 1)[1])
            out = fused_branch(x4, f"temporal.{i}", f"bn_temporal.{i}")
        nodes.append(helper.make_node("Identity", [out], [f"{name}_out"], name=f"{name}_out"))
        outs.append(helper.make_tensor_value_info(
            f"{name}_out", TensorProto.FLOAT, ["batch", 2 * N_FILTERS_TIMBRAL if name == "timbral" else N_FILTERS_TEMPORAL, f"t_{name}"]))
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", f"frames_{n}", 96]) for n, _, _ in FRONT_INPUTS]
    ins += [helper.make_tensor_value_info(f"pads_{n}", TensorProto.INT64, [8]) for n, _, _ in FRONT_INPUTS]
    front_model = finish(nodes, "musicnn_frontend", ins, outs,
                         {k: v for k, v in shapes.items() if k.split(".")[0] in ("bn_input", "timbral", "bn_timbral",
                                                                                 "temporal", "bn_temporal")})
    # -- back end
    nodes, node, const, bn = new_builder()
    hs = ["front"]
    h = "front"
    for i in range(3):
        y = bn(node("Relu", [node("Conv", [h, f"mid.{i}.weight", f"mid.{i}.bias"], pads=[3, 3])]), f"bn_mid.{i}")
        h = y if i == 0 else node("Add", [y, h])
        hs.append(h)
    fmap = node("Concat", hs, axis=1)  # [B, 753, T]
    pooled = node("Concat", [node("ReduceMax", [fmap], axes=[2], keepdims=1),
                             node("ReduceMean", [fmap], axes=[2], keepdims=1)], axis=2)  # [B, 753, 2]
    flat = bn(node("Flatten", [pooled], axis=1), "bn_pool")  # TF's interleaving: c0max, c0mean, ...
    pen = bn(node("Relu", [node("Gemm", [flat, "dense.weight", "dense.bias"], transB=1)]), "bn_dense")
    logits = node("Gemm", [pen, "out.weight", "out.bias"], transB=1)
    nodes.append(helper.make_node("Identity", [pen], ["penultimate"], name="penultimate"))
    nodes.append(helper.make_node("Sigmoid", [logits], ["tags"], name="tags"))
    front_width = 2 * N_FILTERS_TIMBRAL + 3 * N_FILTERS_TEMPORAL
    back_model = finish(nodes, "musicnn_backend",
                        [helper.make_tensor_value_info("front", TensorProto.FLOAT, ["batch", front_width, "frames"])],
                        [helper.make_tensor_value_info("tags", TensorProto.FLOAT, ["batch", N_TAGS]),
                         helper.make_tensor_value_info("penultimate", TensorProto.FLOAT, ["batch", DENSE])],
                        {k: v for k, v in shapes.items() if k not in front_model_names(shapes)})
    return {"frontend": front_model, "backend": back_model}


def front_model_names(shapes: dict[str, tuple[int, ...]]) -> set[str]:
    return {k for k in shapes if k.split(".")[0] in ("bn_input", "timbral", "bn_timbral", "temporal", "bn_temporal")}


def _arrays(model: str):
    def arrays(weights: str | os.PathLike[str] | None) -> dict[str, np.ndarray]:
        from genrekit.backbones.musicnn import convert_weights, find_weights

        return convert_weights(model, find_weights(model, weights))

    return arrays


for _name in ("MSD_musicnn", "MTT_musicnn"):
    onnx_graphs.register(onnx_graphs.OnnxBackbone(
        name=_name, structures=STRUCTURES, version=f"{MUSICNN_VERSION}-g{GRAPH_VERSION}", arrays=_arrays(_name),
        info={"weights": f"musicnn {MUSICNN_VERSION} wheel (ISC licence), TF1 checkpoint {_name}"}))


def _pads(before: int, after: int) -> np.ndarray:
    """ONNX Pad's [8] over [batch, 1, frames, 96]: zero frames before and after, nothing else."""
    return np.array([0, 0, before, 0, 0, 0, after, 0], np.int64)


class OrtMusicnnRunner:
    """``run(patches, hop)`` -> {'tags', 'penultimate'} like :func:`musicnn.run_patches`, through
    ONNX Runtime.

    Overlapping patches cut from one log-mel sequence every ``hop`` frames (checked, not
    trusted: ``musicnn._as_sequence``) share the front end as the torch path does
    (``Musicnn.frontend_shared``): every front-end filter is a convolution over time followed by
    a max over frequency, so a patch's frames are those of the whole sequence except the ones
    whose receptive field crosses the patch's zero-padded edges; the sequence runs once and only
    those edge frames are recomputed (three front-end runs per chunk: sequence, left edges, right
    edges). Other patches run the front end each with its own padding. ``chunk`` patches at a
    time bound the activations of long inputs (a 30 s clip's 28 patches are one chunk)."""

    engine = "onnx"

    def __init__(self, name: str, weights: str | os.PathLike[str] | None = None, threads: int | None = None,
                 chunk: int = 32) -> None:
        self.name = name
        self.labels = LABELS[name]
        s = onnx_graphs.backbone_sessions(name, weights, threads)
        self.front, self.back = s["frontend"], s["backend"]
        self.chunk = chunk
        self._outs = [f"{n}_out" for n, _, _ in FRONT_INPUTS]

    def _frontend(self, xs: dict[str, np.ndarray], pads: dict[str, tuple[int, int]]) -> list[np.ndarray]:
        feeds = {n: np.ascontiguousarray(x, dtype=np.float32) for n, x in xs.items()}
        feeds |= {f"pads_{n}": _pads(*p) for n, p in pads.items()}
        return self.front.run(self._outs, feeds)

    def frontend_patches(self, patches: np.ndarray) -> np.ndarray:
        """[B, 561, n] front-end maps of patches [B, n, 96], each zero-padded on its own."""
        outs = self._frontend({n: patches for n, _, _ in FRONT_INPUTS}, {n: (b, a) for n, b, a in FRONT_INPUTS})
        return np.concatenate(outs, axis=1)

    def frontend_shared(self, seq: np.ndarray, starts: list[int], n: int = N_FRAMES) -> np.ndarray:
        """[len(starts), 561, n]: ``frontend_patches`` of the patches ``seq[s : s + n]``."""
        idx = np.asarray(starts, np.int64)[:, None] + np.arange(n)
        whole = self._frontend({k: seq[None] for k, _, _ in FRONT_INPUTS}, {k: (b, a) for k, b, a in FRONT_INPUTS})
        left = self._frontend({k: np.stack([seq[s : s + b + a] for s in starts]) for k, b, a in FRONT_INPUTS},
                              {k: (b, 0) for k, b, _ in FRONT_INPUTS})
        right = self._frontend({k: np.stack([seq[s + n - b - a : s + n] for s in starts]) for k, b, a in FRONT_INPUTS},
                               {k: (0, a) for k, _, a in FRONT_INPUTS})
        feats = []
        for (_, b, a), w, lt, rt in zip(FRONT_INPUTS, whole, left, right, strict=True):
            f = w[0][:, idx].transpose(1, 0, 2).copy()  # [B, C, n]
            f[:, :, :b] = lt
            f[:, :, n - a :] = rt
            feats.append(f)
        return np.concatenate(feats, axis=1)

    def run(self, patches: np.ndarray, hop: int | None = None) -> dict[str, np.ndarray]:
        from genrekit.backbones.musicnn import _as_sequence

        patches = np.asarray(patches, dtype=np.float32)
        if len(patches) == 0:
            return {"tags": np.zeros((0, N_TAGS), np.float32), "penultimate": np.zeros((0, DENSE), np.float32)}
        if patches.ndim != 3 or patches.shape[2] != 96 or patches.shape[1] < TEMPORAL[0]:
            raise ValueError(f"musicnn wants patches [n, {N_FRAMES}, 96], got {list(patches.shape)}")
        frames = patches.shape[1]
        seq = _as_sequence(patches, hop) if hop else None
        tags, pen = [], []
        for c in np.array_split(np.arange(len(patches)), -(-len(patches) // self.chunk)):
            first, last = int(c[0]), int(c[-1]) + 1
            if seq is not None:
                front = self.frontend_shared(seq[first * hop : (last - 1) * hop + frames],
                                             [(i - first) * hop for i in range(first, last)], frames)
            else:
                front = self.frontend_patches(patches[first:last])
            t, p = self.back.run(["tags", "penultimate"], {"front": front})
            tags.append(t)
            pen.append(p)
        return {"tags": np.concatenate(tags), "penultimate": np.concatenate(pen)}
