"""The writer on the real images in ../shared/kernels (the two Debian Linux
vmlinux, extracted; xen-shim 4.20; GRUB i386-xen_pvh) and on the
FreeBSD-shaped image: set, change, remove. Every output is proven by the
writer itself, then checked again by binutils `readelf -lnW` and, when
tests/xenref finds Debian's xen-utils-4.17, by Xen's own `readnotes` and
libelf."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from test_writer_support import KERNELS, freebsd_like, write

from noteforge.image.open import extract_vmlinux, open_image
from noteforge.write import apply as writer

try:
    import xenref
except ImportError:  # pragma: no cover - tests/xenref is part of the repository
    xenref = None

pytestmark = pytest.mark.skipif(not KERNELS.is_dir(), reason="../shared/kernels not present")
READELF = shutil.which("readelf")

LINUX_61 = "vmlinuz-6.1.0-56-cloud-amd64"
LINUX_612 = "vmlinuz-6.12.107+deb12-cloud-amd64"


@pytest.fixture(scope="session")
def real(tmp_path_factory) -> dict[str, Path]:
    """Read-only copies of the test inputs: the two vmlinux extracted once."""
    d = tmp_path_factory.mktemp("kernels")
    out = {}
    for key, name in (("6.1", LINUX_61), ("6.12", LINUX_612)):
        extract_vmlinux(KERNELS / name, d / f"vmlinux-{key}")
        out[key] = d / f"vmlinux-{key}"
    for key, name in (("shim", "xen-shim-4.20"), ("grub", "grub-2.06-i386-xen_pvh.elf")):
        shutil.copyfile(KERNELS / name, d / name)
        out[key] = d / name
    out["freebsd"] = write(d / "freebsd-like.elf", freebsd_like())
    for p in out.values():
        p.chmod(0o444)
    return out


# --- independent readers ---------------------------------------------------------

_PH = re.compile(r"^\s+([A-Z_]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+"
                 r"(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]{3})\s+(0x[0-9a-f]+|0)$")
_NOTE = re.compile(r"^\s+(\S+)\s+0x([0-9a-f]{8})\s+.*\(0x([0-9a-f]{8})\)\s+description data:"
                   r"((?: [0-9a-f]{2})*)\s*$")


def readelf_segments(path: Path) -> list[tuple]:
    out = subprocess.run([READELF, "-lW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    rows = [m.groups() for line in out.splitlines() if (m := _PH.match(line))]
    return [(t, *(int(x, 16) for x in rest[:5]), rest[5].strip(), int(rest[6], 16))
            for t, *rest in rows]


def readelf_xen_notes(path: Path) -> list[tuple[str, int, bytes]]:
    """(owner, type, desc) of the notes `readelf -nW` prints with a raw
    type number (Xen's types 6..19 are unknown to binutils)."""
    out = subprocess.run([READELF, "-nW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        if m := _NOTE.match(line):
            rows.append((m.group(1), int(m.group(3), 16), bytes.fromhex(m.group(4))))
    return rows


def check_output(src: Path, out: Path, *, reloc: bytes | None) -> None:
    """readelf and Xen's tools agree with what the writer claims."""
    old, new = open_image(src), open_image(out)
    if READELF:
        before, after = readelf_segments(src), readelf_segments(out)
        assert [s for s in after if s[0] == "LOAD"] == [s for s in before if s[0] == "LOAD"]
        assert len(after) >= len(before)
        for extra in after[len(before):]:
            assert extra[0] == "NOTE" and extra[-1] == 4
        notes = [(o, t, d) for o, t, d in readelf_xen_notes(out) if o == "Xen"]
        entries = [d for _o, t, d in notes if t == 18]
        relocs = [d for _o, t, d in notes if t == 19]
        assert entries and entries[-1] == next(n.desc for n in reversed(old.notes)
                                               if n.type == 18)
        if reloc is None:
            assert relocs == []
        else:
            assert relocs[-1] == reloc
    if xenref is not None and xenref.available():
        rn = xenref.readnotes(out)
        assert rn.ok and rn.broken is None
        assert [n.type for n in rn.notes] == [n.type for n in new.notes]
        assert (19 in rn.unknown_types) == (reloc is not None)
        assert rn.values["PHYS32_ENTRY"] == old.effective.phys32_entry
        lib, lib_old = xenref.libelf_parse(out), xenref.libelf_parse(src)
        assert lib.accepted and lib.pvh
        assert (lib.phys_entry, lib.pstart, lib.pend) == (lib_old.phys_entry, lib_old.pstart,
                                                          lib_old.pend)
    assert new.effective.phys32_entry == old.effective.phys32_entry
    assert new.load == old.load


def step(src: Path, out: Path, change: writer.NoteChange, *, force: bool = False,
         method: str, reloc: bytes | None) -> writer.WriteResult:
    r = writer.write_note_change(src, change, output=out, force=force)
    assert r.proof.ok and r.plan.method == method
    check_output(src, out, reloc=reloc)
    return r


W = struct.Struct("<I")


def words(*ws: int) -> bytes:
    return b"".join(W.pack(w) for w in ws)


# --- the real images --------------------------------------------------------------


def test_linux_61_set_change_remove(real, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    r = step(real["6.1"], a, writer.reloc_change(0x200000, 0x1000000, 0x3FFFFFFF), force=True,
             method=writer.METHOD_NEW_SEGMENT, reloc=words(0x200000, 0x1000000, 0x3FFFFFFF))
    assert r.plan.kernel.label.startswith("Linux 6.1.0-56-cloud-amd64")
    # No note of its own: KERNEL_IMAGE_SIZE - 1 of the smaller configuration is the limit.
    assert "max 0x3fffffff is above KERNEL_IMAGE_SIZE - 1 (0x1fffffff" in r.plan.warnings[0]
    assert a.stat().st_size == real["6.1"].stat().st_size  # all in the 2 MiB gap
    step(a, b, writer.reloc_change(0x400000, 0x1000000, 0x3FFFFFFF),
         method=writer.METHOD_IN_PLACE, reloc=words(0x400000, 0x1000000, 0x3FFFFFFF))
    step(b, c, writer.remove_change(19), method=writer.METHOD_NEUTRALISE, reloc=None)
    assert not open_image(c).effective.relocatable


def test_linux_612_change_resize_remove(real, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    step(real["6.12"], a, writer.reloc_change(0x400000, 0x1000000, 0x3FFFFFFF),
         method=writer.METHOD_IN_PLACE, reloc=words(0x400000, 0x1000000, 0x3FFFFFFF))
    r = step(real["6.12"], b, writer.reloc_change(0x400000, words=1), force=True,
             method=writer.METHOD_NEW_SEGMENT, reloc=words(0x400000))
    assert open_image(b).effective.phys32_reloc.to_dict() == {"align": 0x400000, "min": None,
                                                             "max": None}
    assert len(r.plan.neutralised) == 1
    step(b, c, writer.remove_change(19), method=writer.METHOD_NEUTRALISE, reloc=None)
    # The Debian relocation data after the section headers is where it was.
    src = real["6.12"].read_bytes()
    tail = open_image(real["6.12"]).header
    end = tail.shoff + tail.shnum * tail.shentsize
    assert c.read_bytes()[end:] == src[end:] and len(src) - end > 900_000


def test_linux_612_guest_version_string(real, tmp_path):
    # GUEST_VERSION is "2.6" (4 bytes with its NUL): "6.1" fits there, "6.12" does not.
    a, b = tmp_path / "a", tmp_path / "b"
    r = writer.set_note(real["6.12"], 7, "6.1", output=a)
    assert r.plan.method == writer.METHOD_IN_PLACE and r.proof.ok
    assert r.plan.before_text == "'2.6'"
    r = writer.set_note(real["6.12"], 7, "6.12", output=b)
    assert r.plan.method == writer.METHOD_NEW_SEGMENT and r.proof.ok
    assert open_image(a).effective.guest_version == "6.1"
    assert open_image(b).effective.guest_version == "6.12"
    if xenref is not None and xenref.available():
        assert xenref.readnotes(b).values["GUEST_VERSION"] == "6.12"


@pytest.mark.parametrize("key", ["shim", "grub", "freebsd"])
def test_set_change_remove(real, tmp_path, key):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    r = step(real[key], a, writer.reloc_change(0x200000), force=True,
             method=writer.METHOD_RETARGET, reloc=words(0x200000))
    expect_kernel = {"shim": "xen-shim", "grub": "GRUB (i386-xen_pvh)", "freebsd": "FreeBSD"}
    assert r.plan.kernel.label == expect_kernel[key]
    assert any(expect_kernel[key] in w for w in r.plan.warnings)
    loaded = r.plan.loaded_patches
    if key == "freebsd":
        assert [p.region for p in loaded] == ["header"]
    else:
        assert loaded == ()
    step(a, b, writer.reloc_change(0x400000), method=writer.METHOD_IN_PLACE,
         reloc=words(0x400000))
    step(b, c, writer.remove_change(19), method=writer.METHOD_NEUTRALISE, reloc=None)
    assert (c.stat().st_mode & 0o777) == 0o444


def test_grub_uses_its_free_header_space(real, tmp_path):
    # GRUB: the section headers follow the program headers (no free slot), but
    # 0x18d..0x1000 is unused zeros: the copied notes and the new section
    # tables go there and the file does not grow.
    out = tmp_path / "a"
    r = writer.set_reloc(real["grub"], align=0x200000, output=out, force=True)
    s, e = r.plan.notes_area
    assert 0x18D <= s < e <= 0x1000
    assert out.stat().st_size == real["grub"].stat().st_size
    assert r.plan.section == "added section 5 '.note.noteforge'"
