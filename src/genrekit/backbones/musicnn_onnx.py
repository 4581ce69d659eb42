"""musicnn's network as an ONNX graph, and the runner that feeds it patches through ONNX Runtime.

The graph is built here with ``onnx.helper`` (no torch) and committed weight-free as
``graphs/musicnn.onnx`` (``scripts/export_onnx_graphs.py`` writes it; a test checks the committed
file is what this code builds). Its initializers are named exactly like the state dict that
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

STRUCTURE = onnx_graphs.GRAPHS_DIR / "musicnn.onnx"
#: Bumped whenever the graph changes, so cached converted models are rebuilt.
GRAPH_VERSION = "1"
EPS = 1e-3  # TF's BatchNormalization default
TIMBRAL = ((7, 38), (7, 67))
TEMPORAL = (128, 64, 32)
N_FILTERS_TIMBRAL, N_FILTERS_TEMPORAL, MIDEND, DENSE, N_TAGS = 204, 51, 64, 200, 50


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


def build_structure() -> Any:
    """The weight-free ONNX model (``onnx.ModelProto``): input ``patches`` [batch, frames, 96]
    log-mel patches, outputs ``tags`` [batch, 50] and ``penultimate`` [batch, 200]."""
    from onnx import TensorProto, helper

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
        return node("BatchNormalization", [x, f"{p}.weight", f"{p}.bias", f"{p}.running_mean", f"{p}.running_var"],
                    epsilon=EPS)

    def fused_branch(x4: str, conv: str, bnp: str, pads: list[int]) -> str:
        """conv -> ReLU -> BN -> max over frequency, as conv(s w, s b) -> max -> s* -> ReLU -> a* + c."""
        a = node("Div", [f"{bnp}.weight", node("Sqrt", [node("Add", [f"{bnp}.running_var", const(EPS)])])])
        c = node("Sub", [f"{bnp}.bias", node("Mul", [a, f"{bnp}.running_mean"])])
        s = node("Where", [node("Less", [a, const(0.0)]), const(-1.0), const(1.0)])
        w = node("Mul", [f"{conv}.weight", node("Reshape", [s, const([-1, 1, 1, 1], np.int64)])])
        b = node("Mul", [f"{conv}.bias", s])
        z = node("Conv", [x4, w, b], pads=pads)  # [B, C, T, F']
        m = node("ReduceMax", [z], axes=[3], keepdims=0)  # [B, C, T]
        col = const([-1, 1], np.int64)
        r = node("Relu", [node("Mul", [m, node("Reshape", [s, col])])])
        return node("Add", [node("Mul", [r, node("Reshape", [a, col])]), node("Reshape", [c, col])])

    x4 = bn(node("Unsqueeze", ["patches", const([1], np.int64)]), "bn_input")  # [B, 1, T, F]
    feats = [fused_branch(x4, f"timbral.{i}", f"bn_timbral.{i}", [3, 0, 3, 0]) for i in range(len(TIMBRAL))]
    feats += [fused_branch(x4, f"temporal.{i}", f"bn_temporal.{i}", [(k - 1) // 2, 0, k // 2, 0])
              for i, k in enumerate(TEMPORAL)]
    front = node("Concat", feats, axis=1)  # [B, 561, T]
    hs = [front]
    h = front
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
    # weight-free: each initializer keeps its name, type and dims, and holds no data
    inits = [TensorProto(name=n, data_type=TensorProto.FLOAT, dims=list(shape)) for n, shape in initializer_shapes().items()]
    graph = helper.make_graph(
        nodes, "musicnn",
        [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["batch", "frames", 96])],
        [helper.make_tensor_value_info("tags", TensorProto.FLOAT, ["batch", N_TAGS]),
         helper.make_tensor_value_info("penultimate", TensorProto.FLOAT, ["batch", DENSE])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_graphs.OPSET)],
                              producer_name="genrekit", doc_string="musicnn (Pons & Serra 2019), weight-free: "
                              "initializers are filled from musicnn 0.1.0's TF1 checkpoint at conversion time")
    model.ir_version = 8  # what ONNX Runtime >= 1.14 reads
    return model


def _arrays(model: str):
    def arrays(weights: str | os.PathLike[str] | None) -> dict[str, np.ndarray]:
        from genrekit.backbones.musicnn import convert_weights, find_weights

        return convert_weights(model, find_weights(model, weights))

    return arrays


for _name in ("MSD_musicnn", "MTT_musicnn"):
    onnx_graphs.register(onnx_graphs.OnnxBackbone(
        name=_name, structure=STRUCTURE, version=f"{MUSICNN_VERSION}-g{GRAPH_VERSION}", arrays=_arrays(_name),
        info={"weights": f"musicnn {MUSICNN_VERSION} wheel (ISC licence), TF1 checkpoint {_name}"}))


class OrtMusicnnRunner:
    """``run(patches, hop)`` -> {'tags', 'penultimate'} like :func:`musicnn.run_patches`, through
    ONNX Runtime. Patches go in batches of at most ``batch_size`` (one run for a 30 s clip's
    patches; the bound keeps long inputs' activations in memory)."""

    engine = "onnx"

    def __init__(self, name: str, weights: str | os.PathLike[str] | None = None, threads: int | None = None,
                 batch_size: int = 32) -> None:
        self.name = name
        self.labels = LABELS[name]
        self.session = onnx_graphs.backbone_session(name, weights, threads)
        self.batch_size = batch_size

    def run(self, patches: np.ndarray, hop: int | None = None) -> dict[str, np.ndarray]:
        patches = np.ascontiguousarray(patches, dtype=np.float32)
        if len(patches) == 0:
            return {"tags": np.zeros((0, N_TAGS), np.float32), "penultimate": np.zeros((0, DENSE), np.float32)}
        if patches.ndim != 3 or patches.shape[2] != 96 or patches.shape[1] < TEMPORAL[0]:
            raise ValueError(f"musicnn wants patches [n, {N_FRAMES}, 96], got {list(patches.shape)}")
        n_batches = -(-len(patches) // self.batch_size)
        outs = [self.session.run(["tags", "penultimate"], {"patches": patches[c[0] : c[-1] + 1]})
                for c in np.array_split(np.arange(len(patches)), n_batches)]
        return {"tags": np.concatenate([o[0] for o in outs]), "penultimate": np.concatenate([o[1] for o in outs])}
