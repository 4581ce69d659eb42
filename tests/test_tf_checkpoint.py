"""TF1 checkpoint reader: a hand-built bundle (format details) and musicnn's real checkpoints."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from genrekit.backbones.tf_checkpoint import CheckpointError, TFCheckpoint, masked_crc32c


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(num << 3 | wire)
    if wire == 0:
        return key + _varint(payload)  # type: ignore[arg-type]
    if wire == 5:
        return key + struct.pack("<I", payload)
    return key + _varint(len(payload)) + payload  # type: ignore[arg-type]


def _entry(dtype: int, shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    shape_msg = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
    return (_field(1, 0, dtype) + _field(2, 2, shape_msg) + _field(4, 0, offset) + _field(5, 0, size)
            + _field(6, 5, crc))


def _block(items: list[tuple[bytes, bytes]], prefix_compress: bool = True) -> bytes:
    out = bytearray()
    prev = b""
    for k, v in items:
        shared = 0
        if prefix_compress:
            while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(k) - shared) + _varint(len(v)) + k[shared:] + v
        prev = k
    out += struct.pack("<I", 0) + struct.pack("<I", 1)  # one restart point at 0
    return bytes(out)


def write_bundle(prefix, tensors: dict[str, np.ndarray]) -> None:
    """A minimal TF tensor bundle (what tf.train.Saver writes), for the reader's unit tests."""
    data = bytearray()
    entries = [(b"", _field(1, 0, 1))]  # BundleHeaderProto: num_shards = 1
    codes = {np.dtype("float32"): 1, np.dtype("int32"): 3, np.dtype("float16"): 19, np.dtype("int64"): 9}
    for name in sorted(tensors):
        a = np.array(tensors[name], order="C")
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        entries.append((name.encode(), _entry(codes[a.dtype], a.shape, len(data), len(raw), masked_crc32c(raw))))
        data += raw
    blk = _block(entries)
    index = bytearray(blk + b"\x00" + b"\x00" * 4)  # block + trailer (no compression, crc unchecked)
    meta_off = len(index)
    meta = _block([])
    index += meta + b"\x00" * 5
    idx_off = len(index)
    handle = _varint(0) + _varint(len(blk))
    idx = _block([(entries[-1][0] + b"\xff", handle)])
    index += idx + b"\x00" * 5
    footer = _varint(meta_off) + _varint(len(meta)) + _varint(idx_off) + _varint(len(idx))
    footer += b"\x00" * (40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57)
    index += footer
    (prefix.parent / (prefix.name + ".index")).write_bytes(bytes(index))
    (prefix.parent / (prefix.name + ".data-00000-of-00001")).write_bytes(bytes(data))


def test_reader_roundtrip_synthetic(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "conv2d/kernel": rng.normal(size=(7, 38, 1, 4)).astype(np.float32),
        "conv2d/bias": np.arange(4, dtype=np.float32),
        "dense/kernel": rng.normal(size=(3, 2)).astype(np.float16),
        "global_step": np.array(7, dtype=np.int64),
        "ids": np.array([1, -2, 3], dtype=np.int32),
    }
    write_bundle(tmp_path / "model", tensors)
    ck = TFCheckpoint(tmp_path / "model")
    assert ck.names() == sorted(tensors)
    for k, v in tensors.items():
        got = ck.read(k, verify=True)
        assert got.dtype == v.dtype and got.shape == v.shape
        np.testing.assert_array_equal(got, v)
    # the same bytes held in memory (as read out of a wheel)
    mem = TFCheckpoint.from_bytes((tmp_path / "model.index").read_bytes(),
                                  (tmp_path / "model.data-00000-of-00001").read_bytes())
    np.testing.assert_array_equal(mem.read("conv2d/kernel"), tensors["conv2d/kernel"])


def test_reader_errors(tmp_path):
    write_bundle(tmp_path / "m", {"a": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="no tensor"):
        TFCheckpoint(tmp_path / "m").read("b")
    idx = bytearray((tmp_path / "m.index").read_bytes())
    idx[-1] ^= 0xFF
    (tmp_path / "bad.index").write_bytes(bytes(idx))
    with pytest.raises(CheckpointError, match="magic"):
        TFCheckpoint(tmp_path / "bad")
    with pytest.raises(CheckpointError, match="cannot read"):
        TFCheckpoint(tmp_path / "missing")
    data = tmp_path / "m.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-1] + b"\x01")  # corrupt the last byte
    with pytest.raises(CheckpointError, match="CRC32C"):
        TFCheckpoint(tmp_path / "m").read("a", verify=True)


MSD_SHAPES = {
    "batch_normalization/gamma": (1,),
    "conv2d/kernel": (7, 38, 1, 204),
    "conv2d_1/kernel": (7, 67, 1, 204),
    "conv2d_2/kernel": (128, 1, 1, 51),
    "conv2d_3/kernel": (64, 1, 1, 51),
    "conv2d_4/kernel": (32, 1, 1, 51),
    "conv2d_5/kernel": (7, 561, 1, 64),
    "conv2d_6/kernel": (7, 64, 1, 64),
    "conv2d_7/kernel": (7, 64, 1, 64),
    "batch_normalization_9/moving_variance": (1506,),
    "dense/kernel": (1506, 200),
    "dense_1/kernel": (200, 50),
}


@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_musicnn"])
def test_musicnn_checkpoint_shapes(musicnn_source, model):
    index, data = musicnn_source.read_checkpoint_files(model)
    ck = TFCheckpoint.from_bytes(index, data)
    assert len(ck.entries) == 150  # 48 variables x (value, Adam, Adam_1) + 2 beta powers + ... as saved
    shapes = ck.shapes()
    for name, shape in MSD_SHAPES.items():
        assert shapes[name] == shape, name
    for name in ("batch_normalization/moving_variance", "dense_1/bias", "conv2d_4/bias"):
        a = ck.read(name, verify=True)  # checksums match the stored CRC32C
        assert a.dtype == np.float32 and np.isfinite(a).all()
    assert (ck.read("batch_normalization_9/moving_variance") > 0).all()
