"""What the writer changes, and what it refuses, through the command line on the
real Debian 6.12 kernel in ../shared/kernels (its note: align 0x200000, min
0x1000000, max 0x3fffffff = KERNEL_IMAGE_SIZE - 1): words not given are kept,
same values change nothing (the file keeps its inode and mtime), a Linux max
above its own or a min below its link address needs --force, and so does
PHYS32_ENTRY on Linux 6.13+."""

from __future__ import annotations

import os
import shutil
import struct

import pytest
from test_writer_support import KERNELS, linux_like, sha256, write

from noteforge.cli.app import main
from noteforge.image.open import extract_vmlinux, open_image

LINUX_612 = KERNELS / "vmlinuz-6.12.107+deb12-cloud-amd64"


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, " ".join(cap.err.split())


@pytest.fixture(scope="module")
def vmlinux_612(tmp_path_factory):
    if not LINUX_612.is_file():
        pytest.skip("../shared/kernels not present")
    out = tmp_path_factory.mktemp("k") / "vmlinux-6.12"
    extract_vmlinux(LINUX_612, out)
    out.chmod(0o444)
    return out


@pytest.fixture
def copy_612(vmlinux_612, tmp_path):
    dst = tmp_path / "vmlinux"
    shutil.copyfile(vmlinux_612, dst)
    dst.chmod(0o644)
    return dst


def reloc(path) -> dict:
    return open_image(path).effective.phys32_reloc.to_dict()


@pytest.mark.slow  # the real 57 MB vmlinux
def test_align_only_keeps_min_and_max_on_the_real_612(vmlinux_612, tmp_path, capsys):
    assert reloc(vmlinux_612) == {"align": 0x200000, "min": 0x1000000, "max": 0x3FFFFFFF}
    out = tmp_path / "v.4M"
    rc, stdout, _ = run(capsys, "set-reloc", vmlinux_612, "-o", out, "--align", "4M")
    assert rc == 0
    assert ("set PHYS32_RELOC (type 19) in Linux 6.12.107+deb12-cloud-amd64: align 0x200000, "
            "min 0x1000000, max 0x3fffffff -> align 0x400000, min 0x1000000 (kept), max "
            "0x3fffffff (kept)") in stdout
    assert "proof: 12/12 checks passed" in stdout
    assert reloc(out) == {"align": 0x400000, "min": 0x1000000, "max": 0x3FFFFFFF}
    # The note is rewritten where it is: one byte (0x20 -> 0x40) differs.
    a, b = vmlinux_612.read_bytes(), out.read_bytes()
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


@pytest.mark.slow  # the real 57 MB vmlinux
def test_linux_limits_need_force_on_the_real_612(vmlinux_612, tmp_path, capsys):
    out = tmp_path / "o"
    rc, _, err = run(capsys, "set-reloc", vmlinux_612, "-o", out, "--max", "0x7fffffff")
    assert rc == 2 and not out.exists()
    assert err == (f"noteforge: error: {vmlinux_612}: refused: max 0x7fffffff is above its own "
                   "note's max (0x3fffffff = KERNEL_IMAGE_SIZE - 1: head.S's early page tables "
                   "map no more): Xen could place Linux 6.12.107+deb12-cloud-amd64 where Linux "
                   "cannot run; pass --force to write it anyway")
    rc, _, err = run(capsys, "set-reloc", vmlinux_612, "-o", out, "--min", "8M")
    assert rc == 2 and "min 0x800000 is below its own note's min (LOAD_PHYSICAL_ADDR, " \
                       "0x1000000)" in err
    rc, _, err = run(capsys, "set-reloc", vmlinux_612, "-o", out, "--align", "3M")
    assert rc == 2 and "align 0x300000 is not a multiple of 2 MiB: x86-64 Linux halts when " \
                       "its load offset is not 2 MiB aligned" in err
    # Lower max, higher min: inside what Linux allows, no --force needed.
    rc, _, _ = run(capsys, "set-reloc", vmlinux_612, "-o", out, "--min", "32M", "--max",
                   "0x1fffffff")
    assert rc == 0 and reloc(out) == {"align": 0x200000, "min": 0x2000000, "max": 0x1FFFFFFF}
    rc, _, err = run(capsys, "set-reloc", vmlinux_612, "-o", out, "--max", "0x7fffffff",
                     "--force")
    assert rc == 0 and "WARNING: max 0x7fffffff is above its own note's max" in err
    assert reloc(out)["max"] == 0x7FFFFFFF


@pytest.mark.slow  # the real 57 MB vmlinux
def test_same_values_in_place_leave_the_file_untouched(copy_612, capsys):
    before = os.stat(copy_612)
    digest = sha256(copy_612)
    rc, stdout, _ = run(capsys, "set-reloc", copy_612, "--in-place", "--align", "2M", "--min",
                        "0x1000000")
    assert rc == 0
    assert stdout.splitlines() == [
        "nothing changed: Linux 6.12.107+deb12-cloud-amd64 already has PHYS32_RELOC align "
        f"0x200000, min 0x1000000, max 0x3fffffff; {copy_612} left untouched"]
    after = os.stat(copy_612)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino, before.st_mtime_ns, before.st_size)
    assert sha256(copy_612) == digest
    assert sorted(p.name for p in copy_612.parent.iterdir()) == ["vmlinux"]
    # The same for set-note and for removing a note that is not there.
    rc, stdout, _ = run(capsys, "set-note", copy_612, "--in-place", "--type", "GUEST_OS",
                        "--value", "linux")
    assert rc == 0 and stdout.startswith("nothing changed: ")
    rc, stdout, _ = run(capsys, "remove-note", copy_612, "--in-place", "--type", "BSD_SYMTAB")
    assert rc == 0 and stdout.startswith(
        "nothing changed: Linux 6.12.107+deb12-cloud-amd64 has no BSD_SYMTAB note that Xen reads")
    assert os.stat(copy_612).st_mtime_ns == before.st_mtime_ns


