"""The log scanner: Linux dmesg (new and old), Xen boot logs (new and old),
hvmloader/SeaBIOS tables and sysfs dumps, in one pass, one regex family per
line, linear in the input."""

from __future__ import annotations

from noteforge.errors import MapError
from noteforge.maps.efi import EFI_HEADER, EFI_ROWISH, efi_row
from noteforge.maps.model import (
    U64_MAX,
    E820Entry,
)
from noteforge.maps.syntax import (
    HVM_ROWISH,
    HVM_TAG,
    HVM_TYPES,
    HVMLOADER_HEADER,
    HVMLOADER_INFO,
    HVMLOADER_ROW,
    LINUX_NEW,
    LINUX_OLD,
    LINUX_ROWISH,
    LINUX_TYPES,
    SEABIOS_HEADER,
    SEABIOS_ROW,
    SYSFS_LINE,
    XEN_CMDLINE,
    XEN_HEADER,
    XEN_PREFIX,
    XEN_ROWISH,
    XEN_VERSION,
    Block,
    quote,
    type_from_name,
    xen_map_row,
)
from noteforge.maps.sysfs import sysfs_entry

# --------------------------------------------------------------------------
# The log scanner: one pass, one regex family per line, linear in the input


class Scanner:
    def __init__(self, source: str, fmt: str | None):
        self.source = source
        self.fmt = fmt
        self.blocks: list[Block] = []
        self.cur: Block | None = None
        self.sysfs: dict[tuple[str, int], dict[str, tuple[int, str]]] = {}
        self.sysfs_first_line = 0
        self.xen_version: str | None = None
        self.xen_command_line: str | None = None

    def _err(self, number: int, line: str, expected: str) -> MapError:
        text = line.strip()
        if len(text) > 160:
            text = text[:157] + "..."
        return MapError(f"{self.source}:{number}: expected {expected}: {quote(text)}")

    def _want(self, fmt: str) -> bool:
        return self.fmt is None or self.fmt == fmt

    def _open(self, name: str | None, fmt: str, number: int, key: str = "") -> Block:
        block = Block(name=name, fmt=fmt, line=number, key=key)
        self.blocks.append(block)
        self.cur = block
        return block

    def close(self) -> None:
        self.cur = None
        for b in self.blocks:
            if b.fmt == "xen-efi" and b.efi:
                # What Xen builds its e820 from on an EFI boot (noteforge.xen.efi).
                from noteforge.xen.efi import efi_to_e820

                b.entries, notes = efi_to_e820(b.efi, map_bs=b.map_bs)
                b.warnings.extend(notes)
        if self.sysfs:
            self.blocks.append(self._sysfs_block())
            self.sysfs = {}

    def feed(self, number: int, line: str) -> None:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        if "(XEN)" in line and self._xen(number, line):
            return
        hvmish = "HVM" in line or "(d" in line or "e820 map has" in line or "E820 table" in line
        if self.cur is not None and self.cur.fmt == "hvmloader":
            hvmish = True  # an unprefixed SeaBIOS/hvmloader table continues
        if hvmish and self._want("hvmloader") and self._hvm(number, line):
            return
        sysfsish = "/start:" in line or "/end:" in line or "/type:" in line
        if sysfsish and self._want("sysfs-memmap") and self._sysfs(number, line):
            return
        if ":" in line and self._linux(number, line):
            return
        # Any other line ends the map being read.
        self.cur = None

    # -- Xen console --------------------------------------------------------

    def _xen(self, number: int, line: str) -> bool:
        m = XEN_PREFIX.search(line)
        if m is None:
            return False
        body = line[m.end():].rstrip("\r\n")
        if "HVM" in body or "(d" in body:
            return False  # a guest's relayed console: hvmloader/SeaBIOS handle it
        if self.xen_version is None and "Xen version" in body:
            vm = XEN_VERSION.search(body)
            if vm:
                self.xen_version = vm.group(1)
        if self.xen_command_line is None and "Command line:" in body:
            cm = XEN_CMDLINE.search(body)
            if cm:
                self.xen_command_line = cm.group(1)
        em = EFI_HEADER.match(body)
        if em:
            if self._want("xen-efi"):
                block = self._open("EFI memory map", "xen-efi", number)
                block.map_bs = em.group(1) is not None
                return True
            self.cur = None
            return False
        if self.cur is not None and self.cur.fmt == "xen-efi":
            d = efi_row(body, number)
            if d is not None:
                # bounded: no firmware has this many; past it lines are only counted
                if len(self.cur.efi) < 64 * 1024:
                    self.cur.efi.append(d)
                else:
                    self.cur.dropped += 1
                return True
            if EFI_ROWISH.match(body):
                raise self._err(number, line, "an EFI memory map line "
                                "'(XEN)  START-LAST type=N attr=HEX'")
            self.cur = None
        hm = XEN_HEADER.match(body)
        if hm:
            if self._want("xen-new") or self._want("xen-old"):
                self._open(hm.group(1), "xen", number)
                return True
            return False
        cur = self.cur
        in_block = cur is not None and cur.fmt.startswith("xen")
        row = xen_map_row(body)
        if row is not None:
            fmt, start, last_or_end, _name, t = row
            if not self._want(fmt):
                self.cur = None
                return True
            if not in_block:
                cur = self._open(None, fmt, number)
            assert cur is not None
            if cur.fmt == "xen":
                cur.fmt = fmt
            if t is None:
                raise self._err(number, line, "a Xen type such as (usable), (reserved) or type N")
            if fmt == "xen-new":
                entry = _inclusive(start, last_or_end, t, self, number, line)
            else:
                entry = _exclusive(start, last_or_end, t, self, number, line)
            if entry is not None:
                cur.add(entry, number)
            return True
        if in_block and XEN_ROWISH.match(body):
            assert cur is not None
            shape = {
                "xen-new": "'(XEN)  [START, END] (type)'",
                "xen-old": "'(XEN)  START - END (type)'",
            }.get(cur.fmt, "'(XEN)  [START, END] (type)' or '(XEN)  START - END (type)'")
            raise self._err(number, line, f"a Xen map line {shape}")
        self.cur = None
        return True

    # -- hvmloader / SeaBIOS ---------------------------------------------------

    def _hvm(self, number: int, line: str) -> bool:
        body = line.rstrip("\r\n")
        m = XEN_PREFIX.search(body)
        if m:
            body = body[m.end():]
        tag = HVM_TAG.search(body)
        key = ""
        if tag:
            key = tag.group(1)
            body = body[tag.end():]
        sh = SEABIOS_HEADER.search(body)
        if sh:
            block = self._open(f"{key.rstrip(':')} e820 map".strip(), "hvmloader", number, key)
            block.expected = _small(sh.group(1))
            block.key = "seabios:" + key
            return True
        if HVMLOADER_HEADER.search(body):
            name = f"{key.rstrip(':')} hvmloader E820 table".strip()
            self._open(name, "hvmloader", number, "hvmloader:" + key)
            return True
        cur = self.cur
        if cur is None or cur.fmt != "hvmloader" or cur.key.split(":", 1)[1] != key:
            return False
        if cur.key.startswith("seabios:"):
            rm = SEABIOS_ROW.match(body)
            if rm:
                start, end = int(rm.group(2), 16), int(rm.group(3), 16)
                t = _small(rm.group(4))
                entry = _exclusive(start, end, t, self, number, line)
                if entry is not None:
                    cur.add(entry, number)
                return True
            if HVM_ROWISH.match(body):
                raise self._err(number, line, "a SeaBIOS e820 line 'N: START - END = TYPE NAME'")
        else:
            rm = HVMLOADER_ROW.match(body)
            if rm:
                start = (int(rm.group(2), 16) << 32) | int(rm.group(3), 16)
                end = (int(rm.group(4), 16) << 32) | int(rm.group(5), 16)
                word = rm.group(6).upper()
                t = int(rm.group(7), 16) if rm.group(7) else HVM_TYPES[word.lower()]
                entry = _exclusive(start, end, t, self, number, line)
                if entry is not None:
                    cur.add(entry, number)
                return True
            info = HVMLOADER_INFO.match(body)
            if info:
                if info.group(1) == "OVERLAP!!":
                    cur.warnings.append(f"line {number}: hvmloader reports an overlap")
                return True
            if HVM_ROWISH.match(body):
                raise self._err(
                    number, line, "an hvmloader E820 line '[NN]: HI:LO - HI:LO: TYPE'"
                )
        self.cur = None
        return True

    # -- /sys/firmware/memmap dump --------------------------------------------

    def _sysfs(self, number: int, line: str) -> bool:
        m = SYSFS_LINE.match(line.strip())
        if m is None:
            return False
        prefix, index, fieldname, value = m.group(1), _small(m.group(2)), m.group(3), m.group(4)
        if prefix and not prefix.endswith("/"):
            return False
        if not self.sysfs:
            self.sysfs_first_line = number
        slot = self.sysfs.setdefault((prefix, index), {})
        if fieldname in slot:
            raise self._err(number, line, f"one {fieldname} per entry {index} (it repeats)")
        slot[fieldname] = (number, value.strip())
        self.cur = None
        return True

    def _sysfs_block(self) -> Block:
        block = Block(name="/sys/firmware/memmap", fmt="sysfs-memmap", line=self.sysfs_first_line)
        for (_prefix, index), fields in sorted(self.sysfs.items(), key=lambda kv: kv[0][1]):
            block.entries.append(sysfs_entry(index, fields, self.source))
        return block

    # -- Linux dmesg ----------------------------------------------------------

    def _linux(self, number: int, line: str) -> bool:
        m = LINUX_ROWISH.search(line)
        if m is None:
            return False
        tag = m.group(1)
        rest = line[m.start(2):].rstrip("\r\n")
        if m.group(2).startswith("[mem"):
            fmt = "linux-new"
            rm = LINUX_NEW.match(rest)
            if rm is None:
                raise self._err(number, line, f"'{tag}: [mem 0xSTART-0xEND] TYPE'")
        else:
            fmt = "linux-old"
            rm = LINUX_OLD.match(rest)
            if rm is None:
                raise self._err(number, line, f"'{tag}: START - END (TYPE)'")
        if not self._want(fmt):
            self.cur = None
            return True
        t = type_from_name(rm.group(3), LINUX_TYPES)
        if t is None:
            raise self._err(
                number, line, "a Linux e820 type (usable, reserved, ACPI data, ACPI NVS, "
                "unusable, persistent (type N), type N)"
            )
        cur = self.cur
        if cur is None or cur.fmt != fmt or cur.key != tag:
            cur = self._open(tag, fmt, number, tag)
        start, second = int(rm.group(1), 16), int(rm.group(2), 16)
        if fmt == "linux-new":
            entry = _inclusive(start, second, t, self, number, line)
        else:
            entry = _exclusive(start, second, t, self, number, line)
        if entry is not None:
            cur.add(entry, number)
        return True


