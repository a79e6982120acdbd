"""The Xen note catalogue and the decoding/precedence rules of
noteforge.image.notes, checked against what Xen's libelf does (libelf-dominfo.c,
libelf-tools.c) on hand-made notes."""

from __future__ import annotations

import json

import pytest

from noteforge.errors import UsageError
from noteforge.image.notes import (
    FEATURES_NAMES,
    NOTE_TYPES,
    XENFEAT_NAMES,
    Accumulator,
    NoteOrigin,
    Phys32Reloc,
    RawNote,
    apply_all,
    decode_other_note,
    decode_xen_note,
    feature_names,
    finish,
    note_type_by_name,
    parse_features,
)

ORIGIN = NoteOrigin("segment", 4, 0x1000, 0x1010)
STRING_TYPES = {5, 6, 7, 8, 9, 10, 11, 0}


def raw(type_: int, desc: bytes, *, descsz: int | None = None, big_endian: bool = False,
        elf_class: int = 64, desc_str: bytes | None = None, too_long: bool = False) -> RawNote:
    if desc_str is None and type_ in STRING_TYPES and not too_long:
        desc_str = desc.split(b"\0")[0]
    return RawNote("Xen", type_, 4, len(desc) if descsz is None else descsz, desc, ORIGIN,
                   desc_str, too_long, big_endian, elf_class)


def params(*notes, machine=62, e_entry=0x1000000, kstart=0x1000000, kend=0x2000000,
           notes_seen=True):
    acc = apply_all([decode_xen_note(n) for n in notes])
    return finish(acc, notes_seen=notes_seen, where="segment", machine=machine,
                  e_entry=e_entry, kstart=kstart, kend=kend, elf_broken=None,
                  total_note_count=len(notes))


# --- catalogue -------------------------------------------------------------------


def test_catalogue_has_the_twenty_loader_types_and_the_core_notes():
    loader = {n: t.name for n, t in NOTE_TYPES.items() if n < 0x1000000}
    assert loader == {
        0: "INFO", 1: "ENTRY", 2: "HYPERCALL_PAGE", 3: "VIRT_BASE", 4: "PADDR_OFFSET",
        5: "XEN_VERSION", 6: "GUEST_OS", 7: "GUEST_VERSION", 8: "LOADER", 9: "PAE_MODE",
        10: "FEATURES", 11: "BSD_SYMTAB", 12: "HV_START_LOW", 13: "L1_MFN_VALID",
        14: "SUSPEND_CANCEL", 15: "INIT_P2M", 16: "MOD_START_PFN", 17: "SUPPORTED_FEATURES",
        18: "PHYS32_ENTRY", 19: "PHYS32_RELOC",
    }
    core = {n: t.name for n, t in NOTE_TYPES.items() if n >= 0x1000000}
    assert core == {0x1000001: "CRASH_INFO", 0x1000002: "CRASH_REGS",
                    0x2000000: "DUMPCORE_NONE", 0x2000001: "DUMPCORE_HEADER",
                    0x2000002: "DUMPCORE_XEN_VERSION", 0x2000003: "DUMPCORE_FORMAT_VERSION"}
    assert not any(t.applied for t in NOTE_TYPES.values() if t.kind == "core")


def test_xenfeat_numbers_run_to_twenty_and_features_names_are_xens_seven():
    assert len(XENFEAT_NAMES) == 21
    assert XENFEAT_NAMES[11] == "dom0"
    assert XENFEAT_NAMES[15] == "linux_rsdp_unrestricted"
    assert XENFEAT_NAMES[20] == "dm_msix_all_writes"
    assert FEATURES_NAMES == {
        "writable_page_tables": 0, "writable_descriptor_tables": 1,
        "auto_translated_physmap": 2, "supervisor_mode_kernel": 3, "pae_pgdir_above_4gb": 4,
        "hvm_callback_vector": 8, "dom0": 11,
    }
    assert feature_names(0x8801) == ("writable_page_tables", "dom0", "linux_rsdp_unrestricted")
    assert feature_names(1 << 21) == ("bit21",)


