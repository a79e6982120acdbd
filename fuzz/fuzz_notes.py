#!/usr/bin/env python3
"""Fuzz harness: note decoding. The input is a control byte and the bytes of
one note area; the harness puts the area in a small fixed ELF (one loadable
PT_LOAD at 16 MiB) as a PT_NOTE segment, an SHT_NOTE section, or both, in
ELF32/ELF64 and either byte order, and opens it: the note walk, the 20 note
decoders, FEATURES parsing and Xen's precedence rules all run on fuzzed bytes.

control bits: 0 ELF32, 1 big-endian, 2 section only, 3 segment and section,
4 add a PT_NOTE at p_offset 0 first, 5 EM_386/EM_ARM instead of x86-64.
"""

from __future__ import annotations

import common
import seedlib

with common.instrumented_imports():
    from noteforge.image.open import open_image

EM_386, EM_ARM, EM_X86_64 = 3, 40, 62


def layout(control: int) -> seedlib.Layout:
    is64 = not control & 1
    big = bool(control & 2)
    machine = (EM_386 if not is64 else EM_ARM) if control & 32 else EM_X86_64
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if big else 1, 1, 0]) + bytes(8)
    phdrs = [seedlib.Phdr(seedlib.PT_LOAD, 5, 0, 0xFFFFFFFF81000000 if is64 else 0xC1000000,
                          0x1000000, 0, 0x3200000, 0x200000),
             seedlib.Phdr(seedlib.PT_NOTE, 4, 1, 0, 0, 0, 0, 4)]
    if control & 16:
        phdrs.insert(0, seedlib.Phdr(seedlib.PT_NOTE, 4, 0, 0, 0, 0x40, 0x40, 4))
    return seedlib.Layout(is64, big, ident, 2, machine, 1, 0x1000A30, 0, tuple(phdrs), ())


def build(data: bytes) -> bytes:
    control = data[0] if data else 0
    blob = data[1:]
    return seedlib.build(layout(control), [blob], as_sections=bool(control & 12),
                         keep_segments=not control & 4)


def test_one(data: bytes) -> None:
    path = common.write_input(build(data), "notes")
    image = common.read_or_error(open_image, path)
    if image is None:
        return
    common.check_plain(image.to_dict())


if __name__ == "__main__":
    common.setup_and_fuzz(test_one)
