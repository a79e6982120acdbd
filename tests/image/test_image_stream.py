"""A compressed ELF whose size noteforge does not trust (a bare .xz, .bz2,
... vmlinux: only gzip stores its size) is measured in a first pass that keeps
nothing, then read lazily: memory stays at what the note walk needs."""

from __future__ import annotations

import lzma

from noteforge.image.open import open_image
from noteforge.image.synth import pvh_elf, xen_note


def test_bare_xz_elf_is_read_lazily(tmp_path):
    elf = pvh_elf(xen_note(6, "linux"))
    padded = elf + b"\0" * (64 << 20)  # 64 MiB of zeros after the ELF
    path = tmp_path / "vmlinux.xz"
    path.write_bytes(lzma.compress(padded, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32))
    image = open_image(path)
    assert image.format == "elf.xz" and image.compression == "xz"
    assert image.elf_size == len(padded)
    assert image.effective.guest_os == "linux"
    # Only a prefix was kept: the headers and the notes, not the 64 MiB.
    assert image.decompressed_bytes <= 2 << 20
