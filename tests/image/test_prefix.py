"""The decompressed prefix of a streamed kernel (issue 16, item 8): in memory
up to 64 MiB, then in an unnamed temporary file, so `notes` on a bzImage whose
ELF must be read to its end (notes only in sections) stays in bounded memory
however large the payload, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib

import pytest
from peak_memory import run_measured

from noteforge.errors import ImageError
from noteforge.image import synth
from noteforge.image.prefix import Prefix

MIB = 1 << 20


def test_reads_are_the_same_before_and_after_the_spill(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = bytes(range(256)) * 40 + b"\0end"
    p = Prefix("k", spill_at=1000)
    for i in range(0, len(data), 333):
        p.append(data[i : i + 333])
        assert p.read(0, len(data)) == data[: i + 333]
    assert p.spilled and len(p) == len(data)
    assert p.read(990, 20) == data[990:1010]  # across the old in-memory end
    assert p.read(len(data) - 2, 10) == b"nd"  # clipped at what is there
    assert p.find(b"\0", 1, len(data)) == 256 and p.find(b"\0", len(data) - 4, len(data)) == \
        len(data) - 4
    assert p.find(b"\xff", 256, 300) == -1
    assert list(tmp_path.iterdir()) == []  # unnamed (O_TMPFILE): nothing to leave behind
    p.close()
    assert len(p) == 0


def test_a_temporary_directory_that_cannot_hold_it_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    p = Prefix("big.bzImage [gzip payload, decompressed]", spill_at=4)
    p.append(b"abc")
    with pytest.raises(ImageError) as err:
        p.append(b"defg")
    assert str(err.value) == (
        f"big.bzImage [gzip payload, decompressed]: cannot create a temporary file in "
        f"{tmp_path / 'missing'} for the decompressed kernel: No such file or directory")


def far_section_table_elf(gap: int) -> tuple[bytes, bytes]:
    """A PVH ELF whose Xen notes are only in a SHT_NOTE section (so Xen, and
    the reader, need the section headers), with the section header table
    moved `gap` zero bytes further: (bytes before the gap, bytes after)."""
    notes = synth.xen_note(18, 0x1000A30) + synth.xen_note(6, b"Linux\0")
    elf = synth.pvh_elf(notes, notes_in="section")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    head = bytearray(elf[:shoff])
    struct.pack_into("<Q", head, 0x28, shoff + gap)
    return bytes(head), elf[shoff:]


def gzip_stream(head: bytes, gap: int, tail: bytes) -> bytes:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [z.compress(head)]
    zeros = bytes(MIB)
    for _ in range(gap // MIB):
        parts.append(z.compress(zeros))
    parts += [z.compress(tail), z.flush()]
    return b"".join(parts)


def test_notes_on_a_bzimage_read_to_its_end_stays_in_bounded_memory(tmp_path):
    gap = 384 * MIB  # the old reader held all of it: 400+ MB resident
    head, tail = far_section_table_elf(gap)
    bz = tmp_path / "far.bzImage"
    bz.write_bytes(synth.build_bzimage(gzip_stream(head, gap, tail)))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    rc, stdout, stderr, peak = run_measured(tmp_path, "notes", "--json", str(bz),
                                            env=dict(os.environ, TMPDIR=str(tmpdir)))
    assert rc == 0, stderr
    report = json.loads(stdout)
    image = report[0] if isinstance(report, list) else report
    assert image["effective"]["phys32_entry"] == 0x1000A30
    assert image["decompressed_bytes"] == len(head) + gap + len(tail)  # read to its end
    assert peak < 192 * MIB, f"peak RSS {peak >> 20} MiB"
    assert list(tmpdir.iterdir()) == []
