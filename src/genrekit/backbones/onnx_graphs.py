"""Backbone networks as ONNX models run by ONNX Runtime: prediction without torch.

Why this shape: the weights of every backbone come from their publisher (musicnn's wheel, the
EfficientAT release), never from this repository, and a light install has no torch to rebuild a
network from them. So the repository carries only each network's *graph structure*: an ONNX
model whose initializers keep their names, shapes and types but no data
(``graphs/<name>.onnx``, a few kilobytes, written by ``scripts/export_onnx_graphs.py``). On first
use the weights are read from their source with numpy (``tf_checkpoint``, ``torch_zip``), poured
into that structure (:func:`fill_graph`, on the protobuf bytes: no ``onnx`` package needed), and the filled model is written atomically to the
user cache with its SHA-256 beside it (:func:`converted_model`); later runs check the checksum
and load it.

Adding a backbone is one :func:`register` call: an :class:`OnnxBackbone` naming its structure
file, a version string and a function that returns the initializer arrays by name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.errors import GenrekitError

#: Committed weight-free graph structures.
GRAPHS_DIR = Path(__file__).parent / "graphs"
#: The opset the structures are written for (ONNX Runtime >= 1.14 runs it).
OPSET = 17
ENV_THREADS = "GENREKIT_THREADS"


class OnnxGraphError(GenrekitError):
    """A graph structure and its weights do not fit, or a converted model is unusable."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise GenrekitError("exporting a graph structure needs the 'onnx' package: pip install onnx") from None
    return onnx


def strip_initializers(model: Any) -> Any:
    """A copy of ``model`` (an ``onnx.ModelProto``, e.g. from ``torch.onnx.export``) whose
    initializers keep name, type and dims but hold no data: the weight-free structure this
    repository commits (export time only: needs the ``onnx`` package)."""
    onnx = _onnx()
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        kept = onnx.TensorProto(name=init.name, data_type=init.data_type, dims=list(init.dims))
        init.CopyFrom(kept)
    return out


# --- the few protobuf bits needed to fill a structure (no onnx package at run time) -------------
# ModelProto.graph = 7; GraphProto.initializer = 5; TensorProto: dims = 1, data_type = 2,
# name = 8, raw_data = 9 (onnx/onnx.proto). Every other field is copied through byte for byte.
_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_T_DIMS, _T_DTYPE, _T_NAME, _T_RAW = 1, 2, 8, 9
#: ONNX TensorProto.DataType -> numpy dtype (the ones backbone weights use).
ONNX_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("u1"), 3: np.dtype("i1"), 5: np.dtype("<i2"), 6: np.dtype("<i4"),
               7: np.dtype("<i8"), 9: np.dtype("?"), 10: np.dtype("<f2"), 11: np.dtype("<f8")}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    from genrekit.backbones.tf_checkpoint import read_varint

    try:
        return read_varint(buf, pos, OnnxGraphError)
    except OnnxGraphError:
        raise OnnxGraphError("damaged graph structure (truncated varint)") from None


def _enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _fields(buf: bytes):
    """Yield (field, wire type, value, the field's raw bytes) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise OnnxGraphError(f"damaged graph structure (protobuf wire type {wire})")
        if pos > len(buf):
            raise OnnxGraphError("damaged graph structure (truncated field)")
        yield field, wire, val, buf[start:pos]


def _len_field(field: int, payload: bytes) -> bytes:
    return _enc_varint(field << 3 | 2) + _enc_varint(len(payload)) + payload


def _tensor_header(buf: bytes) -> tuple[str, tuple[int, ...], int]:
    """(name, dims, data type) of a serialized TensorProto."""
    name, dims, dtype = "", [], 0
    for num, wire, val, _ in _fields(buf):
        if num == _T_NAME:
            name = bytes(val).decode("utf-8")
        elif num == _T_DTYPE:
            dtype = val
        elif num == _T_DIMS and wire == 0:
            dims.append(val)
        elif num == _T_DIMS and wire == 2:  # packed
            p = 0
            while p < len(val):
                d, p = _varint(val, p)
                dims.append(d)
    return name, tuple(dims), dtype


def _encode_tensor(name: str, a: np.ndarray, dtype: int) -> bytes:
    dims = b"".join(_enc_varint(_T_DIMS << 3) + _enc_varint(d) for d in a.shape)
    return (dims + _enc_varint(_T_DTYPE << 3) + _enc_varint(dtype)
            + _len_field(_T_NAME, name.encode("utf-8")) + _len_field(_T_RAW, a.tobytes()))


def _graph(model: bytes) -> bytes:
    graphs = [val for num, wire, val, _ in _fields(model) if num == _MODEL_GRAPH and wire == 2]
    if len(graphs) != 1:
        raise OnnxGraphError("not an ONNX model (no graph)")
    return graphs[0]


def structure_initializers(structure: bytes) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{initializer name: (shape, numpy dtype)} of a serialized structure."""
    out = {}
    for num, _, val, _ in _fields(_graph(structure)):
        if num == _GRAPH_INITIALIZER:
            name, dims, dtype = _tensor_header(val)
            if dtype not in ONNX_DTYPES:
                raise OnnxGraphError(f"{name}: unsupported ONNX data type {dtype}")
            out[name] = (dims, ONNX_DTYPES[dtype])
    return out