@pytest.mark.slow  # the real 57 MB vmlinux
def test_same_values_with_output_write_an_identical_copy(vmlinux_612, tmp_path, capsys):
    out = tmp_path / "copy"
    rc, stdout, _ = run(capsys, "set-reloc", vmlinux_612, "-o", out, "--align", "0x200000")
    assert rc == 0
    assert stdout.splitlines() == [
        "nothing changed: Linux 6.12.107+deb12-cloud-amd64 already has PHYS32_RELOC align "
        f"0x200000, min 0x1000000, max 0x3fffffff; wrote {out} anyway, an identical copy of the "
        "input"]
    assert sha256(out) == sha256(vmlinux_612)


@pytest.mark.slow  # the real 57 MB vmlinux
def test_dry_run_needs_no_destination_and_says_would(copy_612, capsys):
    digest = sha256(copy_612)
    rc, stdout, _ = run(capsys, "set-reloc", copy_612, "--align", "4M", "--dry-run")
    assert rc == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("would set PHYS32_RELOC (type 19) in Linux 6.12.107")
    assert lines[1] == "method: in-place: would change the note's desc bytes where they are"
    assert "dry run: nothing written; 1 write(s) planned" in stdout
    assert "wrote" not in stdout and "proof" not in stdout
    assert sha256(copy_612) == digest
    rc, stdout, _ = run(capsys, "set-reloc", copy_612, "--align", "2M", "--dry-run")
    assert rc == 0 and stdout.startswith("nothing would change: ")


def test_phys32_entry_on_linux_613_names_the_run_time_reason(tmp_path, capsys):
    # pvh_start_xen of 6.13+ subtracts this note's value from its own run-time
    # address to find its load offset (commit 5c6808d1a9dd).
    src = write(tmp_path / "vmlinux", linux_like("6.13.2-nf-amd64",
                                                 reloc=struct.pack("<III", 0x200000, 0x1000000,
                                                                   0x3FFFFFFF)))
    rc, _, err = run(capsys, "set-note", src, "-o", tmp_path / "o", "--type", "PHYS32_ENTRY",
                     "--value", "0x1000b00")
    assert rc == 2 and not (tmp_path / "o").exists()
    assert "Linux 6.13.2-nf-amd64: from Linux 6.13 (commits 223abe96ac0d and 5c6808d1a9dd), " \
           "pvh_start_xen computes its load offset at run time" in err
    assert err.endswith("pass --force to write it anyway")
    # 6.12's entry subtracts an immediate (sub $0x1000a30,%ebx): the generic reason only.
    old = write(tmp_path / "v612", linux_like("6.12.0-nf-amd64"))
    rc, _, err = run(capsys, "set-note", old, "-o", tmp_path / "o", "--type", "PHYS32_ENTRY",
                     "--value", "0x1000b00")
    assert rc == 2 and "PHYS32_ENTRY changes where or whether" in err and "6.13" not in err
    # The value it already has is no change at all, so nothing to refuse.
    rc, stdout, _ = run(capsys, "set-note", src, "-o", tmp_path / "same", "--type",
                        "PHYS32_ENTRY", "--value", "0x1000a30")
    assert rc == 0 and stdout.startswith("nothing changed: ")


# --- extract -------------------------------------------------------------------------


@pytest.mark.slow  # the real 57 MB vmlinux
def test_extract_into_a_directory_names_the_file_by_version(tmp_path, capsys):
    if not LINUX_612.is_file():
        pytest.skip("../shared/kernels not present")
    d = tmp_path / "boot"
    d.mkdir()
    rc, stdout, _ = run(capsys, "extract", LINUX_612, "-o", d)
    out = d / "vmlinux-6.12.107+deb12-cloud-amd64"
    assert rc == 0 and stdout.startswith(f"{out}: ELF64, 57,573,800 bytes (from the zstd payload")
    assert sorted(p.name for p in d.iterdir()) == [out.name]
    # A plain ELF is copied through with a note; its name comes from its banner.
    other = tmp_path / "other"
    other.mkdir()
    rc, stdout, _ = run(capsys, "extract", out, "-o", f"{other}/")
    assert rc == 0 and stdout == (
        f"{other / out.name}: ELF64, 57,573,800 bytes (note: {out} is already an uncompressed "
        "ELF: copied as it is)\n")
    assert sha256(other / out.name) == sha256(out)


def test_extract_to_a_missing_directory_is_one_line(tmp_path, capsys):
    if not LINUX_612.is_file():
        pytest.skip("../shared/kernels not present")
    rc, stdout, err = run(capsys, "extract", LINUX_612, "-o", f"{tmp_path}/nodir/")
    assert (rc, stdout, err) == (2, "", f"noteforge: error: {tmp_path}/nodir/: no such directory")
    rc, _, err = run(capsys, "extract", LINUX_612, "-o", tmp_path / "nodir" / "vmlinux")
    assert (rc, err) == (2, f"noteforge: error: {tmp_path}/nodir/vmlinux: no such directory "
                            f"{tmp_path}/nodir")
    rc, _, err = run(capsys, "extract", LINUX_612, "-o", tmp_path / "v", "--max-decompressed",
                     "1M")
    assert rc == 2 and err.endswith("(raise it with --max-decompressed if this is genuine)")
    assert list(tmp_path.iterdir()) == []
