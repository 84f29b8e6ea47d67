"""Read and check a .safetensors header without loading a tensor (stdlib only).

A .safetensors file is an 8-byte little-endian header length, a JSON header naming every tensor
(dtype, shape, byte range), then the raw bytes. Checking the header is how untrusted files are
judged before anything heavier touches them: style-pack import, and the LoRA family check.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from asset_studio.errors import UserError

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own reader refuses headers above 100 MB

_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


@dataclass
class TensorInfo:
    dtype: str
    shape: list[int]
    offsets: tuple[int, int] = (0, 0)  # byte range within the data section


@dataclass
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    data_start: int = 0  # file offset of the data section (8 + header length)


def read_header(stream: BinaryIO, data_size: int, label: str) -> SafetensorsHeader:
    """Parse and check the header at the start of ``stream``.

    ``data_size`` is the full length of the file, so every tensor's byte range can be checked
    against it. ``label`` names the file in the error sentence.
    """
    bad = f"{label} is not a valid .safetensors file"
    prefix = stream.read(8)
    if len(prefix) != 8:
        raise UserError(f"{bad}: it is too short.")
    (length,) = struct.unpack("<Q", prefix)
    if length < 2 or length > MAX_HEADER_BYTES or 8 + length > data_size:
        raise UserError(f"{bad}: its header length is out of range.")
    raw = stream.read(length)
    if len(raw) != length:
        raise UserError(f"{bad}: its header is truncated.")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # also huge integers and deeply nested arrays
        raise UserError(f"{bad}: its header is not JSON.") from None
    if not isinstance(header, dict):
        raise UserError(f"{bad}: its header is not a JSON object.")

    body = data_size - 8 - length
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise UserError(f"{bad}: its __metadata__ is not a table of strings.")
    tensors: dict[str, TensorInfo] = {}
    for name, info in header.items():
        try:
            dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (
                dtype in _DTYPE_BYTES
                and isinstance(shape, list)
                and all(type(d) is int and d >= 0 for d in shape)
                and type(start) is int
                and type(end) is int
                and 0 <= start <= end <= body
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if ok:
            count = 1
            for d in shape:
                count *= d
            ok = count * _DTYPE_BYTES[dtype] == end - start
        if not ok:
            raise UserError(f"{bad}: the entry for tensor '{name[:80]}' is malformed.")
        tensors[name] = TensorInfo(dtype=dtype, shape=list(shape), offsets=(start, end))
    return SafetensorsHeader(tensors=tensors, metadata=metadata, data_start=8 + length)


def read_header_file(path: Path, max_bytes: int | None = None) -> SafetensorsHeader:
    """Check a .safetensors file on disk: its name, its size, and its header."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise UserError(f"{path.name} is not a .safetensors file; only .safetensors weights are accepted.")
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"The file {path} does not exist.") from None
    if not path.is_file():  # a folder (or device) named like a weights file
        raise UserError(f"{path} is not a file.")
    if max_bytes is not None and size > max_bytes:
        raise UserError(
            f"{path.name} is {size / 2**20:.0f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB."
        )
    try:
        with open(path, "rb") as stream:
            return read_header(stream, size, path.name)
    except OSError as exc:
        raise UserError(f"{path.name} cannot be read ({exc.strerror or exc}).") from None