def fill_graph(structure_path: str | os.PathLike[str], arrays: dict[str, np.ndarray], subset: bool = False) -> bytes:
    """The structure at ``structure_path`` with every initializer filled from ``arrays``: a
    serialized ``ModelProto`` (load it with ``onnx.load_from_string`` or give it to ONNX Runtime).

    Done on the protobuf bytes (each initializer rewritten with ``raw_data``, every other field
    copied as is), so a light install needs no ``onnx`` package. Strict both ways, because a
    silently missing or extra tensor is a wrong network: every initializer must get an array of
    exactly its shape, and every array must be used (``subset``: a network split into several
    graphs fills each from the same arrays; :func:`converted_models` checks that every array
    is used by one of them)."""
    structure = Path(structure_path).read_bytes()
    wanted = structure_initializers(structure)
    missing = sorted(set(wanted) - set(arrays))
    extra = [] if subset else sorted(set(arrays) - set(wanted))
    if missing or extra:
        raise OnnxGraphError(f"{structure_path}: the weights do not fit the graph (missing {missing[:3]}, "
                             f"unused {extra[:3]})")
    graph = bytearray()
    for num, _, val, raw in _fields(_graph(structure)):
        if num != _GRAPH_INITIALIZER:
            graph += raw
            continue
        name, dims, dtype = _tensor_header(val)
        a = np.asarray(arrays[name])
        if tuple(a.shape) != dims:
            raise OnnxGraphError(f"{structure_path}: {name} has shape {tuple(a.shape)}, the graph wants {dims}")
        graph += _len_field(_GRAPH_INITIALIZER, _encode_tensor(name, np.ascontiguousarray(a, ONNX_DTYPES[dtype]), dtype))
    model = bytearray()
    for num, _, _, raw in _fields(structure):
        model += _len_field(_MODEL_GRAPH, bytes(graph)) if num == _MODEL_GRAPH else raw
    return bytes(model)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_model(blob: bytes, path: Path, meta: dict[str, str]) -> str:
    """Write the serialized model ``blob`` to ``path`` and its SHA-256 (+ ``meta``) to
    ``path.json``, each atomically (the model first, so a checksum never describes a file not
    yet written)."""
    from genrekit.models.modelfile import atomic_path, write_text_atomic

    digest = hashlib.sha256(blob).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    write_text_atomic(_sidecar(path), json.dumps({"sha256": digest, **meta}, indent=1) + "\n")
    return digest


