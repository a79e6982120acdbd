"""Many notes (issue 16, item 6): every note walk stops at Xen's 65,536
notes, in linear time; text output lists the first 200 notes and counts the
rest; remove-note over 65,535 copies is linear; a change that would land past
Xen's cap is refused in words. Subprocess timeouts are hang guards (the
quadratic versions took 110 s for 10,000 notes), not timing assertions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_process import ENV, NOTEFORGE

from noteforge.image import synth
from noteforge.image.open import open_image


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NOTEFORGE, *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=240)


@pytest.fixture(scope="module", params=[65_535, 1_000_000], ids=["65535", "1e6"])
def many(request, tmp_path_factory) -> tuple[int, Path]:
    n = request.param
    notes = synth.xen_note(18, 0x1000A30) + synth.xen_note(6, "linux") * (n - 1)
    path = tmp_path_factory.mktemp("notes") / f"k{n}.elf"
    path.write_bytes(synth.pvh_elf(notes))
    return n, path


def test_notes_lists_200_and_counts_the_rest(many):
    n, path = many
    r = run("notes", path)
    assert r.returncode == 0, r.stderr
    shown = min(n, 65_536)
    assert f"... and {shown - 200:,} more notes not shown (the effective values fold them" \
        in r.stdout
    assert len(r.stdout.splitlines()) < 500
    if n > 65_536:
        assert "more than 65536 notes: Xen stops reading notes at 0x1803fc in PT_NOTE" in \
            " ".join(r.stdout.split())


def test_remove_note_over_every_copy_is_linear(many, tmp_path):
    n, path = many
    out = tmp_path / "out.elf"
    before = path.read_bytes()
    r = run("remove-note", path, "--type", "GUEST_OS", "--force", "-o", out)
    assert r.returncode == 0, r.stderr
    copies = min(n, 65_536) - 1  # the GUEST_OS copies Xen reads
    assert f"neutralised at 0x414, 0x42c, 0x444, 0x45c, 0x474, 0x48c, 0x4a4, 0x4bc and " \
           f"{copies - 8:,} more" in r.stdout
    assert path.read_bytes() == before
    assert open_image(out).effective.guest_os is None


def test_a_note_past_xens_cap_is_refused_in_words(many, tmp_path):
    """65,535 notes: the new PHYS32_RELOC is note 65,536, the last Xen reads,
    so it is written and read back; 10^6: it would land past the cap."""
    n, path = many
    r = run("set-reloc", path, "--align", "2M", "--force", "-o", tmp_path / "out.elf")
    if n < 65_536:
        assert r.returncode == 0, r.stderr
        reloc = open_image(tmp_path / "out.elf").effective.phys32_reloc
        assert (reloc.align, open_image(tmp_path / "out.elf").effective.relocatable) == (
            0x200000, True)
        return
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"noteforge: error: {path}: Xen reads at most 65,536 notes "
                        "(elf_xen_parse_notes: 'too many ELF notes') and this image has that "
                        "many before the change would land: Xen would not read it; nothing "
                        "written\n")
    assert list(tmp_path.iterdir()) == []
