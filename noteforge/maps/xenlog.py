"""Read what Xen said about building a PVH dom0 from its boot log.

Input: a serial console capture or `xl dmesg` output, with or without the
`(XEN)` prefix and with or without console timestamps (`console_timestamps=`
gives `[    0.724643]` or a raw `[00000000c968bbab]` counter early in boot).
When a capture mixes Xen's lines with dom0's own console (Linux prints its own
"Command line:" and "Xen version"), only the `(XEN)` lines are read.

What is read (the lines Xen 4.19 .. 4.22 print; see xen/arch/x86/hvm/dom0_build.c
and xen/common/libelf/libelf-dominfo.c):
- the banner `Xen version 4.20.5-pre (Debian 4.20.4+63-...) (...)`;
- Xen's `Command line:` and from it dom0_mem and `dom0=pvh,verbose`;
- with `dom0=pvh,verbose` only: `ELF: memory: S -> E`, `ELF: note: ...`
  (PHYS32_RELOC prints the words its desc carries), the `ELF: addresses:` block's
  `virt_kstart`/`virt_kend` (past pend when BSD_SYMTAB adds a symbol block),
  `d0 kernel: Moving [S, E] -> [S', E']`
  and the `Dom0 memory map:` block, printed after the ACPI tables were carved;
- the failures, which are printed with or without verbose.

The host map (`Xen-e820 RAM map:` and friends) is the e820 readers' job
(noteforge.maps.read), not this module's.  Pure: text in, a frozen XenBootLog out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from noteforge.errors import MapError
from noteforge.maps.model import (
    E820_ACPI,
    PAGE_SIZE,
    E820Entry,
)
from noteforge.maps.syntax import xen_map_row

# Xen's own outcome messages, mapped to noteforge's reasons.  The spelling is
# Xen's ("Failed find a load address" lacks a "to" in 4.19 .. 4.22); the
# corrected spelling is accepted too in case a later release fixes it.
FAILURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"kernel: Address conflict and not relocatable"), "not-relocatable"),
    (re.compile(r"kernel: Failed (?:to )?find a load address"), "no-load-address"),
    (
        re.compile(r"Unable to find a memory region to load initrd and metadata"),
        "no-metadata-space",
    ),
    (re.compile(r"Kernel does not support Dom0 operation"), "not-dom0-capable"),
    (re.compile(r"Unable to copy (?:initrd to guest|module command line|guest command line"
                r"|guest modules|start info to guest)"), "metadata-copy-failed"),
    # Xen 4.17/4.18 have no address check: elf_load_binary's copy fails on the
    # first page of a segment that is not dom0 RAM (noteforge: not-relocatable).
    (re.compile(r"^\s*Failed to load kernel: -1\b"), "not-relocatable"),
    # dom0_mem larger than what is free: pvh_setup_p2m / pvh_populate_memory_range.
    (re.compile(r"Unable to allocate memory with order \d+"), "dom0-alloc-failed"),
)
# A panic whose cause none of the above names.
PANIC_REASON = "xen-panic"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
# Console timestamps Xen may put after "(XEN)": boot-relative seconds, the raw
# early counter, or wall-clock date forms (console_timestamps=date/datems/iso).
_XEN_TS = re.compile(
    r"^ ?\[(?:\s*\d+\.\d+|[0-9a-fA-F]{16}|\d{4}-\d\d-\d\d[ T][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)\]"
)
_XEN_TAG = "(XEN)"

# The banner always continues with "(...)" groups; dom0 Linux's own "Xen version 4.20."
# line does not, which keeps it from splitting an unprefixed log into boots.
_VERSION = re.compile(r"^\s*Xen version (\d+\.\d+\S*)\s+(\(.*)$")
_CMDLINE = re.compile(r"^\s*Command line:\s?(.*)$")
_ELF_MEMORY = re.compile(r"^\s*ELF: memory: (0x[0-9a-fA-F]+|\d+) -> (0x[0-9a-fA-F]+|\d+)")
# elf_xen_addr_calc_check's "ELF: addresses:" block; virt_kend includes the BSD
# symbol block (BSD_SYMTAB, elf_parse_bsdsyms) that "ELF: memory:" leaves out.
_VIRT_K = re.compile(r"^\s*virt_(kstart|kend)\s*= (0x[0-9a-fA-F]+|\d+)\s*$")
_ELF_NOTE = re.compile(r"^\s*ELF: note: (\w+)(?: = (.*)|\s+(.*))?$")
_RELOC_WORD = re.compile(r"(\w+): (0x[0-9a-fA-F]+|\d+)")
_HEX = r"(?:0x)?([0-9a-fA-F]+)"
_MOVING = re.compile(rf"^\s*(\S+) kernel: Moving \[{_HEX}, {_HEX}\] -> \[{_HEX}, {_HEX}\]")
_DOM0_MAP_HEAD = re.compile(r"^\s*Dom0 memory map:\s*$")
_PANIC = re.compile(r"^\s*Panic on CPU \d+:?")
_PVH_BUILD = re.compile(r"\*\*\* Building a PVH Dom0 \*\*\*")
# Lines Xen prints only once dom0 was built (placement done).
_STARTED = re.compile(
    r"\*\*\* Serial input to DOM0|^\s*Freed \d+kB init memory|^\s*Dom0 memory map:"
)


@dataclass(frozen=True)
class LogLine:
    """A line of the log that a field came from: 1-based number and its text."""

    key: str
    number: int
    text: str

    def to_dict(self) -> dict:
        return {"key": self.key, "line": self.number, "text": self.text}


@dataclass(frozen=True)
class Reloc:
    """PHYS32_RELOC words as Xen printed them.

    Xen 4.20 prints only the words the note's desc carries: a full note gives
    `align: .. min: .. max: ..`, a 4-byte one `align: ..` alone, an empty one
    nothing after the name.  A word left out is None here; Xen then uses its
    default (align: p_align, min 0, max 0xffffffff) or an earlier note's word."""

    align: int | None
    min: int | None
    max: int | None

    def to_dict(self) -> dict:
        return {"align": self.align, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class XenBootLog:
    """What one Xen boot log says about dom0's kernel.

    Ranges are half-open (start, end) with end exclusive, as E820Entry; Xen
    prints them inclusive ([S, E]), so end = E + 1.  `outcome` is one of
    "relocated", "in-place", "loaded" (built, but without `dom0=pvh,verbose`
    Xen does not say where), "failed" or "unknown" (the log stops before)."""

    source: str
    xen_version: str | None = None  # "4.20.5-pre", as the banner prints it
    xen_distro: str | None = None  # "Debian", when the banner names a package
    xen_distro_version: str | None = None  # "4.20.4+63-g7abfd2bce2-0+deb13u1"
    xen_banner: str | None = None  # the whole banner after "Xen version "
    command_line: str | None = None
    dom0_mem: str | None = None  # the text after the last dom0_mem=
    dom0_pvh: bool = False
    dom0_verbose: bool = False
    pvh_build: bool = False  # "*** Building a PVH Dom0 ***" was printed
    elf_memory: tuple[int, int] | None = None  # (pstart, pend) from "ELF: memory:"
    # (virt_kstart, virt_kend) from "ELF: addresses:": for a PVH kernel (virt_base
    # 0) the physical range Xen loads, the BSD symbol block included.
    elf_addresses: tuple[int, int] | None = None
    elf_notes: tuple[tuple[str, str], ...] = ()  # ("PHYS32_ENTRY", "0x1000b20"), ...
    phys32_reloc: Reloc | None = None
    outcome: str = "unknown"
    moved_from: tuple[int, int] | None = None
    moved_to: tuple[int, int] | None = None
    reason: str | None = None
    failure_message: str | None = None
    panic_message: str | None = None
    dom0_map: tuple[E820Entry, ...] | None = None
    boots: int = 0  # Xen banners seen; the last boot is the one read
    lines: tuple[LogLine, ...] = field(default=())

    # -- derived values -------------------------------------------------------
    @property
    def loads(self) -> bool | None:
        if self.outcome in ("relocated", "in-place", "loaded"):
            return True
        if self.outcome == "failed":
            return False
        return None

    @property
    def image_range(self) -> tuple[int, int] | None:
        """What Xen loads at its address: pstart to virt_kend when Xen printed
        both (virt_kend is past pend when it copies a BSD symbol table), else
        "ELF: memory:"."""
        if self.elf_memory is None:
            return None
        if self.elf_addresses is not None and self.elf_addresses[0] == self.elf_memory[0]:
            return (self.elf_memory[0], max(self.elf_memory[1], self.elf_addresses[1]))
        return self.elf_memory

    @property
    def kernel_range(self) -> tuple[int, int] | None:
        """Where the kernel ended up, when the log says (verbose logs only)."""
        if self.outcome == "relocated":
            return self.moved_to
        if self.outcome == "in-place":
            return self.image_range
        return None

    @property
    def version_tuple(self) -> tuple[int, int] | None:
        if not self.xen_version:
            return None
        m = re.match(r"(\d+)\.(\d+)", self.xen_version)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def note(self, name: str) -> str | None:
        """The last printed value of an `ELF: note: NAME = value` line."""
        found = None
        for n, v in self.elf_notes:
            if n == name:
                found = v
        return found

    @property
    def supported_features(self) -> int | None:
        v = self.note("SUPPORTED_FEATURES")
        return _int(v) if v is not None else None

    def line(self, key: str) -> LogLine | None:
        for ln in self.lines:
            if ln.key == key:
                return ln
        return None

    def dom0_nr_pages(self, host_entries: Iterable[E820Entry] | None = None) -> int | None:
        """dom0's page count, from the printed Dom0 memory map.

        pvh_setup_e820 hands dom0 whole pages of RAM; pvh_setup_acpi later
        carves the MADT/XSDT/RSDP out of the top of a RAM entry and marks them
        ACPI data, so those bytes are counted back.  With the host map, the
        carved bytes are the dom0 ACPI entries lying in host RAM; without it,
        they are the ACPI entries that continue a RAM entry ending off a page
        boundary (the tables are smaller than a page) up to a page boundary."""
        if self.dom0_map is None:
            return None
        entries = self.dom0_map
        ram = sum(e.size for e in entries if e.is_ram)
        carved = 0
        if host_entries is not None:
            host_ram = [h for h in host_entries if h.is_ram]
            for e in entries:
                if e.type != E820_ACPI:
                    continue
                for h in host_ram:
                    lo, hi = max(e.start, h.start), min(e.end, h.end)
                    if lo < hi:
                        carved += hi - lo
        else:
            i = 0
            while i < len(entries):
                e = entries[i]
                i += 1
                if not e.is_ram or e.end % PAGE_SIZE == 0:
                    continue
                pos, chain = e.end, 0
                j = i
                while j < len(entries) and entries[j].type == E820_ACPI and entries[j].start == pos:
                    chain += entries[j].size
                    pos = entries[j].end
                    j += 1
                    if pos % PAGE_SIZE == 0:
                        carved += chain
                        break
        return (ram + carved) // PAGE_SIZE

    def to_dict(self) -> dict:
        rng = _range_dict
        return {
            "source": self.source,
            "xen_version": self.xen_version,
            "xen_distro": self.xen_distro,
            "xen_distro_version": self.xen_distro_version,
            "command_line": self.command_line,
            "dom0_mem": self.dom0_mem,
            "dom0_pvh": self.dom0_pvh,
            "dom0_verbose": self.dom0_verbose,
            "pvh_build": self.pvh_build,
            "elf_memory": rng(self.elf_memory),
            "elf_addresses": rng(self.elf_addresses),
            "elf_notes": [{"name": n, "value": v} for n, v in self.elf_notes],
            "phys32_reloc": self.phys32_reloc.to_dict() if self.phys32_reloc else None,
            "outcome": self.outcome,
            "loads": self.loads,
            "reason": self.reason,
            "moved_from": rng(self.moved_from),
            "moved_to": rng(self.moved_to),
            "kernel": rng(self.kernel_range),
            "failure_message": self.failure_message,
            "panic_message": self.panic_message,
            "dom0_map": None if self.dom0_map is None else [e.to_dict() for e in self.dom0_map],
            "dom0_pages": self.dom0_nr_pages(),
            "boots": self.boots,
            "lines": [ln.to_dict() for ln in self.lines],
        }


def _range_dict(r: tuple[int, int] | None) -> dict | None:
    return None if r is None else {"start": r[0], "end": r[1]}


def _int(text: str) -> int | None:
    try:
        return int(text.strip().strip('"'), 0)
    except ValueError:
        return None


# --------------------------------------------------------------------------- reading


def read_log(path: str | Path) -> XenBootLog:
    """Parse a Xen boot log file (bounded: logs are read as text, errors replaced)."""
    p = Path(path)
    from noteforge.maps.source import decode_text, read_bounded

    try:
        data = read_bounded(p, what="a Xen log")
    except MapError as err:
        raise MapError(str(err).replace(": cannot read:", ": cannot read the Xen log:")) from None
    return parse_log(decode_text(data, str(p)), source=str(p))


def message_lines(text: str) -> list[tuple[int, str]]:
    """(line number, Xen message) pairs with console prefixes removed.

    If any line carries `(XEN)`, only such lines are Xen's; otherwise every
    line is taken (a log whose prefixes were already stripped)."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    tagged = any(_XEN_TAG in ln for ln in raw)
    out: list[tuple[int, str]] = []
    for number, ln in enumerate(raw, 1):
        ln = _ANSI.sub("", ln).rstrip()
        if tagged:
            pos = ln.find(_XEN_TAG)
            if pos < 0:
                continue
            msg = ln[pos + len(_XEN_TAG) :]
        else:
            msg = ln
        m = _XEN_TS.match(msg)
        if m:
            msg = msg[m.end() :]
        # Xen writes "(XEN) " then the message; map entries keep their own indent.
        if msg.startswith(" "):
            msg = msg[1:]
        out.append((number, msg))
    return out


def parse_log(text: str, source: str = "<log>") -> XenBootLog:
    """Parse the text of a Xen boot log; the last boot in it is the one read."""
    msgs = message_lines(text)
    starts = [i for i, (_, m) in enumerate(msgs) if _VERSION.match(m)]
    boots = len(starts)
    if starts:
        msgs = msgs[starts[-1] :]

    f: dict = {"source": source, "boots": boots}
    used: list[LogLine] = []
    notes: list[tuple[str, str]] = []
    addrs: dict[str, int] = {}
    dom0_map: list[E820Entry] | None = None
    in_map = False
    started = False
    panic_next = False

    def use(key: str, number: int, msg: str) -> None:
        used.append(LogLine(key, number, msg.strip()))

    for number, msg in msgs:
        if in_map:
            entry = _map_entry(msg, number, source)
            if entry is not None:
                assert dom0_map is not None
                dom0_map.append(entry)
                use("dom0_map", number, msg)
                continue
            in_map = False
        if panic_next:
            body = msg.strip()
            if body and not body.startswith("****"):
                f["panic_message"] = body
                use("panic_message", number, msg)
                panic_next = False
            continue
        m = _VERSION.match(msg)
        if m and "xen_version" not in f:
            f["xen_version"] = m.group(1)
            f["xen_banner"] = (m.group(1) + " " + m.group(2)).strip()
            d = re.match(r"\(([A-Za-z][\w.-]*) (\d[^\s()]*)\)", m.group(2))
            if d:
                f["xen_distro"], f["xen_distro_version"] = d.group(1), d.group(2)
            use("xen_version", number, msg)
            continue
        m = _CMDLINE.match(msg)
        if m and "command_line" not in f:
            f["command_line"] = m.group(1).strip()
            use("command_line", number, msg)
            continue
        if _PVH_BUILD.search(msg):
            f["pvh_build"] = True
            use("pvh_build", number, msg)
            continue
        m = _ELF_MEMORY.match(msg)
        if m:
            f["elf_memory"] = (int(m.group(1), 0), int(m.group(2), 0))
            use("elf_memory", number, msg)
            continue
        m = _VIRT_K.match(msg)
        if m and "elf_memory" in f:
            addrs[m.group(1)] = int(m.group(2), 0)
            if len(addrs) == 2:
                f["elf_addresses"] = (addrs["kstart"], addrs["kend"])
            use("elf_addresses", number, msg)
            continue
        m = _ELF_NOTE.match(msg)
        if m:
            name = m.group(1)
            value = (m.group(2) if m.group(2) is not None else m.group(3) or "").strip()
            notes.append((name, value))
            if name == "PHYS32_RELOC":
                words = {k: int(v, 0) for k, v in _RELOC_WORD.findall(value)}
                f["phys32_reloc"] = Reloc(words.get("align"), words.get("min"), words.get("max"))
                use("phys32_reloc", number, msg)
            continue
        m = _MOVING.match(msg)
        if m:
            a, b, c, d2 = (int(g, 16) for g in m.groups()[1:])
            f["moved_from"], f["moved_to"] = (a, b + 1), (c, d2 + 1)
            use("moved", number, msg)
            continue
        if _DOM0_MAP_HEAD.match(msg):
            dom0_map, in_map = [], True
            started = True
            use("dom0_map_head", number, msg)
            continue
        if "reason" not in f:
            for pattern, reason in FAILURES:
                if pattern.search(msg):
                    f["reason"], f["failure_message"] = reason, msg.strip()
                    use("failure", number, msg)
                    break
        if _PANIC.match(msg):
            use("panic", number, msg)
            panic_next = True
            continue
        if _STARTED.search(msg):
            started = True

    if dom0_map is not None:
        f["dom0_map"] = tuple(dom0_map)
    f["elf_notes"] = tuple(notes)
    f["lines"] = tuple(used)

    cmd = f.get("command_line")
    if cmd is not None:
        f["dom0_mem"] = _last_option(cmd, "dom0_mem")
        f["dom0_pvh"], verbose = _dom0_option(cmd)
    else:
        verbose = False
    # A log whose command line scrolled away (xl dmesg's ring) still shows
    # verbose output by its ELF lines.
    f["dom0_verbose"] = verbose or "elf_memory" in f or bool(notes)
    if f.get("pvh_build") or "elf_memory" in f:
        f["dom0_pvh"] = True

    if "reason" not in f and "panic_message" in f:
        f["reason"] = PANIC_REASON
        f["failure_message"] = f["panic_message"]
    if "reason" in f:
        f["outcome"] = "failed"
    elif "moved_to" in f:
        f["outcome"] = "relocated"
    elif started:
        f["outcome"] = "in-place" if f["dom0_verbose"] and "elf_memory" in f else "loaded"
    else:
        f["outcome"] = "unknown"
    return XenBootLog(**f)


def _map_entry(msg: str, number: int, source: str) -> E820Entry | None:
    """One line of an e820 block as Xen prints it, or None when it is not one."""
    row = xen_map_row(msg)
    if row is None:
        return None
    fmt, start, end, name, type_ = row
    if fmt == "xen-new":  # [S, E] with E inclusive; Xen <= 4.16 prints "S - E", E exclusive
        end += 1
    if type_ is None:
        raise MapError(
            f"{source}: line {number}: unknown e820 type {name.strip('() ')!r} in the Dom0 "
            "memory map (expected usable, reserved, ACPI data, ACPI NVS, unusable or 'type N')"
        )
    if end < start:
        raise MapError(f"{source}: line {number}: Dom0 memory map entry ends before it starts")
    return E820Entry(start, end, type_)


def _options(cmdline: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for tok in cmdline.split():
        if tok == "--":  # Xen stops at "--" (what follows is for dom0 on some loaders)
            break
        name, eq, value = tok.partition("=")
        out.append((name.replace("-", "_"), value if eq else None))
    return out


def _last_option(cmdline: str, name: str) -> str | None:
    value = None
    for n, v in _options(cmdline):
        if n == name and v is not None:
            value = v
    return value


_TRUE = {"1", "yes", "true", "on", "enable"}
_FALSE = {"0", "no", "false", "off", "disable"}


def _dom0_option(cmdline: str) -> tuple[bool, bool]:
    """(pvh, verbose) from `dom0=` options, later ones winning, as Xen's
    parse_dom0_param reads its comma list with parse_boolean."""
    pvh = verbose = False
    for n, v in _options(cmdline):
        if n == "dom0pvh" and v is None:  # the old boolean spelling
            pvh = True
        if n != "dom0" or v is None:
            continue
        for item in v.split(","):
            for key in ("pvh", "verbose"):
                state = _boolean(item, key)
                if state is not None:
                    if key == "pvh":
                        pvh = state
                    else:
                        verbose = state
    return pvh, verbose


def _boolean(item: str, name: str) -> bool | None:
    if item == name:
        return True
    if item == "no-" + name:
        return False
    if item.startswith(name + "="):
        value = item[len(name) + 1 :].lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    return None