def read_checked(path: Path) -> bytes | None:
    """The bytes of a converted model whose checksum matches its sidecar, else None (missing,
    damaged or half-written: the caller converts it again)."""
    try:
        blob = path.read_bytes()
        digest = json.loads(_sidecar(path).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return blob if hashlib.sha256(blob).hexdigest() == digest else None


@dataclass(frozen=True)
class OnnxBackbone:
    """One network runnable through ONNX Runtime, as one or more graphs (``structures``: part
    name -> committed weight-free structure; musicnn has a front end and a back end so that
    overlapping patches share the front end's work).

    ``arrays(weights)`` returns the initializers by name, read from the network's published
    weights (``weights``: an explicit path or None for the usual search); ``version`` names the
    weights and the structures, so a new structure or source converts again. ``optimization``:
    ONNX Runtime's graph optimisation level for its sessions (``basic``, ``extended`` or ``all``),
    measured per network (:func:`session`). ``check(path)``: for networks whose published file
    has a known checksum, raises unless a named file is that file; a named file that passes is
    then converted into (and served from) the cache like the usual lookup's."""

    name: str
    structures: dict[str, Path]
    version: str
    arrays: Callable[[str | os.PathLike[str] | None], dict[str, np.ndarray]]
    info: dict[str, str] = dc_field(default_factory=dict)
    optimization: str = "basic"
    check: Callable[[str | os.PathLike[str]], object] | None = None


_REGISTRY: dict[str, OnnxBackbone] = {}


def register(backbone: OnnxBackbone) -> None:
    """Make ``backbone`` available to :func:`converted_model` / :func:`backbone_session`."""
    _REGISTRY[backbone.name] = backbone


def registered() -> dict[str, OnnxBackbone]:
    _load_builtin()
    return dict(_REGISTRY)


def _load_builtin() -> None:
    """Built-in backbones register themselves when their module is imported."""
    if "MSD_musicnn" not in _REGISTRY:
        import genrekit.backbones.musicnn_onnx  # noqa: F401
    if "efficientat_mn04" not in _REGISTRY:
        import genrekit.backbones.efficientat_onnx  # noqa: F401


def get(name: str) -> OnnxBackbone:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise GenrekitError(f"{name}: no ONNX graph for this backbone (have {', '.join(sorted(_REGISTRY))})") from None


def converted_path(name: str, part: str) -> Path:
    from genrekit.cache import cache_dir

    b = get(name)
    return cache_dir() / "onnx" / f"{b.name}-{part}-{b.version}.onnx"


def converted_models(name: str, weights: str | os.PathLike[str] | None = None) -> dict[str, bytes]:
    """{part: filled ONNX model bytes} of backbone ``name``: from the user cache when every
    part's checksum holds, else converted from the published weights now (read once for all
    parts) and cached (a read-only cache is not fatal: it converts again next time). An
    explicit ``weights`` path always converts from that path and leaves the cache alone, unless
    the backbone can ``check`` that it is the published file."""
    b = get(name)
    out: dict[str, bytes] = {}
    cacheable = weights is None
    if weights is not None and b.check is not None:
        b.check(weights)  # the published file, bytes checked: the same model as the usual lookup's
        cacheable = True
    if cacheable:
        for part in b.structures:
            blob = read_checked(converted_path(name, part))
            if blob is None:
                break
            out[part] = blob
        else:
            return out
    arrays = b.arrays(weights)
    used: set[str] = set()
    for part, structure in b.structures.items():
        used |= set(structure_initializers(Path(structure).read_bytes()))
        out[part] = fill_graph(structure, arrays, subset=True)
    if set(arrays) - used:
        raise OnnxGraphError(f"{name}: weights no graph uses: {sorted(set(arrays) - used)[:3]}")
    if cacheable:
        for part, blob in out.items():
            try:
                save_model(blob, converted_path(name, part), {"backbone": b.name, "part": part, "version": b.version,
                                                              **b.info})
            except OSError:
                pass
    return out


def default_threads() -> int:
    """Intra-op threads: ``GENREKIT_THREADS``, else every core (2 on this project's machines)."""
    env = os.environ.get(ENV_THREADS, "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, os.cpu_count() or 1)


def session(model: bytes | str | os.PathLike[str], threads: int | None = None, optimization: str = "basic") -> Any:
    """An ONNX Runtime CPU session: ``threads`` intra-op threads, one inter-op thread (the graphs
    are one chain of big ops: parallelism lives inside them), no thread spinning, and the basic
    graph optimisations (constant folding: the fused front end's sign-flipped filters are
    computed once here). ``benchmarks/onnx_session_options.py`` measured these fastest for
    musicnn on 2 threads: the extended and "all" levels add NCHWc conv layouts whose reorder
    before the max over frequency costs more than it saves, and spinning threads take cores from
    the other workers of ``batch`` / requests of ``serve`` (and the neighbours of a shared box).
    ``optimization="all"`` suits other networks: EfficientAT mn04's depthwise and 1x1 convolutions
    run 2-3x faster in those layouts (``benchmarks/mn04_threads.py``)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise GenrekitError("prediction needs onnxruntime (pip install onnxruntime) or torch "
                            "(pip install 'genrekit[train]')") from None
    so = ort.SessionOptions()
    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    so.graph_optimization_level = levels[optimization]
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=so, providers=["CPUExecutionProvider"])


_SESSIONS: dict[tuple[str, str, int], dict[str, Any]] = {}


def backbone_sessions(name: str, weights: str | os.PathLike[str] | None = None,
                      threads: int | None = None) -> dict[str, Any]:
    """{part: session} of backbone ``name`` (memoised per weights and thread count)."""
    from genrekit.cache import cache_dir

    threads = threads or default_threads()
    key = (name, f"{weights}|{cache_dir()}", threads)  # another cache folder converts (or finds) anew
    if key not in _SESSIONS:
        level = get(name).optimization
        _SESSIONS[key] = {part: session(blob, threads, level) for part, blob in converted_models(name, weights).items()}
    return _SESSIONS[key]
