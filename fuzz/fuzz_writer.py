#!/usr/bin/env python3
"""Fuzz harness: the note writer (set-reloc, set-note, remove-note). The input
is an operation byte, four u32 words and an image (formats.py). The harness
writes to a fresh output path and checks, whatever happens:

- the input file is never modified (no --in-place here), except by the
  in-place operation, which works on a copy and must leave that copy either
  untouched (on refusal) or proven;
- a refusal is a one-line NoteforgeError and leaves no output file and no
  stray temporary file behind;
- a success leaves an output that noteforge reads back with the change made:
  the PHYS32_RELOC words asked for, the value set, or the note gone.
"""

from __future__ import annotations

import os
import shutil

import common
import formats

with common.instrumented_imports():
    from noteforge.errors import NoteforgeError
    from noteforge.image.open import open_image
    from noteforge.write import apply as writer

OPS = ("reloc", "reloc-force", "entry", "string", "remove", "features", "in-place")
# XEN_VERSION, GUEST_OS, GUEST_VERSION, LOADER, PAE_MODE, FEATURES
STRING_TYPES = (5, 6, 7, 8, 9, 10)
STRINGS = ("xen-3.0", "linux", "2.6", "generic", "yes", "!writable_page_tables", "FreeBSD", "")


def _listing(d) -> set[str]:
    return set(os.listdir(d))


def test_one(data: bytes) -> None:
    op_byte, words, image = formats.split_writer(data)
    op = OPS[op_byte % len(OPS)]
    src = common.write_input(image, "writer-in")
    outdir = common.scratch("writer-out")
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir()
    out = outdir / "vmlinux.out"
    target = out
    kw: dict = {"output": str(out)}
    if op == "in-place":
        target = outdir / "copy"
        shutil.copyfile(src, target)
        kw = {"in_place": True}
    count = words[3] % 4
    reloc = [words[i] if i < count else None for i in range(3)]
    try:
        if op.startswith("reloc") or op == "in-place":
            result = writer.set_reloc(str(target if op == "in-place" else src), align=reloc[0],
                                      min_addr=reloc[1], max_addr=reloc[2],
                                      force=op != "reloc", **kw)
        elif op == "entry":
            result = writer.set_note(str(src), 18, hex(words[0]), force=True, **kw)
        elif op == "string":
            t = STRING_TYPES[words[0] % len(STRING_TYPES)]
            result = writer.set_note(str(src), t, STRINGS[words[1] % len(STRINGS)], **kw)
        elif op == "remove":
            result = writer.remove_note(str(src), words[0] % 21, force=True, **kw)
        else:
            result = writer.set_note(str(src), 17, hex(words[0]), **kw)
    except NoteforgeError as err:
        common.check_error(err, str(src), str(target), str(out))
        left = _listing(outdir) - ({"copy"} if op == "in-place" else set())
        if left:
            raise common.ContractViolation(f"refused ({err}) but left {sorted(left)}") from err
        if op == "in-place" and target.read_bytes() != image:
            raise common.ContractViolation(
                f"refused ({err}) but changed the in-place file") from err
        return
    except Exception as err:
        common.check_error(err)
        raise
    finally:
        if src.read_bytes() != image:
            raise common.ContractViolation("the input file was modified")
    common.check_plain(result.to_dict())
    written = open_image(str(target))
    eff = written.effective
    if op.startswith("reloc") or op == "in-place":
        r = eff.phys32_reloc
        if r is None:
            raise common.ContractViolation("set-reloc succeeded but no PHYS32_RELOC is read back")
        got = [r.align, r.min, r.max]
        for i in range(count):
            if got[i] != reloc[i]:
                raise common.ContractViolation(f"PHYS32_RELOC word {i}: wrote {reloc[i]:#x}, "
                                               f"read back {got[i]!r}")
    elif op == "remove" and any(n.type == words[0] % 21 for n in written.notes):
        raise common.ContractViolation(f"remove-note {words[0] % 21} succeeded but it is read back")


if __name__ == "__main__":
    common.setup_and_fuzz(test_one)
