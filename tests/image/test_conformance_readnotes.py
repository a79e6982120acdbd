"""Conformance with Xen's own `readnotes` (Debian xen-utils-4.17) on the real
Debian kernels: for every note readnotes prints, noteforge reads the same
type, in the same order, with the same value and size.

readnotes cannot open the zstd and lz4 bzImages, so it reads the vmlinux that
`noteforge extract` writes; noteforge reads the bzImage itself (its partial
decompression path) and the extracted file, and both must agree with Xen."""

from __future__ import annotations

from pathlib import Path

import pytest

from noteforge.image.open import extract_vmlinux, open_image

SHARED = Path(__file__).resolve().parents[3] / "shared"
BZIMAGES = ["vmlinuz-6.12.107+deb12-cloud-amd64", "vmlinuz-6.1.0-56-cloud-amd64"]

pytestmark = pytest.mark.debian


@pytest.fixture(scope="module")
def xenref():
    import os

    ref = pytest.importorskip("xenref")
    if not ref.available():
        if os.environ.get("CI"):
            pytest.fail("Xen 4.17 readnotes is missing in CI (scripts/fetch-debian --readnotes)")
        pytest.skip("Xen 4.17 readnotes not unpacked (scripts/fetch-debian --readnotes)")
    return ref


@pytest.mark.parametrize("name", BZIMAGES)
def test_readnotes_agrees_on_the_real_kernels(name, xenref, tmp_path):
    bz = SHARED / "kernels" / name
    if not bz.is_file():
        pytest.skip(f"{bz} not present")
    vmlinux = tmp_path / "vmlinux"
    extract_vmlinux(bz, vmlinux)
    theirs = xenref.readnotes(vmlinux)
    assert theirs.ok, theirs.error
    for image in (open_image(bz), open_image(vmlinux)):
        assert [n.type for n in theirs.notes] == [n.type for n in image.notes]
        for ref, mine in zip(theirs.notes, image.notes, strict=True):
            if ref.kind == "num":
                assert (ref.value, ref.descsz) == (mine.value, mine.descsz), mine.name
            elif ref.kind == "str":
                assert ref.value == mine.value, mine.name
            elif ref.kind == "l1_mfn_valid":
                assert ref.value == mine.value[0]
            else:  # readnotes 4.17 prints BSD_SYMTAB, INIT_P2M, ... as unknown types
                assert ref.kind == "unknown" and ref.type == mine.type
        assert theirs.broken == image.effective.elf_broken


def test_the_612_kernel_prints_what_provenance_lists(xenref, tmp_path):
    """The figures in ../shared/kernels/PROVENANCE.md, through both readers."""
    bz = SHARED / "kernels" / BZIMAGES[0]
    if not bz.is_file():
        pytest.skip(f"{bz} not present")
    vmlinux = tmp_path / "vmlinux"
    extract_vmlinux(bz, vmlinux)
    values = xenref.readnotes(vmlinux).values
    assert values["PHYS32_ENTRY"] == 0x1000A30
    assert values["GUEST_OS"] == "linux"
    assert values["VIRT_BASE"] == 0xFFFFFFFF80000000
    assert values["ENTRY"] == 0xFFFFFFFF833265A0
    assert values["FEATURES"] == "!writable_page_tables"
    eff = open_image(bz).effective
    assert eff.phys32_entry == 0x1000A30 and eff.guest_os == "linux"
    assert (eff.phys32_reloc.align, eff.phys32_reloc.min, eff.phys32_reloc.max) == (
        0x200000, 0x1000000, 0x3FFFFFFF)
