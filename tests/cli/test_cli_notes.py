"""`noteforge notes` and `noteforge extract` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from noteforge.cli.app import app
from noteforge.errors import DecompressError, ImageError, NoteforgeError
from noteforge.image import synth

KERNELS = Path(__file__).resolve().parents[3] / "shared" / "kernels"
NOTES = (synth.xen_note(18, 0x1000A30, 8) + synth.xen_note(6, "linux")
         + synth.xen_note(17, 0x8001) + synth.xen_note(10, "!writable_page_tables")
         + synth.xen_note(19, bytes.fromhex("00002000" "00000001" "ffffff3f")))

runner = CliRunner()


@pytest.fixture
def bzimage(tmp_path) -> Path:
    path = tmp_path / "vmlinuz"
    path.write_bytes(synth.build_bzimage(synth.compress(synth.pvh_elf(NOTES), "zstd")))
    return path


def test_notes_report(bzimage):
    result = runner.invoke(app, ["notes", str(bzimage)], terminal_width=160)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("bzimage (zstd payload)", "protocol", "2.15 (0x020f)", "pstart",
                 "0x1000000 (16 MiB)", "entry check", "0x1000a30 in [0x1000000, 0x4200000]: yes",
                 "18 (0x12)", "PHYS32_ENTRY", "30 0a 00 01 00 00 00 00", "seg 1 @0x400",
                 "19 (0x13)", "PHYS32_RELOC", "align 0x200000, min 0x1000000, max 0x3fffffff",
                 "0x8001 (writable_page_tables, linux_rsdp_unrestricted)",
                 "PVH bootable", "relocatable", "0x200000 (2 MiB, from the note)",
                 "NO: SUPPORTED_FEATURES lacks XENFEAT_dom0", "warnings",
                 "dom0 not supported"):
        assert text in out, text


def test_notes_json(bzimage):
    result = runner.invoke(app, ["notes", "--json", str(bzimage)])
    assert result.exit_code == 0
    d = json.loads(result.output)
    assert (d["format"], d["compression"]) == ("bzimage", "zstd")
    assert d["bzimage"]["payload_offset"] == 0xCCC
    assert d["load"]["pstart"] == 0x1000000 and d["load"]["dest_size"] == 0x3200000
    assert [(n["type"], n["name"]) for n in d["notes"]] == [
        (18, "PHYS32_ENTRY"), (6, "GUEST_OS"), (17, "SUPPORTED_FEATURES"), (10, "FEATURES"),
        (19, "PHYS32_RELOC")]
    assert d["notes"][0]["value"] == 0x1000A30 and d["notes"][0]["raw"] == "300a000100000000"
    eff = d["effective"]
    assert eff["phys32_reloc"] == {"align": 0x200000, "min": 0x1000000, "max": 0x3FFFFFFF}
    assert (eff["pvh"], eff["relocatable"], eff["dom0_capable"]) == (True, True, False)
    assert any(w.startswith("dom0 not supported") for w in d["warnings"])


def test_notes_on_a_real_image():
    path = KERNELS / "xen-shim-4.20"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    result = runner.invoke(app, ["notes", "--json", str(path)])
    d = json.loads(result.output)
    assert d["format"] == "elf32" and d["effective"]["phys32_entry"] == 0x622B14


def test_notes_errors_are_one_line_noteforge_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(20))
    result = runner.invoke(app, ["notes", str(bad)])
    assert isinstance(result.exception, ImageError)
    assert str(result.exception) == (f"{bad} at offset 0x10: ELF64 header (0x30 bytes) runs past "
                                     "the end of the ELF image (0x1b bytes); truncated or corrupt "
                                     "file")


def test_max_decompressed_option(bzimage):
    result = runner.invoke(app, ["notes", "--max-decompressed", "1K", str(bzimage)])
    assert isinstance(result.exception, DecompressError)
    assert "more than the limit of 1024" in str(result.exception)
    result = runner.invoke(app, ["notes", "--max-decompressed", "lots", str(bzimage)])
    assert isinstance(result.exception, NoteforgeError)
    assert str(result.exception).startswith("--max-decompressed 'lots': expected a number")


def test_extract(bzimage, tmp_path):
    out = tmp_path / "vmlinux"
    result = runner.invoke(app, ["extract", str(bzimage), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == synth.pvh_elf(NOTES)
    assert result.output == (f"{out}: ELF64, {out.stat().st_size:,} bytes (from the zstd payload "
                             f"of {bzimage.stat().st_size - 0xCCC - 64:,} bytes at 0xccc in "
                             f"{bzimage})\n")
    result = runner.invoke(app, ["extract", "--json", str(bzimage), "--output", str(out)])
    assert json.loads(result.output)["size"] == out.stat().st_size


def test_extract_needs_an_output(bzimage):
    result = runner.invoke(app, ["extract", str(bzimage)])
    assert result.exit_code == 2
    assert "Missing option '-o' / '--output'" in result.output


def test_main_prints_one_line_and_exits_2(tmp_path, capsys):
    from noteforge.cli.app import main

    path = tmp_path / "nothing"
    assert main(["notes", str(path)]) == 2
    assert capsys.readouterr().err == (f"noteforge: error: {path}: cannot open (No such file or "
                                       "directory)\n")
