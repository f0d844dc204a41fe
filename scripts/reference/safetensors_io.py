"""Minimal, dependency-free (numpy only) safetensors reader/writer.

Format: 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
header ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``
(offsets relative to the first byte after the header), then the raw
little-endian tensor data.

Used only by the offline reference scripts in this folder.
"""

import json
import struct

import numpy as np

# safetensors dtype name -> numpy little-endian dtype (BF16 handled specially)
_NP_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_ITEMSIZE = {k: v.itemsize for k, v in _NP_DTYPES.items()}
_ITEMSIZE["BF16"] = 2


def bf16_bits_to_f32(bits):
    """uint16 array of bfloat16 bit patterns -> float32 array (exact)."""
    bits = np.asarray(bits, dtype="<u2")
    return (bits.astype("<u4") << 16).view("<f4")


def f32_to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns (round to nearest even)."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    out = rounded.astype("<u2")
    out[nan] = 0x7FC0
    return out


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    return header, 8 + n


def read_safetensors(path, upcast=True):
    """Returns (dict name -> numpy array, metadata dict).

    With upcast=True, F16 and BF16 tensors are returned as float32 (exact).
    """
    header, data_start = read_header(path)
    meta = header.pop("__metadata__", {}) or {}
    with open(path, "rb") as f:
        f.seek(data_start)
        data = f.read()
    out = {}
    for name, info in header.items():
        dtype = info["dtype"]
        shape = tuple(info["shape"])
        b, e = info["data_offsets"]
        if dtype not in _ITEMSIZE:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if e - b != count * _ITEMSIZE[dtype]:
            raise ValueError(
                f"{path}: tensor {name}: byte range {e - b} does not match "
                f"shape {shape} x {dtype}"
            )
        raw = data[b:e]
        if dtype == "BF16":
            arr = np.frombuffer(raw, dtype="<u2", count=count)
            arr = bf16_bits_to_f32(arr) if upcast else arr.copy()
        else:
            arr = np.frombuffer(raw, dtype=_NP_DTYPES[dtype], count=count).copy()
            if upcast and dtype == "F16":
                arr = arr.astype(np.float32)
        out[name] = arr.reshape(shape)
    return out, meta


def _dtype_name(arr):
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    for k, v in _NP_DTYPES.items():
        if v == dt or (v.kind == dt.kind and v.itemsize == dt.itemsize and k != "BOOL"):
            return k
    raise ValueError(f"unsupported numpy dtype {arr.dtype}")


def write_safetensors(path, tensors, metadata=None, dtypes=None):
    """Writes ``tensors`` (name -> numpy array) to ``path``.

    ``dtypes`` optionally maps name -> "BF16" to store a float array as bf16
    bits (or pass a uint16 array with dtype "BF16"). Header keys are sorted,
    data is laid out in sorted-name order, and the header is padded with
    spaces to a multiple of 8 bytes.
    """
    dtypes = dtypes or {}
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        st_dtype = dtypes.get(name)
        if st_dtype == "BF16":
            raw_arr = arr if arr.dtype == np.uint16 else f32_to_bf16_bits(arr)
            raw = np.ascontiguousarray(raw_arr, dtype="<u2").tobytes()
        else:
            if st_dtype is not None:
                arr = arr.astype(_NP_DTYPES[st_dtype])
            else:
                st_dtype = _dtype_name(arr)
            raw = np.ascontiguousarray(arr, dtype=_NP_DTYPES[st_dtype]).tobytes()
        header[name] = {
            "dtype": st_dtype,
            "shape": [int(s) for s in arr.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    full = {}
    if metadata is not None:
        full["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for k in sorted(header):
        full[k] = header[k]
    hbytes = json.dumps(full, separators=(",", ":"), sort_keys=True).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for raw in blobs:
            f.write(raw)