@pytest.mark.parametrize("text,number", [
    ("PHYS32_RELOC", 19), ("phys32-reloc", 19), ("XEN_ELFNOTE_PHYS32_ENTRY", 18),
    ("guest_os", 6), ("19", 19), ("0x13", 19), ("CRASH_INFO", 0x1000001),
])
def test_note_type_by_name(text, number):
    assert note_type_by_name(text) == number


def test_note_type_by_name_refuses_unknown_names():
    with pytest.raises(UsageError, match=r"unknown Xen note type 'PHYS64_ENTRY'.*PHYS32_RELOC"):
        note_type_by_name("PHYS64_ENTRY")


# --- integers ------------------------------------------------------------------------


@pytest.mark.parametrize("size,value", [(1, 0xAB), (2, 0xABCD), (4, 0x1000A30),
                                        (8, 0xFFFFFFFF833265A0)])
def test_integer_notes_of_1_2_4_8_bytes(size, value):
    note = decode_xen_note(raw(1, value.to_bytes(size, "little")))
    assert note.value == value and note.issues == () and note.applied


@pytest.mark.parametrize("size", [0, 3, 5, 6, 12, 16])
def test_integer_notes_of_other_sizes_read_as_zero(size):
    note = decode_xen_note(raw(3, b"\x11" * size))
    assert note.value == 0
    assert note.issues == (f"descsz {size} is not 1, 2, 4 or 8: Xen reads 0",)


def test_big_endian_integer():
    assert decode_xen_note(raw(18, bytes.fromhex("01000a30"), big_endian=True)).value == 0x1000A30


def test_phys32_entry_is_truncated_to_32_bits():
    note = decode_xen_note(raw(18, (0x100001000).to_bytes(8, "little")))
    assert note.value == 0x100001000
    assert "does not fit in 32 bits: Xen keeps 0x1000" in note.issues[0]
    p = params(raw(18, (0x1001000).to_bytes(8, "little")))
    assert p.phys32_entry == 0x1001000 and p.pvh


def test_phys32_entry_of_0xffffffff_is_xens_unset_marker():
    note = decode_xen_note(raw(18, b"\xff" * 4))
    assert "Xen sees no PHYS32_ENTRY" in note.issues[0]
    p = params(raw(18, b"\xff" * 4), raw(8, b"generic\0"), raw(5, b"xen-3.0\0"))
    assert p.phys32_entry is None and not p.pvh


def test_phys32_entry_with_a_bad_size_is_zero_and_out_of_bounds():
    p = params(raw(18, b"\x30\x0a\x00"))
    assert p.phys32_entry == 0
    assert p.broken == ("entry 0x0 is outside the kernel range [0x1000000, 0x2000000]: ELF start "
                        "or entries are out of bounds")
    assert not p.pvh


# --- strings and FEATURES ----------------------------------------------------------


def test_string_note_is_xens_c_string_not_descsz():
    # descsz 3 but the string runs on to the NUL, as elf_strval reads it.
    note = decode_xen_note(raw(6, b"lin", desc_str=b"linux"))
    assert note.value == "linux"
    assert note.issues == ("no NUL within descsz 3: Xen reads the string on to the next NUL",)


def test_overlong_string_is_not_applied():
    note = decode_xen_note(raw(6, b"x" * 16, desc_str=None, too_long=True))
    assert not note.applied and note.value is None
    assert note.issues == ("string longer than 4096 bytes: Xen ignores this note and marks "
                           "the image broken",)
    p = params(raw(6, b"linux\0"), raw(6, b"x" * 16, desc_str=None, too_long=True))
    assert p.guest_os == "linux"


def test_parse_features_tokens():
    tokens, failed = parse_features(b"!writable_page_tables|dom0||hvm_pirqs")
    assert failed is None
    assert [(t.text, t.required, t.bit) for t in tokens] == [
        ("writable_page_tables", True, 0), ("dom0", False, 11), ("hvm_pirqs", False, None)]


