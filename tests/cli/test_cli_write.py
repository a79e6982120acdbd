"""`noteforge set-reloc`, `set-note` and `remove-note` from the command line:
what they print, what they write, and their refusals (exit status 2)."""

from __future__ import annotations

import json

from test_writer_support import linux_612_like, linux_like, sha256, write

from noteforge.cli.app import main
from noteforge.image.open import open_image
from noteforge.image.synth import build_bzimage, compress


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_set_reloc_writes_and_reports_the_method_and_proof(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    out = tmp_path / "out"
    rc, stdout, _ = run(capsys, "set-reloc", src, "-o", out, "--align", "4M")
    assert rc == 0
    # The words not given keep the image's values, and the line shows all three.
    assert "set PHYS32_RELOC (type 19) in Linux 6.12.0-nf-amd64: align 0x200000, min " \
           "0x1000000, max 0x3fffffff -> align 0x400000, min 0x1000000 (kept), max 0x3fffffff " \
           "(kept)" in stdout
    assert "method: in-place: changed the note's desc bytes where they are" in stdout
    assert f"wrote {out}" in stdout
    assert "proof: 12/12 checks passed" in stdout
    assert open_image(out).effective.phys32_reloc.to_dict() == {
        "align": 0x400000, "min": 0x1000000, "max": 0x3FFFFFFF}
    # Dropping words is explicit, and on Linux a max above its own needs --force.
    rc, _, stderr = run(capsys, "set-reloc", src, "-o", tmp_path / "o1", "--align", "4M",
                        "--words", "1")
    assert rc == 2 and not (tmp_path / "o1").exists()
    assert "refused: max 0xffffffff (Xen's default: the note would carry no max) is above " \
           "its own note's max (0x3fffffff = KERNEL_IMAGE_SIZE - 1" in " ".join(stderr.split())
    rc, stdout, _ = run(capsys, "set-reloc", src, "-o", tmp_path / "o1", "--align", "4M",
                        "--words", "1", "--force")
    assert rc == 0 and "method: new-note-segment: added a PT_NOTE program header" in stdout
    assert open_image(tmp_path / "o1").effective.phys32_reloc.to_dict() == {
        "align": 0x400000, "min": None, "max": None}


def test_dry_run_shows_offsets_and_bytes_and_writes_nothing(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    before = sha256(src)
    rc, stdout, _ = run(capsys, "set-reloc", src, "--align", "0x400000", "--words", "1",
                        "--dry-run", "--force")
    assert rc == 0
    assert "would set PHYS32_RELOC (type 19)" in stdout
    assert "method: new-note-segment: would add a PT_NOTE program header" in stdout
    assert "old copies would be neutralised at" in stdout
    assert "wrote" not in stdout
    assert "dry run: nothing written; 6 write(s) planned" in stdout
    assert "0x00000038     2 bytes  header not loaded ELF header e_phnum: 0x3 -> 0x4" in stdout
    assert "      old: 03 00\n      new: 04 00" in stdout
    assert "owner 'Xen' -> 'nfx', type 19 -> 0x6e660013" in stdout
    assert sha256(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vmlinux"]


def test_json_output(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    rc, stdout, _ = run(capsys, "set-reloc", src, "-o", tmp_path / "o", "--align", "4M",
                        "--min", "16M", "--max", "0x1fffffff", "--json")
    assert rc == 0
    doc = json.loads(stdout)
    assert doc["plan"]["method"] == "in-place" and doc["unchanged"] is False
    assert doc["plan"]["change"] == {"op": "set", "type": 19, "name": "PHYS32_RELOC",
                                     "desc": "0000400000000001ffffff1f",
                                     "value": "align 0x400000, min 0x1000000, max 0x1fffffff"}
    assert doc["proof"]["ok"] is True
    assert doc["converted_to_elf"] is False
    assert all(isinstance(p["offset"], int) for p in doc["plan"]["patches"])


def test_no_destination_is_refused(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    rc, _, stderr = run(capsys, "set-reloc", src, "--align", "4M")
    assert rc == 2
    assert stderr.startswith("noteforge: error: give exactly one of -o OUTPUT or --in-place")
    rc, _, stderr = run(capsys, "remove-note", src, "--type", "19", "-o", tmp_path / "x",
                        "--in-place")
    assert rc == 2 and "exactly one" in stderr


def test_unsafe_reloc_needs_force(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_like())
    rc, _, stderr = run(capsys, "set-reloc", src, "-o", tmp_path / "o", "--align", "2M")
    assert rc == 2
    assert "refused: adding PHYS32_RELOC to Linux 6.1.0-nf-amd64" in stderr
    assert "pass --force" in stderr
    assert not (tmp_path / "o").exists()
    rc, _, stderr = run(capsys, "set-reloc", src, "-o", tmp_path / "o", "--align", "2M",
                             "--force")
    assert rc == 0
    assert "WARNING: adding PHYS32_RELOC to Linux 6.1.0-nf-amd64" in " ".join(stderr.split())
    assert open_image(tmp_path / "o").effective.relocatable


def test_words_out_of_order_are_refused(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_like())
    rc, _, stderr = run(capsys, "set-reloc", src, "-o", tmp_path / "o", "--min", "16M",
                        "--force")
    assert rc == 2 and "--min needs --align" in stderr
    assert "the image's note has no align word to keep" in " ".join(stderr.split())
    src = write(tmp_path / "vmlinux", linux_612_like())
    rc, _, stderr = run(capsys, "set-reloc", src, "-o", tmp_path / "o", "--align", "8G")
    assert rc == 2 and "32 bits" in stderr


def test_set_note_and_remove_note(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    out = tmp_path / "o"
    rc, stdout, _ = run(capsys, "set-note", src, "-o", out, "--type", "guest-version",
                        "--value", "6.1")
    assert rc == 0 and "method: in-place" in stdout
    assert open_image(out).effective.guest_version == "6.1"
    rc, stdout, _ = run(capsys, "remove-note", out, "--in-place", "--type", "PHYS32_RELOC")
    assert rc == 0 and "method: neutralise" in stdout
    assert not open_image(out).effective.relocatable
    rc, stdout, _ = run(capsys, "remove-note", out, "--in-place", "--type", "PHYS32_RELOC")
    assert rc == 0 and stdout.splitlines() == [
        f"nothing changed: Linux 6.12.0-nf-amd64 has no PHYS32_RELOC note that Xen reads; {out} "
        "left untouched"]
    rc, _, stderr = run(capsys, "set-note", out, "--in-place", "--type", "no-such-note",
                        "--value", "1")
    assert rc == 2 and "unknown Xen note type 'no-such-note'" in stderr
    rc, _, stderr = run(capsys, "set-note", out, "--in-place", "--type", "0x12", "--value",
                        "0x1000b00")
    assert rc == 2 and "PHYS32_ENTRY" in stderr and "--force" in stderr
    rc, _, stderr = run(capsys, "set-note", out, "--in-place", "--type", "VIRT_BASE",
                        "--value", "0", "--size", "3")
    assert rc == 2 and "1, 2, 4 or 8" in stderr


def test_set_note_integer_size(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    out = tmp_path / "o"
    rc, stdout, _ = run(capsys, "set-note", src, "-o", out, "--type", "SUSPEND_CANCEL",
                        "--value", "1", "--size", "8")
    assert rc == 0 and "method: new-note-segment" in stdout
    (n,) = [n for n in open_image(out).notes if n.type == 14]
    assert (n.value, n.descsz) == (1, 8)


def test_bzimage_input_says_it_writes_an_elf(tmp_path, capsys):
    src = write(tmp_path / "vmlinuz", build_bzimage(compress(linux_612_like(), "zstd")))
    rc, stdout, _ = run(capsys, "set-reloc", src, "-o", tmp_path / "vmlinux", "--align", "4M")
    assert rc == 0
    assert "input is a bzimage: the result is written as an ELF vmlinux" in stdout
    assert open_image(tmp_path / "vmlinux").format == "elf64"
    rc, _, stderr = run(capsys, "set-reloc", src, "--in-place", "--align", "4M")
    assert rc == 2 and "use -o OUTPUT" in " ".join(stderr.split())
