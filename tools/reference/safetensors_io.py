"""Minimal safetensors writer/reader in plain Python + numpy (the `safetensors`
package is not needed). Format: u64 little-endian header length N, N bytes of
UTF-8 JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}, padded with spaces to a multiple of 8, then the
data section (row-major, little-endian). Tensors are written in the order given.
"""
import json
import os
import struct

import numpy as np

_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}


def _to_bytes(arr, dtype):
    if dtype == "BF16":  # round to nearest even from float32
        u = np.ascontiguousarray(arr, dtype="<f4").view("<u4").astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
        return u.tobytes()
    return np.ascontiguousarray(arr, dtype=_DTYPES[dtype]).tobytes()


def save(path, tensors, metadata=None):
    """tensors: list of (name, numpy array, dtype string) in file order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, arr, dtype in tensors:
        if name in header:
            raise ValueError(f"duplicate tensor {name}")
        b = _to_bytes(np.asarray(arr), dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path):
    """Returns (dict name -> float64/int64 numpy array, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        raw = data[8 + n + b: 8 + n + en]
        if e["dtype"] == "BF16":
            a = (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
        else:
            a = np.frombuffer(raw, _DTYPES[e["dtype"]])
        out[name] = a.reshape(e["shape"])
    return out, meta