def test_parse_features_cuts_tokens_at_63_bytes_like_xens_buffer():
    tokens, failed = parse_features(b"a" * 70 + b"|dom0")
    assert [t.text for t in tokens] == ["a" * 63, "a" * 7, "dom0"]
    assert failed is None
    # A known name pushed past byte 63 is split and no longer recognised.
    tokens, _ = parse_features(b"x" * 62 + b"dom0")
    assert [(t.text, t.bit) for t in tokens] == [("x" * 62 + "d", None), ("om0", None)]


def test_unknown_required_feature_fails_the_parse_and_stops_there():
    tokens, failed = parse_features(b"dom0|!mmu_pt_update_preserve_ad|hvm_callback_vector")
    assert failed is not None and failed.text == "mmu_pt_update_preserve_ad"
    assert [t.text for t in tokens] == ["dom0", "mmu_pt_update_preserve_ad"]
    tokens, failed = parse_features(b"!")
    assert failed is not None and failed.text == "" and failed.required


def test_features_accumulate_and_required_sticks():
    p = params(raw(10, b"writable_page_tables|pae_pgdir_above_4gb\0"),
               raw(10, b"!writable_page_tables|dom0\0"), raw(18, b"\x00\x00\x00\x01"))
    assert p.features == {"writable_page_tables": True, "pae_pgdir_above_4gb": False,
                          "dom0": False}
    assert p.supported_features == 0x811
    assert p.required_features == 0x1
    assert p.dom0_capable is None  # no SUPPORTED_FEATURES note: Xen does not check


def test_unknown_required_feature_makes_xen_fail_and_later_notes_unapplied():
    p = params(raw(18, b"\x00\x10\x00\x01"), raw(10, b"!no_such_feature\0"),
               raw(6, b"linux\0"))
    assert p.broken == ("FEATURES note at 0x1000 requires 'no_such_feature', which Xen does not "
                        "know: Xen fails the parse")
    assert not p.pvh
    assert p.guest_os is None
    assert p.unknown_features == ("no_such_feature",)


# --- SUPPORTED_FEATURES and dom0 --------------------------------------------------------


def test_supported_features_are_ored():
    p = params(raw(17, (0x1).to_bytes(4, "little")), raw(17, (0x8000).to_bytes(4, "little")))
    assert p.supported_features_note == 0x8001
    assert p.dom0_capable is False


def test_dom0_bit_may_come_from_a_features_name():
    # Xen tests f_supported, which FEATURES names feed as well.
    p = params(raw(17, (0x1).to_bytes(4, "little")), raw(10, b"dom0\0"))
    assert p.dom0_capable is True
    assert p.supported_features == 0x801


def test_supported_features_with_bad_size_ors_zero_but_still_triggers_the_check():
    note = decode_xen_note(raw(17, b"\x00\x08\x00"))
    assert note.value == 0
    p = params(raw(17, b"\x00\x08\x00"))
    assert p.supported_features == 0 and p.dom0_capable is False


# --- PHYS32_RELOC -------------------------------------------------------------------------


@pytest.mark.parametrize("desc,words", [
    (b"", (None, None, None)),
    ((0x200000).to_bytes(4, "little"), (0x200000, None, None)),
    (bytes.fromhex("00002000" "00000001"), (0x200000, 0x1000000, None)),
    (bytes.fromhex("00002000" "00000001" "ffffff3f"), (0x200000, 0x1000000, 0x3FFFFFFF)),
    (bytes.fromhex("00002000" "00000001" "ffffff3f" "01000000"), (0x200000, 0x1000000,
                                                                  0x3FFFFFFF)),
    (bytes.fromhex("00002000" "00"), (0, None, None)),  # descsz 5: covered word reads 0
    (bytes.fromhex("00002000" "00000001" "ffff"), (0, 0, None)),  # descsz 10
])
def test_phys32_reloc_words(desc, words):
    note = decode_xen_note(raw(19, desc))
    assert (note.value["align"], note.value["min"], note.value["max"]) == words
    p = params(raw(18, b"\x00\x10\x00\x01"), raw(19, desc))
    assert p.relocatable
    assert (p.phys32_reloc.align, p.phys32_reloc.min, p.phys32_reloc.max) == words