def _inclusive(start: int, last: int, t: int, scan: Scanner, number: int, line: str):
    """[start, last] as printed (Linux new, Xen new, sysfs) -> [start, last + 1)."""
    if start > U64_MAX or last > U64_MAX:
        raise scan._err(number, line, "addresses that fit in 64 bits")
    if last + 1 < start:
        raise scan._err(number, line, "an end address not below the start")
    if last == U64_MAX:
        raise scan._err(number, line, "an end below 2^64 - 1 (start + size overflows 64 bits)")
    if last + 1 == start and scan.cur is not None:  # Linux prints empty as [mem S-(S-1)]
        scan.cur.warnings.append(f"line {number}: empty entry at {start:#x}")
    return E820Entry(start, last + 1, t)


def _exclusive(start: int, end: int, t: int, scan: Scanner, number: int, line: str):
    """[start, end) as printed (Linux old, Xen old, SeaBIOS, hvmloader)."""
    if start > U64_MAX or end > U64_MAX:
        raise scan._err(number, line, "addresses that fit in 64 bits")
    if end < start:
        raise scan._err(number, line, "an end address not below the start")
    if end == start and scan.cur is not None:
        scan.cur.warnings.append(f"line {number}: empty entry at {start:#x}")
    return E820Entry(start, end, t)


def _small(digits: str) -> int:
    """A count, index or type number from a log line: more than 20 digits is
    no such number (kept as 2**64, which every check then refuses), and is
    never handed to int() (4,300-digit limit)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 20 else 1 << 64
