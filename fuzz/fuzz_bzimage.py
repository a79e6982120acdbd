#!/usr/bin/env python3
"""Fuzz harness: bzImages built around fuzzed parts. The input is a control
byte, the setup header bytes from 0x1f1 and an ELF (see formats.py); the
harness compresses the ELF with the chosen method and wraps it, so mutations
reach the setup header, the payload trailer and the decompressed ELF alike
(a raw mutation of compressed bytes rarely gets past the decoder).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct

import common
import formats

with common.instrumented_imports():
    from noteforge.image.open import open_image

from noteforge.image.synth import _lz4_legacy, _lzop  # the builders, not under test

MAX_DECOMPRESSED = 64 << 20
METHODS = ("gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd", "none")


def _stream(elf: bytes, method: str) -> bytes:
    """Fast (low-level) compression: the content, not the ratio, matters here."""
    if method == "gzip":
        return gzip.compress(elf, 1, mtime=0)
    if method == "bzip2":
        return bz2.compress(elf, 1)
    if method == "lzma":
        return lzma.compress(elf, format=lzma.FORMAT_ALONE, preset=0)
    if method == "xz":
        return lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, preset=0)
    if method == "lzo":
        return _lzop(elf)
    if method == "lz4":
        return _lz4_legacy(elf)
    if method == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=1, write_content_size=True).compress(elf)
    return elf


def build(data: bytes) -> bytes:
    control, setup, elf = formats.split_bzimage(data)
    method = METHODS[control & 7]
    payload = _stream(elf, method)
    if method not in ("gzip", "none") and not control & formats.BZ_NO_TRAILER:
        size = len(elf) + (1 if control & formats.BZ_LIE else 0)
        payload += struct.pack("<I", size & 0xFFFFFFFF)
    setup_size = (setup[0] + 1) * 512
    real = bytearray(max(setup_size, 0x270))
    real[formats.BZ_SETUP_AT : formats.BZ_SETUP_AT + len(setup)] = setup
    payload_field = 0x2CC  # > 0x70: the payload never overlaps the header
    if control & formats.BZ_FIX:
        struct.pack_into("<II", real, 0x248, payload_field, len(payload))
    real += bytes(setup_size + payload_field - len(real))
    return bytes(real) + payload


def test_one(data: bytes) -> None:
    path = common.write_input(build(data), "bzimage")
    image = common.read_or_error(
        lambda p: open_image(p, max_decompressed=MAX_DECOMPRESSED), path)
    if image is None:
        return
    common.check_plain(image.to_dict())


if __name__ == "__main__":
    common.setup_and_fuzz(test_one)