def test_phys32_reloc_later_note_overwrites_only_its_words():
    p = params(raw(19, bytes.fromhex("00002000" "00000001" "ffffff3f")),
               raw(19, (0x1000).to_bytes(4, "little")), raw(19, b""))
    assert p.phys32_reloc == Phys32Reloc(0x1000, 0x1000000, 0x3FFFFFFF)


@pytest.mark.parametrize("reloc,palign,expected", [
    (Phys32Reloc(), 0x200000, (0x200000, 0, 0xFFFFFFFF)),
    (Phys32Reloc(), 0x1000, (0x1000, 0, 0xFFFFFFFF)),
    (Phys32Reloc(), 0x40, (0x200000, 0, 0xFFFFFFFF)),  # xen-shim: p_align 0x40 < 4096
    (Phys32Reloc(), 0x100001000, (0x1000, 0, 0xFFFFFFFF)),  # Xen's unsigned int local
    (Phys32Reloc(0xFFFFFFFF, 5, 6), 0x2000, (0x2000, 5, 6)),  # explicit "unset"
    (Phys32Reloc(0, None, 0x3FFFFFFF), 0x200000, (0, 0, 0x3FFFFFFF)),  # 0 is used as is
])
def test_phys32_reloc_effective_alignment(reloc, palign, expected):
    assert reloc.effective(palign) == expected


# --- the rest -----------------------------------------------------------------------


@pytest.mark.parametrize("desc,elf_class,pairs", [
    ((1).to_bytes(8, "little") * 2, 64, ((1, 1),)),
    ((1).to_bytes(8, "little") * 2, 32, ((1, 1),)),  # 16 bytes: one pair of 8-byte words
    (bytes.fromhex("01000000" "01000000"), 64, ((1, 1),)),
    ((3).to_bytes(8, "little") + (1).to_bytes(8, "little") + (4).to_bytes(8, "little") * 2, 64,
     ((3, 1), (4, 4))),
    (b"\x01" * 12, 64, None),
])
def test_l1_mfn_valid_pairs(desc, elf_class, pairs):
    assert decode_xen_note(raw(13, desc, elf_class=elf_class)).value == pairs


def test_pae_mode_follows_xens_odd_mapping():
    assert params(raw(9, b"yes\0")).pae == "extcr3"
    assert params(raw(9, b"bimodal\0")).pae == "bimodal"
    assert params(raw(9, b"yes[extended-cr3]\0")).pae == "no"  # neither "yes" nor "bimodal"
    assert params(raw(9, b"yes\0"), raw(9, b"no\0")).pae_mode == "no"


def test_unknown_types_count_as_xen_notes_but_do_nothing():
    note = decode_xen_note(raw(20, b"\x01\x02"))
    assert note.name == "unknown (0x14)" and note.value is None and not note.applied
    p = params(raw(20, b"\x01\x02"), raw(0, b"a=b\0"))
    assert p.xen_notes_found and p.xen_note_count == 2 and p.info == "a=b"


def test_last_one_wins_for_plain_values():
    p = params(raw(6, b"linux\0"), raw(6, b"FreeBSD\0"), raw(3, (1).to_bytes(8, "little")),
               raw(3, (2).to_bytes(8, "little")), raw(18, b"\x00\x00\x00\x01"),
               raw(18, b"\x00\x10\x00\x01"))
    assert (p.guest_os, p.virt_base, p.phys32_entry) == ("FreeBSD", 2, 0x1001000)


def test_bsd_symtab_sticks():
    assert params(raw(11, b"yes\0"), raw(11, b"no\0")).bsd_symtab


# --- Xen's final checks -----------------------------------------------------------------


