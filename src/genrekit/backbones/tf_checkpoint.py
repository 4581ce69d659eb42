"""Reader for TensorFlow 1 "tensor bundle" checkpoints, without TensorFlow.

Why: musicnn's weights ship as TF1 checkpoints (``.index`` + ``.data-00000-of-00001``) and
TensorFlow 1 does not run on Python 3.11. The format is small and stable:

* ``.index`` is a LevelDB-style SSTable ("table" format): data blocks of prefix-compressed
  key/value entries with a restart array, an index block pointing at the data blocks, and a
  48-byte footer ending with the magic number ``0xdb4775248b80fb57``.
* The value under the empty key is a ``BundleHeaderProto``; every other key is a tensor name whose
  value is a ``BundleEntryProto`` (dtype, shape, shard_id, offset, size, crc32c).
* The tensor bytes live, little-endian and C-ordered, at ``offset`` in
  ``<prefix>.data-<shard>-of-<num_shards>``.

Only the handful of protobuf fields needed are decoded, by hand (no protobuf dependency).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_LEN = 48

# tensorflow/core/framework/types.proto
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}


class CheckpointError(ValueError):
    """A TF checkpoint that cannot be read (truncated, unknown dtype, compressed block...)."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shard(s)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None


def read_varint(buf: bytes, pos: int, error: type[Exception] | None = None) -> tuple[int, int]:
    """(value, next position) of a protobuf base-128 varint at ``pos``; a truncated one raises
    ``error`` (CheckpointError by default). TF1 checkpoints and ONNX graphs are both protobuf."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise (error or CheckpointError)("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes):
    """Yield (field_number, wire_type, value) for a protobuf message (values raw)."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = read_varint(buf, pos)
        elif wire == 1:
            val = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            val = buf[pos : pos + n]
            pos += n
        elif wire == 5:
            val = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        yield field, wire, val


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for field, _, val in _proto_fields(buf):
        if field == 2:  # Dim
            size = 0
            for f2, _, v2 in _proto_fields(val):
                if f2 == 1:
                    size = v2 - (1 << 64) if v2 >= 1 << 63 else v2
            dims.append(size)
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> TensorEntry:
    dtype_code, shape, shard, offset, size, crc = 0, (), 0, 0, 0, None
    for field, _, val in _proto_fields(buf):
        if field == 1:
            dtype_code = val
        elif field == 2:
            shape = _parse_shape(val)
        elif field == 3:
            shard = val
        elif field == 4:
            offset = val
        elif field == 5:
            size = val
        elif field == 6:
            crc = val
        elif field == 7:
            raise CheckpointError(f"{name}: sliced tensors are not supported")
    if dtype_code not in _DTYPES:
        raise CheckpointError(f"{name}: unsupported TF dtype code {dtype_code}")
    return TensorEntry(name, _DTYPES[dtype_code], shape, shard, offset, size, crc)


def _read_block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Decode one SSTable block (offset/size from a BlockHandle) into key/value pairs."""
    if offset + size + 5 > len(data):
        raise CheckpointError("block handle points past the end of the index file")
    if data[offset + size] != 0:
        raise CheckpointError("compressed index blocks are not supported")
    block = data[offset : offset + size]
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    entries: list[tuple[bytes, bytes]] = []
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        vlen, pos = read_varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + vlen]))
        pos += vlen
    return entries


def _read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < _FOOTER_LEN:
        raise CheckpointError("index file too short")
    footer = data[-_FOOTER_LEN:]
    if struct.unpack_from("<Q", footer, _FOOTER_LEN - 8)[0] != _TABLE_MAGIC:
        raise CheckpointError("not a TF checkpoint index (bad table magic)")
    pos = 0
    _, pos = read_varint(footer, pos)  # metaindex offset
    _, pos = read_varint(footer, pos)  # metaindex size
    idx_off, pos = read_varint(footer, pos)
    idx_size, pos = read_varint(footer, pos)
    out: list[tuple[bytes, bytes]] = []
    for _, handle in _read_block(data, idx_off, idx_size):
        off, p = read_varint(handle, 0)
        size, _ = read_varint(handle, p)
        out.extend(_read_block(data, off, size))
    return out


class TFCheckpoint:
    """A TF1 checkpoint given by its prefix (``dir/`` or ``dir/model.ckpt``).

    ``entries`` maps tensor names to :class:`TensorEntry`; ``read(name)`` returns a numpy array.
    """

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = str(prefix)
        index_path = Path(self.prefix + ".index")
        try:
            data = index_path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{index_path}: cannot read checkpoint index ({exc})") from exc
        self._parse_index(data)
        self._shards: dict[int, bytes] = {}

    @classmethod
    def from_bytes(cls, index: bytes, data: bytes, name: str = "<memory>") -> TFCheckpoint:
        """A single-shard checkpoint held in memory (e.g. read out of a wheel)."""
        self = cls.__new__(cls)
        self.prefix = name
        self._parse_index(index)
        if self.num_shards != 1:
            raise CheckpointError(f"{name}: {self.num_shards} shards, expected 1")
        self._shards = {0: data}
        return self

    def _parse_index(self, data: bytes) -> None:
        self.num_shards = 1
        self.entries: dict[str, TensorEntry] = {}
        for key, value in _read_table(data):
            if key == b"":
                for field, _, val in _proto_fields(value):
                    if field == 1:
                        self.num_shards = val
                continue
            name = key.decode("utf-8")
            self.entries[name] = _parse_entry(name, value)

    def _shard(self, shard_id: int) -> bytes:
        if shard_id not in self._shards:
            path = f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"
            try:
                self._shards[shard_id] = Path(path).read_bytes()
            except OSError as exc:
                raise CheckpointError(f"{path}: cannot read checkpoint data ({exc})") from exc
        return self._shards[shard_id]

    def names(self) -> list[str]:
        return sorted(self.entries)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: e.shape for n, e in sorted(self.entries.items())}

    def read(self, name: str, verify: bool = False) -> np.ndarray:
        """The tensor ``name`` as a numpy array; ``verify`` checks its masked CRC32C (slow)."""
        try:
            e = self.entries[name]
        except KeyError:
            raise CheckpointError(f"{self.prefix}: no tensor named {name!r}") from None
        raw = self._shard(e.shard_id)[e.offset : e.offset + e.size]
        if len(raw) != e.size:
            raise CheckpointError(f"{name}: data file truncated")
        if verify and e.crc32c is not None and masked_crc32c(raw) != e.crc32c:
            raise CheckpointError(f"{name}: CRC32C mismatch")
        count = int(np.prod(e.shape)) if e.shape else 1
        if count * e.dtype.itemsize != e.size:
            raise CheckpointError(f"{name}: size {e.size} does not match shape {e.shape}")
        return np.frombuffer(raw, dtype=e.dtype).reshape(e.shape).astype(e.dtype.newbyteorder("="))

    def read_all(self, skip_optimizer: bool = True) -> dict[str, np.ndarray]:
        """All tensors; optimizer slots (``.../Adam``, ``.../Adam_1``, ``beta?_power``) skipped."""
        out = {}
        for name in self.names():
            if skip_optimizer and (
                name.endswith("/Adam") or name.endswith("/Adam_1") or "_power" in name
            ):
                continue
            out[name] = self.read(name)
        return out


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE: list[int] | None = None


def crc32c(data: bytes) -> int:
    """Castagnoli CRC (pure Python; used only to verify checkpoints in tests)."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _crc32c_table()
    t = _CRC_TABLE
    c = 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """LevelDB/TF mask: rotate right by 15 and add a constant."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
