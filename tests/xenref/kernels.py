"""Unpack a bzImage's payload into the ELF vmlinux inside, independently of
noteforge (so the oracles are fed bytes noteforge did not produce).

Linux boot protocol (Documentation/arch/x86/boot.rst): setup_sects u8 at 0x1f1
(0 means 4), payload_offset u32 at 0x248, payload_length u32 at 0x24c; the
payload starts at (setup_sects + 1) * 512 + payload_offset.  Every format but
gzip ends with a 4-byte little-endian decompressed size that is not part of the
compressed stream, so it is cut off before decompressing.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from pathlib import Path

import lz4.block
import zstandard

LZ4_LEGACY_MAGIC = 0x184C2102
LZ4_LEGACY_BLOCK = 8 << 20


def payload(image: bytes) -> tuple[str, bytes]:
    """(format, compressed payload) of a bzImage; format by magic."""
    if image[0x202:0x206] != b"HdrS":
        raise ValueError("not a bzImage: no HdrS at 0x202")
    setup_sects = image[0x1F1] or 4
    off, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + off
    data = image[start : start + length]
    for fmt, magic in (
        ("gzip", b"\x1f\x8b"), ("bzip2", b"BZh"), ("xz", b"\xfd7zXZ\x00"),
        ("zstd", b"\x28\xb5\x2f\xfd"), ("lz4", b"\x02\x21\x4c\x18"), ("lzma", b"\x5d\x00"),
    ):
        if data.startswith(magic):
            return fmt, data
    raise ValueError(f"unknown payload magic {data[:6].hex()}")


def _lz4_legacy(data: bytes, size: int) -> bytes:
    out = bytearray()
    pos = 4  # magic
    while pos + 4 <= len(data) and len(out) < size:
        (clen,) = struct.unpack_from("<I", data, pos)
        if clen == LZ4_LEGACY_MAGIC:  # concatenated frames
            pos += 4
            continue
        pos += 4
        out += lz4.block.decompress(data[pos : pos + clen], uncompressed_size=LZ4_LEGACY_BLOCK)
        pos += clen
    return bytes(out)


def decompress(fmt: str, data: bytes) -> bytes:
    if fmt == "gzip":
        return gzip.decompress(data)
    size = struct.unpack("<I", data[-4:])[0]
    body = data[:-4]
    if fmt == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if fmt == "lz4":
        return _lz4_legacy(body, size)
    if fmt == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(body)
    if fmt == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(body)
    if fmt == "bzip2":
        return bz2.BZ2Decompressor().decompress(body)
    raise ValueError(f"unsupported payload format {fmt}")


def vmlinux_from_bzimage(path: Path) -> bytes:
    fmt, data = payload(Path(path).read_bytes())
    out = decompress(fmt, data)
    if fmt != "gzip" and len(out) != struct.unpack("<I", data[-4:])[0]:
        raise ValueError(f"{path}: {fmt} payload gave {len(out)} bytes, header says otherwise")
    return out
