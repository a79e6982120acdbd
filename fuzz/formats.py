"""Byte encodings of the structured fuzz inputs (placement, bzImage, writer),
shared by the harnesses and by make_corpus.py, which writes seeds in them.

Every decoder accepts ANY bytes (short input reads as zeros), so the fuzzer can
mutate freely and each mutation still means something.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# --- placement --------------------------------------------------------------
#
# header (little-endian):
#   dest_base u64, dest_size u64, phys_entry u32, reloc_align u32, reloc_min u32,
#   reloc_max u32, palign u64, dom0_pages u64, initrd_size u32, align_override u32,
#   flags u8, policy u8, layout u8, cmdline_len u8
# then entries of (start u64, size u64, type u32), a HOST (firmware) map.
PLACEMENT_HDR = struct.Struct("<QQIIIIQQIIBBBB")
ENTRY = struct.Struct("<QQI")

F_HAS_ENTRY = 1
F_RELOCATABLE = 2
F_PVH_NOTES = 4
F_ELF64 = 8
F_ALIGN_OVERRIDE = 16
F_NO_CMDLINE = 32
F_INITRD = 64
F_RAW_DOM0 = 128  # feed the entries to place() directly, skipping clean-up and dom0 map


@dataclass(frozen=True)
class PlacementCase:
    dest_base: int
    dest_size: int
    phys_entry: int
    reloc_align: int
    reloc_min: int
    reloc_max: int
    palign: int
    dom0_pages: int
    initrd_size: int
    align_override: int
    flags: int
    policy: int
    layout: int
    cmdline_len: int
    entries: tuple[tuple[int, int, int], ...]  # (start, size, type)


def decode_placement(data: bytes, max_entries: int = 4096) -> PlacementCase:
    head = data[: PLACEMENT_HDR.size].ljust(PLACEMENT_HDR.size, b"\0")
    fields = PLACEMENT_HDR.unpack(head)
    body = data[PLACEMENT_HDR.size :]
    n = min(len(body) // ENTRY.size, max_entries)
    entries = tuple(ENTRY.unpack_from(body, i * ENTRY.size) for i in range(n))
    return PlacementCase(*fields, entries=entries)


def encode_placement(case: PlacementCase) -> bytes:
    out = PLACEMENT_HDR.pack(
        case.dest_base, case.dest_size, case.phys_entry, case.reloc_align, case.reloc_min,
        case.reloc_max, case.palign, case.dom0_pages, case.initrd_size, case.align_override,
        case.flags, case.policy, case.layout, case.cmdline_len,
    )
    return out + b"".join(ENTRY.pack(*e) for e in case.entries)


# --- bzImage ------------------------------------------------------------------
#
# byte 0: bits 0-2 compression method index (7 = store the ELF uncompressed, a
#         payload no decoder knows), bit 3: fix payload_offset/length to point
#         at the payload, bit 4: do not append the 4-byte size trailer,
#         bit 5: lie in the trailer (size + 1)
# bytes 1..0x80: the setup header bytes from file offset 0x1f1 (0x7f bytes)
# rest: the ELF to compress (the payload)
BZ_SETUP_AT = 0x1F1
BZ_SETUP_LEN = 0x7F
BZ_FIX = 8
BZ_NO_TRAILER = 16
BZ_LIE = 32


def split_bzimage(data: bytes) -> tuple[int, bytes, bytes]:
    head = data[: 1 + BZ_SETUP_LEN].ljust(1 + BZ_SETUP_LEN, b"\0")
    return head[0], head[1:], data[1 + BZ_SETUP_LEN :]


def join_bzimage(control: int, setup: bytes, elf: bytes) -> bytes:
    return bytes([control]) + setup[:BZ_SETUP_LEN].ljust(BZ_SETUP_LEN, b"\0") + elf


# --- writer -------------------------------------------------------------------
#
# byte 0: operation (mod the number of operations), bytes 1..16: four u32 words
# (values for the operation), rest: the input image.
WRITER_HDR = struct.Struct("<BIIII")


def split_writer(data: bytes) -> tuple[int, tuple[int, int, int, int], bytes]:
    head = data[: WRITER_HDR.size].ljust(WRITER_HDR.size, b"\0")
    op, *words = WRITER_HDR.unpack(head)
    return op, tuple(words), data[WRITER_HDR.size :]


def join_writer(op: int, words: tuple[int, int, int, int], image: bytes) -> bytes:
    return WRITER_HDR.pack(op, *words) + image
