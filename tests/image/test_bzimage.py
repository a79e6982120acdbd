"""The bzImage setup header, as Xen's bzimage.c reads it: real Debian images
(values from ../shared/kernels/PROVENANCE.md) and synthetic edge cases."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from noteforge.errors import ImageError
from noteforge.image import synth
from noteforge.image.bzimage import is_bzimage, parse_setup_header
from noteforge.image.open import open_image

SHARED = Path(__file__).resolve().parents[3] / "shared"
KERNELS = SHARED / "kernels"


def real(name: str) -> Path:
    path = KERNELS / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def header_of(path: Path):
    data = path.read_bytes()[: 128 * 1024]
    return parse_setup_header(data, path.stat().st_size, str(path))


def test_debian_6_12_cloud_header():
    h = header_of(real("vmlinuz-6.12.107+deb12-cloud-amd64"))
    assert (h.protocol, h.version) == ("2.15", 0x020F)
    assert (h.kernel_alignment, h.relocatable_kernel, h.min_alignment) == (0x200000, 1, 21)
    assert (h.pref_address, h.init_size) == (0x1000000, 0x37DC000)
    assert (h.setup_sects, h.setup_size, h.payload_offset_field) == (39, 0x5000, 0x2CC)
    assert (h.payload_offset, h.payload_length) == (0x52CC, 11378974)
    assert h.xloadflags == 0x7F and h.loadflags == 0x01
    assert h.kernel_version.startswith("6.12.107+deb12-cloud-amd64 (debian-kernel@lists.debian."
                                       "org) #1 SMP PREEMPT_DYNAMIC Debian 6.12.107-1~deb12u1")
    d = h.to_dict()
    assert d["protocol"] == "2.15" and d["payload_offset"] == 0x52CC


def test_debian_6_1_cloud_header():
    h = header_of(real("vmlinuz-6.1.0-56-cloud-amd64"))
    assert (h.protocol, h.kernel_alignment, h.relocatable_kernel, h.min_alignment) == (
        "2.15", 0x200000, 1, 21)
    assert (h.payload_offset, h.payload_length, h.init_size) == (0x52CC, 14063308, 0x3378000)
    assert h.kernel_version.startswith("6.1.0-56-cloud-amd64 ")


def test_synthetic_header_round_trip():
    setup = synth.SetupHeader(setup_sects=4, version=0x020F, kernel_alignment=0x1000000,
                              relocatable_kernel=0, min_alignment=24, xloadflags=0x3,
                              pref_address=0x2000000, init_size=0x4000000,
                              kernel_version="6.1.0-synthetic")
    data = synth.build_bzimage(b"\x1f\x8b" + bytes(64), setup=setup, payload_offset=0x100)
    assert is_bzimage(data)
    h = parse_setup_header(data, len(data), "bz")
    assert (h.kernel_alignment, h.relocatable_kernel, h.min_alignment, h.xloadflags) == (
        0x1000000, 0, 24, 0x3)
    assert (h.pref_address, h.init_size, h.kernel_version) == (0x2000000, 0x4000000,
                                                               "6.1.0-synthetic")
    assert (h.payload_offset, h.payload_length) == (5 * 512 + 0x100, 66)


def test_older_protocol_fields_are_absent():
    setup = synth.SetupHeader(version=0x0208, kernel_version=None)
    data = synth.build_bzimage(b"\x1f\x8b" + bytes(64), setup=setup)
    h = parse_setup_header(data, len(data), "bz")
    assert h.protocol == "2.08" and h.kernel_alignment == 0x200000
    assert (h.min_alignment, h.xloadflags, h.pref_address, h.init_size) == (None,) * 4
    assert h.kernel_version is None


def test_protocol_before_2_08_is_refused_like_xen():
    data = synth.build_bzimage(b"\x1f\x8b" + bytes(64), setup=synth.SetupHeader(version=0x0207))
    with pytest.raises(ImageError) as err:
        parse_setup_header(data, len(data), "bz")
    assert str(err.value) == ("bz at offset 0x206: bzImage boot protocol 2.07; Xen needs at least "
                              "2.08 (payload_offset/payload_length)")


def test_payload_outside_the_file():
    data = synth.build_bzimage(b"\x1f\x8b" + bytes(64), payload_length=0x10000)
    with pytest.raises(ImageError) as err:
        parse_setup_header(data, len(data), "bz")
    assert str(err.value) == (f"bz at offset 0x248: bzImage payload at 0xccc, 0x10000 bytes, does "
                              f"not fit in the file ({len(data):#x} bytes)")


def test_truncated_setup_header(tmp_path):
    data = synth.build_bzimage(b"\x1f\x8b" + bytes(64))[:0x230]
    with pytest.raises(ImageError) as err:
        parse_setup_header(data, len(data), "bz")
    assert str(err.value) == ("bz at offset 0x230: bzImage setup header is truncated (needs 0x250 "
                              "bytes, the file has 0x230)")
    path = tmp_path / "short"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=r"short at offset 0x230: bzImage setup header is "):
        open_image(path)


def test_setup_sects_zero_is_used_as_zero_like_xen(tmp_path):
    elf = synth.pvh_elf(synth.xen_note(18, 0x1000A30))
    payload = synth.compress(elf, "gzip")
    data = bytearray(synth.build_bzimage(payload, setup=synth.SetupHeader(setup_sects=4),
                                         payload_offset=0x100))
    # Move things so that (0 + 1) * 512 + payload_offset still finds the payload.
    data[0x1F1] = 0
    struct.pack_into("<I", data, 0x248, 5 * 512 + 0x100 - 512)
    path = tmp_path / "bz0"
    path.write_bytes(bytes(data))
    image = open_image(path)
    assert image.bzimage.payload_offset == 5 * 512 + 0x100
    assert image.effective.phys32_entry == 0x1000A30
    assert ("bzImage setup_sects is 0: the boot protocol reads that as 4, Xen uses 0 (the payload "
            "offset differs)") in image.warnings
