"""Byte encoding of one prepared example (named numpy arrays plus scalar metadata)."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

_MAGIC = b"VTR1"
_SCALAR_TYPES = (bool, int, float, str, np.integer, np.floating, np.bool_)


def encode_example(example: Mapping[str, Any]) -> bytes:
    """Serialises an example to bytes for one ArrayRecord record.

    Args:
      example: maps names to numpy arrays (any shape/dtype, e.g. `video: [T, H, W, 3]` uint8)
        or to Python/numpy scalars and strings (labels, metadata).

    Returns:
      `b"VTR1" | uint32 header length | JSON header | raw array bytes`.
    """
    arrays: dict[str, list[Any]] = {}
    scalars: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, value in example.items():
        if not isinstance(name, str):
            raise TypeError(f"example keys must be str, got {name!r} ({type(name).__name__})")
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"example[{name!r}] must be a numeric array, got dtype {arr.dtype}")
            data = arr.tobytes()
            arrays[name] = [arr.dtype.str, list(arr.shape), offset, len(data)]
            chunks.append(data)
            offset += len(data)
        elif isinstance(value, _SCALAR_TYPES):
            scalars[name] = value.item() if isinstance(value, np.generic) else value
        else:
            raise TypeError(
                f"example[{name!r}] must be a numpy array or a scalar/str, got {type(value).__name__}"
            )
    header = json.dumps({"arrays": arrays, "scalars": scalars}).encode()
    return b"".join([_MAGIC, struct.pack("<I", len(header)), header, *chunks])


def decode_example(record: bytes, *, keep_strings: bool = True) -> dict[str, Any]:
    """Inverse of `encode_example`.

    Args:
      record: bytes written by `encode_example`.
      keep_strings: if False, string metadata is dropped (strings cannot be batched by grain).

    Returns:
      A dict of numpy arrays (read-only views are copied to writable arrays) and scalars;
      numeric scalars become 0-d numpy arrays so they batch.
    """
    if record[:4] != _MAGIC:
        raise ValueError(f"record does not start with {_MAGIC!r}: got {bytes(record[:4])!r}")
    (header_len,) = struct.unpack("<I", record[4:8])
    header = json.loads(record[8 : 8 + header_len])
    base = 8 + header_len
    out: dict[str, Any] = {}
    for name, (dtype, shape, offset, nbytes) in header["arrays"].items():
        start = base + offset
        out[name] = np.frombuffer(record[start : start + nbytes], dtype=dtype).reshape(shape).copy()
    for name, value in header["scalars"].items():
        if isinstance(value, str):
            if keep_strings:
                out[name] = value
        else:
            out[name] = np.asarray(value)
    return out