def test_no_notes_at_all_is_not_a_xen_elf_on_x86_only():
    acc = Accumulator()
    kw = dict(where=None, e_entry=0, kstart=0, kend=1, elf_broken=None, total_note_count=0)
    assert finish(acc, notes_seen=False, machine=62, **kw).broken == \
        "no ELF notes: Not a Xen-ELF image"
    assert finish(acc, notes_seen=False, machine=183, **kw).broken is None


def test_pv_style_image_without_phys32_entry():
    p = params(raw(6, b"NetBSD\0"))
    assert p.broken == ("no PHYS32_ENTRY, and neither LOADER 'generic' nor GUEST_OS 'linux': "
                        "Xen will only load images built for the generic loader or Linux images")
    p = params(raw(6, b"linux\0"), raw(5, b"xen-2.0\0"))
    assert p.broken == "no PHYS32_ENTRY, and XEN_VERSION is not 'xen-3.0': Xen refuses the image"
    # Passes libelf (e_entry is in range) but is not PVH.
    p = params(raw(8, b"generic\0"), raw(5, b"xen-3.0\0"))
    assert p.broken is None and not p.pvh and p.virt_entry == 0x1000000


def test_init_p2m_inside_the_kernel_fails():
    p = params(raw(18, b"\x00\x10\x00\x01"), raw(15, (0x1800000).to_bytes(8, "little")))
    assert p.broken == ("INIT_P2M 0x1800000 lies inside the kernel: P->M table base is out of "
                        "bounds")


def test_entry_bounds_are_inclusive_at_both_ends():
    assert params(raw(18, (0x2000000).to_bytes(4, "little"))).pvh
    assert not params(raw(18, (0x2000001).to_bytes(4, "little"))).pvh
    assert params(raw(18, (0x1000000).to_bytes(4, "little"))).pvh


def test_no_loadable_segment():
    p = params(raw(18, b"\x00\x10\x00\x01"), kstart=None, kend=None)
    assert p.broken == "no loadable PT_LOAD segment: ELF start or entries are out of bounds"


def test_other_notes_are_named():
    gnu = decode_other_note(RawNote("GNU", 3, 4, 4, b"\xde\xad\xbe\xef", ORIGIN))
    assert (gnu.name, gnu.value) == ("NT_GNU_BUILD_ID", "deadbeef")
    salt = decode_other_note(RawNote("Linux", 0x100, 6, 6, b"6.12\0\0", ORIGIN))
    assert (salt.name, salt.value) == ("LINUX_ELFNOTE_BUILD_SALT", "6.12")
    odd = decode_other_note(RawNote("FreeBSD", 1, 8, 4, b"\x01\x00\x00\x00", ORIGIN))
    assert (odd.name, odd.value) == ("type 0x1", None)


def test_note_and_params_to_dict_are_json_plain():
    note = decode_xen_note(raw(19, bytes.fromhex("00002000")))
    d = note.to_dict()
    assert d["value"] == {"align": 0x200000, "min": None, "max": None}
    assert d["raw"] == "00002000" and d["origin"]["offset"] == 0x1000
    p = params(raw(19, bytes.fromhex("00002000")), raw(18, b"\x00\x10\x00\x01"))
    text = json.dumps(p.to_dict())
    assert json.loads(text)["phys32_reloc"] == {"align": 0x200000, "min": None, "max": None}
    assert json.loads(text)["phys32_entry"] == 0x1001000


def test_guest_text_decodes_only_a_hex_freebsd_version():
    from noteforge.image.notes import guest_text, guest_version_text

    assert guest_text("FreeBSD", "0x16e748") == "FreeBSD 0x16e748 (__FreeBSD_version 1501000)"
    assert guest_version_text("FreeBSD", "1401000") == "1401000"  # decimal: as written
    assert guest_version_text("linux", "0x10") == "0x10"  # only FreeBSD's is __FreeBSD_version
    assert guest_version_text("FreeBSD", "0xzz") == "0xzz"
    assert guest_text(None, None) is None
