"""Xen 4.17's `readnotes` (tools/xcutils/readnotes.c, Debian xen-utils-4.17), run
as a child process and its output turned into plain data.

What readnotes prints (checked on the Debian binary, see docs/libelf-layout.md):
  * one stdout line per note whose name is "Xen", in file order, from every
    PT_NOTE segment with p_offset != 0; then, only if the LAST such segment held
    no Xen note, from every SHT_NOTE section (stderr then says "using notes from
    SHT_NOTE section" for each section that held some);
  * strings: `NAME: value` for INFO, XEN_VERSION, GUEST_OS, GUEST_VERSION,
    LOADER, PAE_MODE, FEATURES ("(invalid)" when libelf cannot read the string);
  * integers: `NAME: %#*x (%d bytes)` right-aligned in 2+2*descsz columns, for
    ENTRY, HYPERCALL_PAGE, VIRT_BASE, PADDR_OFFSET, HV_START_LOW,
    SUSPEND_CANCEL, PHYS32_ENTRY; libelf's elf_note_numeric gives 0 unless descsz
    is 1, 2, 4 or 8; 0 prints as `0`;
  * `L1_MFN_VALID: mask=%#x value=%#x` for the first pair when descsz/2 is 8 or
    4 (descsz 16, 17, 8 or 9); any other size prints nothing at all;
  * `unknown note type %#x` for every other type (BSD_SYMTAB 11, INIT_P2M 15,
    MOD_START_PFN 16, SUPPORTED_FEATURES 17, PHYS32_RELOC 19, 20+, crash and
    dump-core notes);
  * `__xen_guest: string` if such a section exists;
  * `warning: broken ELF: reason` if libelf marked the image broken.
Exit status 0 after that; 1 with stderr "File X is not an ELF image" when
elf_init refuses it (a bzImage payload that is not gzip ends here), or with a
stdout message without newline for a bzImage with a bad setup header.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# The note names readnotes prints, with their type numbers (public/elfnote.h).
STRING_NOTES = {
    "INFO": 0,
    "XEN_VERSION": 5,
    "GUEST_OS": 6,
    "GUEST_VERSION": 7,
    "LOADER": 8,
    "PAE_MODE": 9,
    "FEATURES": 10,
}
NUMERIC_NOTES = {
    "ENTRY": 1,
    "HYPERCALL_PAGE": 2,
    "VIRT_BASE": 3,
    "PADDR_OFFSET": 4,
    "HV_START_LOW": 12,
    "SUSPEND_CANCEL": 14,
    "PHYS32_ENTRY": 18,
}
L1_MFN_VALID = 13

_HEX = r"(0x[0-9a-f]+|0)"
_NUMERIC_RE = re.compile(
    rf"^({'|'.join(NUMERIC_NOTES)}): +{_HEX} \((-?\d+) bytes\)$"
)
_STRING_RE = re.compile(rf"^({'|'.join(STRING_NOTES)}): (.*)$", re.S)
_L1_RE = re.compile(rf"^L1_MFN_VALID: mask={_HEX} value={_HEX}$")
_UNKNOWN_RE = re.compile(rf"^unknown note type {_HEX}$")
_XEN_GUEST_RE = re.compile(r"^__xen_guest: (.*)$", re.S)
_BROKEN_RE = re.compile(r"^warning: broken ELF: (.*)$")
SECTION_FALLBACK_MSG = "using notes from SHT_NOTE section"

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ReadnotesNote:
    """One line readnotes printed for a Xen note.

    kind: "str", "num", "l1_mfn_valid" or "unknown".  value: the string, the
    integer, (mask, value) for L1_MFN_VALID, None for an unknown type.
    descsz: the size readnotes printed for integers (as u32), else None."""

    type: int
    name: str
    kind: str
    value: int | str | tuple[int, int] | None
    descsz: int | None = None

    def to_dict(self) -> dict:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"type": self.type, "name": self.name, "kind": self.kind, "value": value,
                "descsz": self.descsz}


@dataclass(frozen=True)
class ReadnotesResult:
    path: str
    returncode: int | None  # None: killed after the timeout
    notes: tuple[ReadnotesNote, ...] = ()
    from_sections: bool = False  # stderr said "using notes from SHT_NOTE section"
    xen_guest: str | None = None
    broken: str | None = None
    error: str | None = None  # what readnotes said when it failed (stderr or stdout)
    unparsed: tuple[str, ...] = ()  # stdout lines that fit no known shape
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def values(self) -> dict[str, int | str]:
        """{note name -> value} for the named string and integer notes, the last
        printed one winning (the order libelf applies them in)."""
        return {n.name: n.value for n in self.notes if n.kind in ("str", "num")}

    @property
    def l1_mfn_valid(self) -> tuple[int, int] | None:
        """(mask, value) of the last L1_MFN_VALID line, if any."""
        found = [n.value for n in self.notes if n.kind == "l1_mfn_valid"]
        return found[-1] if found else None

    @property
    def unknown_types(self) -> tuple[int, ...]:
        return tuple(n.type for n in self.notes if n.kind == "unknown")

    def to_dict(self) -> dict:
        l1 = self.l1_mfn_valid
        return {
            "path": self.path,
            "returncode": self.returncode,
            "notes": [n.to_dict() for n in self.notes],
            "values": self.values,
            "l1_mfn_valid": None if l1 is None else {"mask": l1[0], "value": l1[1]},
            "unknown_types": list(self.unknown_types),
            "from_sections": self.from_sections,
            "xen_guest": self.xen_guest,
            "broken": self.broken,
            "error": self.error,
            "unparsed": list(self.unparsed),
        }


def _decode(raw: bytes) -> str:
    # Lossless: equal to a plain UTF-8 decode for valid text.
    return raw.decode("utf-8", "surrogateescape")


def parse_output(
    path: str, returncode: int | None, stdout: bytes, stderr: bytes
) -> ReadnotesResult:
    """Turn readnotes' output into a ReadnotesResult (pure; no process).

    A string note holding a newline comes out on several lines; a continuation
    line is glued back to the string before it unless it looks like another
    note line (then the two cannot be told apart, as in readnotes' own output)."""
    out_text, err_text = _decode(stdout), _decode(stderr)
    notes: list[ReadnotesNote] = []
    unparsed: list[str] = []
    xen_guest = broken = None
    lines = out_text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tail = None
    if returncode not in (0, None) and lines and not out_text.endswith("\n"):
        # readnotes' bzImage errors are printf'd without a newline.
        tail = lines.pop()
    for line in lines:
        if m := _NUMERIC_RE.match(line):
            name = m.group(1)
            notes.append(ReadnotesNote(NUMERIC_NOTES[name], name, "num", int(m.group(2), 16),
                                       int(m.group(3)) & 0xFFFFFFFF))
        elif m := _L1_RE.match(line):
            notes.append(ReadnotesNote(L1_MFN_VALID, "L1_MFN_VALID", "l1_mfn_valid",
                                       (int(m.group(1), 16), int(m.group(2), 16))))
        elif m := _UNKNOWN_RE.match(line):
            notes.append(ReadnotesNote(int(m.group(1), 16), "unknown", "unknown", None))
        elif m := _STRING_RE.match(line):
            name = m.group(1)
            notes.append(ReadnotesNote(STRING_NOTES[name], name, "str", m.group(2)))
        elif m := _BROKEN_RE.match(line):
            broken = m.group(1)
        elif m := _XEN_GUEST_RE.match(line):
            xen_guest = m.group(1)
        elif notes and notes[-1].kind == "str" and xen_guest is None and broken is None:
            # A string note with a newline inside: printf put it on several lines.
            last = notes.pop()
            notes.append(ReadnotesNote(last.type, last.name, "str", f"{last.value}\n{line}"))
        elif xen_guest is not None and broken is None:
            xen_guest = f"{xen_guest}\n{line}"
        else:
            unparsed.append(line)
    err_lines = [ln for ln in err_text.split("\n") if ln]
    from_sections = SECTION_FALLBACK_MSG in err_lines
    other_err = [ln for ln in err_lines if ln != SECTION_FALLBACK_MSG]
    error = None
    if returncode is None:
        error = "timeout"
    elif other_err or tail:
        error = "\n".join([*other_err, *([tail] if tail else [])])
    return ReadnotesResult(
        path=path,
        returncode=returncode,
        notes=tuple(notes),
        from_sections=from_sections,
        xen_guest=xen_guest,
        broken=broken,
        error=error,
        unparsed=tuple(unparsed),
        stdout=out_text,
        stderr=err_text,
    )


def run_readnotes(
    image: str | os.PathLike, binary: Path, env: dict[str, str], timeout: float = DEFAULT_TIMEOUT
) -> ReadnotesResult:
    """Run `readnotes IMAGE` and parse what it printed."""
    path = os.fspath(image)
    try:
        proc = subprocess.run(
            [str(binary), path], capture_output=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        return parse_output(path, None, e.stdout or b"", e.stderr or b"")
    rc = proc.returncode
    return parse_output(path, rc, proc.stdout, proc.stderr)
