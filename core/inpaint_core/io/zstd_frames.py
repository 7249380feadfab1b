"""A cheap integrity check of a zstd-compressed chunk file: its frame structure, not its data.

Chunks copied or linked as stored bytes are checked before a restore marks its output complete.
Decoding each would cost as much as the copy saves; walking the zstd frame (RFC 8878, section
3.1) reads only its header and one 3-byte header per block, yet it finds what damage does to a
file: a cut (the blocks end before the file or run past it), garbage (a bad magic number, a
reserved bit or block type, a block larger than the format allows) or a file whose declared
content size is not the chunk's.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["frame_problem"]

_MAGIC = 0xFD2FB528
_MAX_BLOCK = 128 * 1024
_FCS_BYTES = (0, 2, 4, 8)
_DICT_BYTES = (0, 1, 2, 4)


def frame_problem(path: str | os.PathLike[str], expected_size: int | None = None) -> str | None:
    """What is wrong with the zstd frame in file ``path``, or None when its structure is whole.

    Args:
        path: a file holding exactly one zstd frame (as zarr's zstd codec writes a chunk).
        expected_size: the decoded size in bytes the frame must declare, when it declares one.

    Returns:
        A short reason (e.g. ``"cut: the blocks run to byte 5120, the file has 4000"``), or None.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(18)
        if len(header) >= 4 and int.from_bytes(header[:4], "little") != _MAGIC:
            return "not a zstd frame (bad magic number)"
        if len(header) < 6:
            return f"cut inside the frame header ({size} bytes)"
        descriptor = header[4]
        if descriptor & 0x08:
            return "a reserved bit of the frame header is set"
        single_segment = bool(descriptor & 0x20)
        fcs_flag = descriptor >> 6
        fcs_bytes = 1 if fcs_flag == 0 and single_segment else _FCS_BYTES[fcs_flag]
        offset = 5 + (0 if single_segment else 1) + _DICT_BYTES[descriptor & 0x03]
        if fcs_bytes:
            field = header[offset : offset + fcs_bytes]
            if len(field) < fcs_bytes:
                return f"cut inside the frame header ({size} bytes)"
            content = int.from_bytes(field, "little") + (256 if fcs_bytes == 2 else 0)
            if expected_size is not None and content != expected_size:
                return f"declares {content} bytes of content, the chunk has {expected_size}"
        offset += fcs_bytes
        while True:
            handle.seek(offset)
            block = handle.read(3)
            if len(block) < 3:
                return f"cut: a block header at byte {offset}, the file has {size}"
            value = int.from_bytes(block, "little")
            last, kind, length = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                return f"a reserved block type at byte {offset}"
            if length > _MAX_BLOCK:
                return f"a block of {length} bytes at byte {offset} (at most {_MAX_BLOCK})"
            offset += 3 + (1 if kind == 1 else length)
            if last:
                break
        if descriptor & 0x04:
            offset += 4  # the content checksum
        if offset != size:
            return f"cut or padded: the frame ends at byte {offset}, the file has {size}"
    return None
