"""Xen 4.17's own ELF parser (libelf, as exported by Debian's libxenguest.so.4.17),
driven through ctypes, as a reference oracle for noteforge.

Calls, in the order Xen's PVH dom0 builder makes them (xen/arch/x86/hvm/dom0_build.c,
pvh_load_kernel): elf_init(&elf, image, size); elf_parse_binary(&elf);
elf_xen_parse(&elf, &parms, hvm).  hvm=True is what Xen does for a PVH dom0 (and
libxenguest for a PVH domU); hvm=False is the PV path.

Every call runs in a separate worker process (this file run as a script), so a
crash inside libxenguest on a hostile image is reported as status "crashed" and
cannot take pytest down; each call is bounded by a timeout (status "timeout").
The worker is kept alive between calls and restarted after a crash or timeout.

Struct layout (x86_64, the tools build of libelf: !__XEN__, so elf_ptrval is a
uintptr_t, every ELF_HANDLE_DECL(x) is an 8-byte union {elf_ptrval; const x *},
and struct elf_binary carries log_callback/log_caller_data).  Source: Xen's
xen/include/xen/libelf.h as of RELEASE-4.17.x; the offsets below were checked
against the machine code of Debian's libxenguest.so.4.17.0
(4.17.7+13-g2445b30a44-0+deb12u1): see docs/libelf-layout.md for the evidence.

struct elf_binary (sizeof 0xa0; elf_init clears 0x10..0xa0):
    0x00 image_base  const void *       0x48 pstart      uint64_t
    0x08 size        size_t             0x50 pend        uint64_t
    0x10 class       char               0x58 reloc_offset uint64_t
    0x11 data        char               0x60 bsd_symtab_pstart uint64_t
    0x18 ehdr        elf_ehdr_handle    0x68 bsd_symtab_pend   uint64_t
    0x20 sec_strtab  elf_ptrval         0x70 caller_xdest_base void *
    0x28 sym_tab     elf_shdr_handle    0x78 caller_xdest_size uint64_t
    0x30 sym_strtab  uint64_t           0x80 log_callback elf_log_callback *
    0x38 dest_base   char *             0x88 log_caller_data void *
    0x40 dest_size   size_t             0x90 verbose     bool
                                        0x98 broken      const char *
  There is no palign in 4.17: elf_parse_binary reads only p_paddr and p_memsz
  (the maximum p_align was added with PHYS32_RELOC in Xen 4.19).

struct elf_dom_parms (sizeof 0x278; XEN_ELFNOTE_MAX = 18 = PHYS32_ENTRY,
XENFEAT_NR_SUBMAPS = 1):
    0x000 guest_info      elf_ptrval
    0x008 elf_note_start  elf_ptrval
    0x010 elf_note_end    elf_ptrval
    0x018 elf_notes[19]   struct xen_elfnote {enum type; const char *name;
                          union {const char *str; uint64_t num;} data}, 24 bytes each
    0x1e0 guest_os[16]  0x1f0 guest_ver[16]  0x200 xen_ver[16]  0x210 loader[16]
    0x220 pae             enum xen_pae_type (NO 0, YES 1, EXTCR3 2, BIMODAL 3)
    0x224 bsd_symtab      bool
    0x225 unmapped_initrd bool
    0x228 virt_base  0x230 virt_entry  0x238 virt_hypercall  0x240 virt_hv_start_low
    0x248 p2m_base   0x250 elf_paddr_offset                  (uint64_t each)
    0x258 f_supported[1]  0x25c f_required[1]  0x260 phys_entry (uint32_t each)
    0x268 virt_kstart  0x270 virt_kend                       (uint64_t each)
  (virt_offset is a local of elf_xen_addr_calc_check since 4.16, not a field.)

elf_xen_parse takes a third argument, bool hvm (added in Xen 4.16).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

UNSET_ADDR = (1 << 64) - 1  # libelf.h UNSET_ADDR, the "not given" value of u64 parms
UNSET_ADDR32 = (1 << 32) - 1  # libelf.h UNSET_ADDR32, phys_entry not given
XEN_ELFNOTE_MAX = 18  # 4.17's elfnote.h: PHYS32_ENTRY is the highest note number
XENFEAT_NR_SUBMAPS = 1
PAE_NAMES = {0: "no", 1: "yes", 2: "extended-cr3", 3: "bimodal"}  # enum xen_pae_type
XEN_ENT_NONE, XEN_ENT_LONG, XEN_ENT_STR = 0, 1, 2

# The names libelf's FEATURES string parser knows (libelf-dominfo.c,
# elf_xen_feature_names[]), by XENFEAT number (xen/include/public/features.h).
LIBELF_FEATURE_NAMES = {
    0: "writable_page_tables",
    1: "writable_descriptor_tables",
    2: "auto_translated_physmap",
    3: "supervisor_mode_kernel",
    4: "pae_pgdir_above_4gb",
    8: "hvm_callback_vector",
    11: "dom0",
}

DEFAULT_TIMEOUT = 30.0

# --- the C layout ----------------------------------------------------------


class ElfBinary(ctypes.Structure):
    _fields_ = [
        ("image_base", ctypes.c_void_p),
        ("size", ctypes.c_size_t),
        ("elf_class", ctypes.c_uint8),  # C name: class
        ("data", ctypes.c_uint8),
        ("ehdr", ctypes.c_void_p),
        ("sec_strtab", ctypes.c_void_p),
        ("sym_tab", ctypes.c_void_p),
        ("sym_strtab", ctypes.c_uint64),
        ("dest_base", ctypes.c_void_p),
        ("dest_size", ctypes.c_size_t),
        ("pstart", ctypes.c_uint64),
        ("pend", ctypes.c_uint64),
        ("reloc_offset", ctypes.c_uint64),
        ("bsd_symtab_pstart", ctypes.c_uint64),
        ("bsd_symtab_pend", ctypes.c_uint64),
        ("caller_xdest_base", ctypes.c_void_p),
        ("caller_xdest_size", ctypes.c_uint64),
        ("log_callback", ctypes.c_void_p),
        ("log_caller_data", ctypes.c_void_p),
        ("verbose", ctypes.c_bool),
        ("broken", ctypes.c_void_p),
    ]


class XenElfnote(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("name", ctypes.c_void_p),
        ("data", ctypes.c_uint64),  # union { const char *str; uint64_t num; }
    ]


class ElfDomParms(ctypes.Structure):
    _fields_ = [
        ("guest_info", ctypes.c_uint64),
        ("elf_note_start", ctypes.c_uint64),
        ("elf_note_end", ctypes.c_uint64),
        ("elf_notes", XenElfnote * (XEN_ELFNOTE_MAX + 1)),
        ("guest_os", ctypes.c_uint8 * 16),
        ("guest_ver", ctypes.c_uint8 * 16),
        ("xen_ver", ctypes.c_uint8 * 16),
        ("loader", ctypes.c_uint8 * 16),
        ("pae", ctypes.c_int),
        ("bsd_symtab", ctypes.c_bool),
        ("unmapped_initrd", ctypes.c_bool),
        ("virt_base", ctypes.c_uint64),
        ("virt_entry", ctypes.c_uint64),
        ("virt_hypercall", ctypes.c_uint64),
        ("virt_hv_start_low", ctypes.c_uint64),
        ("p2m_base", ctypes.c_uint64),
        ("elf_paddr_offset", ctypes.c_uint64),
        ("f_supported", ctypes.c_uint32 * XENFEAT_NR_SUBMAPS),
        ("f_required", ctypes.c_uint32 * XENFEAT_NR_SUBMAPS),
        ("phys_entry", ctypes.c_uint32),
        ("virt_kstart", ctypes.c_uint64),
        ("virt_kend", ctypes.c_uint64),
    ]


# Offsets seen in libxenguest.so.4.17.0's machine code (docs/libelf-layout.md).
# layout_problems() compares the ctypes layout with them.
EXPECTED_LAYOUT = {
    ElfBinary: (
        0xA0,
        {
            "elf_class": 0x10, "data": 0x11, "ehdr": 0x18, "sec_strtab": 0x20,
            "sym_tab": 0x28, "sym_strtab": 0x30, "dest_base": 0x38, "dest_size": 0x40,
            "pstart": 0x48, "pend": 0x50, "bsd_symtab_pstart": 0x60, "bsd_symtab_pend": 0x68,
            "caller_xdest_base": 0x70, "caller_xdest_size": 0x78, "log_callback": 0x80,
            "log_caller_data": 0x88, "verbose": 0x90, "broken": 0x98,
        },
    ),
    ElfDomParms: (
        0x278,
        {
            "guest_info": 0x0, "elf_note_start": 0x8, "elf_note_end": 0x10,
            "elf_notes": 0x18, "guest_os": 0x1E0, "guest_ver": 0x1F0, "xen_ver": 0x200,
            "loader": 0x210, "pae": 0x220, "bsd_symtab": 0x224, "unmapped_initrd": 0x225,
            "virt_base": 0x228, "virt_entry": 0x230, "virt_hypercall": 0x238,
            "virt_hv_start_low": 0x240, "p2m_base": 0x248, "elf_paddr_offset": 0x250,
            "f_supported": 0x258, "f_required": 0x25C, "phys_entry": 0x260,
            "virt_kstart": 0x268, "virt_kend": 0x270,
        },
    ),
    XenElfnote: (0x18, {"type": 0x0, "name": 0x8, "data": 0x10}),
}


def layout_problems() -> list[str]:
    """Differences between the ctypes structs and the offsets recorded above."""
    out = []
    for struct_type, (size, offsets) in EXPECTED_LAYOUT.items():
        got_size = ctypes.sizeof(struct_type)
        if got_size != size:
            out.append(f"sizeof {struct_type.__name__} {got_size:#x} != {size:#x}")
        for name, off in offsets.items():
            got = getattr(struct_type, name).offset
            if got != off:
                out.append(f"{struct_type.__name__}.{name} at {got:#x}, expected {off:#x}")
    return out


# --- the result ------------------------------------------------------------


@dataclass(frozen=True)
class LibelfNote:
    """One slot of parms->elf_notes[]: the last note of that type libelf stored."""

    type: int
    name: str
    kind: str  # "long" | "str"
    value: int | str


@dataclass(frozen=True)
class LibelfResult:
    """What Xen 4.17's libelf made of an image.

    status: "accepted" (elf_xen_parse returned 0), "rejected" (it returned
    non-zero), "not-elf" (elf_init refused the image), "crashed" (the worker
    died, `signal` says how), "timeout".  Integer fields are raw: UNSET_ADDR /
    UNSET_ADDR32 mean "not given", exactly as libelf leaves them; pstart is
    UNSET_ADDR and pend 0 when no PT_LOAD is loadable.  Pointers into the image
    are given as file offsets (None for NULL).  Strings are decoded as UTF-8
    with surrogateescape (lossless).
    """

    path: str
    hvm: bool
    status: str
    init_rc: int | None = None
    parse_rc: int | None = None
    broken: str | None = None  # elf->broken at the end (a broken image can still be accepted)
    broken_after_parse_binary: str | None = None
    errors: tuple[str, ...] = ()  # elf_err() messages, in order
    log: tuple[str, ...] = ()  # every elf_msg()/elf_err() message, in order
    signal: int | None = None
    elf_class: int | None = None  # e_ident[EI_CLASS] as libelf stored it (2 = ELF64)
    elf_data: int | None = None  # e_ident[EI_DATA] (2 = big-endian, which libelf byte-swaps)
    machine: int | None = None  # e_machine and e_entry: read by the oracle from the header
    e_entry: int | None = None  # (class/endianness as libelf saw them), for convenience
    pstart: int | None = None
    pend: int | None = None
    # elf_parse_bsdsyms (libelf-loader.c): the symbol block Xen appends after
    # pend when BSD_SYMTAB is set; both 0 when it is not.
    bsd_symtab_pstart: int | None = None
    bsd_symtab_pend: int | None = None
    guest_os: str | None = None  # the 16-byte fields: at most 15 characters
    guest_ver: str | None = None
    xen_ver: str | None = None
    loader: str | None = None
    pae: int | None = None
    bsd_symtab: bool | None = None
    unmapped_initrd: bool | None = None
    virt_base: int | None = None
    virt_entry: int | None = None
    virt_hypercall: int | None = None
    virt_hv_start_low: int | None = None
    p2m_base: int | None = None
    elf_paddr_offset: int | None = None
    f_supported: int | None = None
    f_required: int | None = None
    phys_entry: int | None = None
    virt_kstart: int | None = None
    virt_kend: int | None = None
    guest_info: int | None = None  # file offset of __xen_guest, PV only
    elf_note_start: int | None = None  # file offsets of the LAST note area scanned
    elf_note_end: int | None = None
    notes: tuple[LibelfNote, ...] = field(default=())

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def pvh(self) -> bool:
        """Accepted and carrying PHYS32_ENTRY: what Xen's PVH dom0 builder requires."""
        return self.accepted and self.phys_entry is not None and self.phys_entry != UNSET_ADDR32

    @property
    def pae_mode(self) -> str | None:
        return None if self.pae is None else PAE_NAMES.get(self.pae, str(self.pae))

    def note(self, type_: int) -> LibelfNote | None:
        for n in self.notes:
            if n.type == type_:
                return n
        return None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = [asdict(n) for n in self.notes]
        d["errors"] = list(self.errors)
        d["log"] = list(self.log)
        d["accepted"] = self.accepted
        d["pvh"] = self.pvh
        d["pae_mode"] = self.pae_mode
        return d


def feature_bits(mask: int) -> list[int]:
    return [b for b in range(32) if mask >> b & 1]


# --- worker side (runs in the child) -----------------------------------------


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _worker_parse(lib, libc, path: str, hvm: bool, verbose: bool) -> dict:
    log: list[str] = []
    errors: list[str] = []

    @ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool,
                      ctypes.c_char_p, ctypes.c_void_p)
    def callback(_elf, _data, iserr, fmt, ap):
        buf = ctypes.create_string_buffer(1024)
        libc.vsnprintf(buf, len(buf), fmt, ap)
        msg = buf.value.decode("utf-8", "surrogateescape").rstrip("\n")
        log.append(msg)
        if iserr:
            errors.append(msg)

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size:
            # A private copy-on-write mapping: libelf only reads, and ctypes
            # needs a writable buffer to take its address without copying.
            mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
            buf = (ctypes.c_char * size).from_buffer(mm)
        else:
            mm = None
            buf = (ctypes.c_char * 1)()
    try:
        base = ctypes.addressof(buf)
        out: dict = {"path": path, "hvm": hvm}
        elf = ElfBinary()
        # Set before elf_init so its "not an ELF binary" message is seen
        # (elf_init clears the struct only once the magic is right).
        elf.log_callback = ctypes.cast(callback, ctypes.c_void_p)
        elf.verbose = verbose
        rc = lib.elf_init(ctypes.byref(elf), buf, ctypes.c_size_t(size))
        out["init_rc"] = rc
        if rc != 0:
            out["status"] = "not-elf"
            out["errors"], out["log"] = errors, log
            return out
        lib.elf_set_log(ctypes.byref(elf), callback, None, verbose)

        def off(ptr: int | None) -> int | None:
            return None if not ptr else ptr - base

        def broken() -> str | None:
            return None if not elf.broken else _cstr(ctypes.string_at(elf.broken))

        lib.elf_parse_binary(ctypes.byref(elf))
        out["broken_after_parse_binary"] = broken()
        parms = ElfDomParms()
        prc = lib.elf_xen_parse(ctypes.byref(elf), ctypes.byref(parms), hvm)
        out["parse_rc"] = prc
        out["status"] = "accepted" if prc == 0 else "rejected"
        out["broken"] = broken()
        out["errors"], out["log"] = errors, log
        is64 = elf.elf_class == 2
        little = elf.data != 2
        ehdr = ctypes.string_at(base, min(size, 64))

        def ehdr_field(offset: int, width: int) -> int | None:
            if len(ehdr) < offset + width:
                return None
            return int.from_bytes(ehdr[offset : offset + width], "little" if little else "big")

        out.update(
            elf_class=elf.elf_class,
            elf_data=elf.data,
            machine=ehdr_field(18, 2),
            e_entry=ehdr_field(24, 8 if is64 else 4),
            pstart=elf.pstart,
            pend=elf.pend,
            bsd_symtab_pstart=elf.bsd_symtab_pstart,
            bsd_symtab_pend=elf.bsd_symtab_pend,
        )
        for name in ("guest_os", "guest_ver", "xen_ver", "loader"):
            out[name] = _cstr(bytes(getattr(parms, name)))
        for name in (
            "pae", "virt_base", "virt_entry", "virt_hypercall", "virt_hv_start_low",
            "p2m_base", "elf_paddr_offset", "phys_entry", "virt_kstart", "virt_kend",
        ):
            out[name] = int(getattr(parms, name))
        out["bsd_symtab"] = bool(parms.bsd_symtab)
        out["unmapped_initrd"] = bool(parms.unmapped_initrd)
        out["f_supported"] = int(parms.f_supported[0])
        out["f_required"] = int(parms.f_required[0])
        out["guest_info"] = off(parms.guest_info)
        out["elf_note_start"] = off(parms.elf_note_start)
        out["elf_note_end"] = off(parms.elf_note_end)
        notes = []
        for t, slot in enumerate(parms.elf_notes):
            if slot.type == XEN_ENT_NONE:
                continue
            name = _cstr(ctypes.string_at(slot.name)) if slot.name else ""
            if slot.type == XEN_ENT_STR:
                value: int | str = _cstr(ctypes.string_at(slot.data)) if slot.data else ""
                kind = "str"
            else:
                value, kind = int(slot.data), "long"
            notes.append({"type": t, "name": name, "kind": kind, "value": value})
        out["notes"] = notes
        return out
    finally:
        del buf
        if mm is not None:
            mm.close()


def _worker_main(libpath: str) -> int:
    lib = ctypes.CDLL(libpath)
    libc = ctypes.CDLL(None)
    libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    lib.elf_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.elf_init.restype = ctypes.c_int
    lib.elf_set_log.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool]
    lib.elf_set_log.restype = None
    lib.elf_parse_binary.argtypes = [ctypes.c_void_p]
    lib.elf_parse_binary.restype = None
    lib.elf_xen_parse.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool]
    lib.elf_xen_parse.restype = ctypes.c_int
    problems = layout_problems()
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        req = json.loads(line)
        # Test hooks for the parent's crash and timeout handling (LibelfOracle._selftest).
        if req.get("selftest") == "abort":
            os.abort()
        if req.get("selftest") == "hang":
            time.sleep(3600)
        if problems:
            reply = {"fatal": "; ".join(problems)}
        else:
            try:
                reply = _worker_parse(lib, libc, req["path"], req["hvm"], req["verbose"])
            except OSError as e:
                reply = {"fatal": f"cannot read {req['path']}: {e}"}
            except Exception as e:  # a bug here, not in libelf: say so instead of dying
                reply = {"fatal": f"worker error on {req['path']}: {e!r}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()
    return 0


# --- parent side -------------------------------------------------------------


class OracleError(RuntimeError):
    """The oracle itself is unusable (tools missing, bad layout, unreadable file)."""


class LibelfOracle:
    """A long-lived worker process running libelf; one request at a time."""

    def __init__(self, libxenguest: Path, env: dict[str, str], timeout: float = DEFAULT_TIMEOUT):
        self.libxenguest = Path(libxenguest)
        self.env = env
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker", str(self.libxenguest)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=self.env,
            )
        return self._proc

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def __enter__(self) -> LibelfOracle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parse(
        self, image: str | os.PathLike | bytes, *, hvm: bool = True, verbose: bool = True,
        timeout: float | None = None,
    ) -> LibelfResult:
        """Run elf_init / elf_parse_binary / elf_xen_parse on a file, or on bytes
        (written to a temporary file first)."""
        if isinstance(image, bytes | bytearray):
            with tempfile.TemporaryDirectory(prefix="xenref-") as tmp:
                path = Path(tmp) / "image"
                path.write_bytes(image)
                result = self._parse_path(str(path), hvm, verbose, timeout)
            return _replace_path(result, "<bytes>")
        return self._parse_path(os.fspath(image), hvm, verbose, timeout)

    def _parse_path(self, path: str, hvm: bool, verbose: bool, timeout: float | None):
        if not Path(path).is_file():
            raise OracleError(f"{path}: not a readable file")
        return self._request({"path": path, "hvm": hvm, "verbose": verbose}, timeout)

    def _selftest(self, kind: str, timeout: float | None = None) -> LibelfResult:
        """Make the worker abort ("abort") or hang ("hang"), to test the handling."""
        return self._request({"selftest": kind, "path": f"<selftest {kind}>", "hvm": True},
                             timeout)

    def _request(self, request: dict, timeout: float | None) -> LibelfResult:
        path, hvm = request["path"], request["hvm"]
        with self._lock:
            proc = self._start()
            req = json.dumps(request).encode() + b"\n"
            try:
                proc.stdin.write(req)
                proc.stdin.flush()
            except BrokenPipeError:
                return self._died(path, hvm)
            line = _read_line(proc.stdout, self.timeout if timeout is None else timeout)
            if line is None:  # timeout: the worker is stuck inside libelf
                proc.kill()
                proc.wait()
                self.close()
                return LibelfResult(path=path, hvm=hvm, status="timeout")
            if not line:
                return self._died(path, hvm)
        reply = json.loads(line)
        if "fatal" in reply:
            raise OracleError(reply["fatal"])
        reply["notes"] = tuple(LibelfNote(**n) for n in reply.get("notes", ()))
        reply["errors"] = tuple(reply.get("errors", ()))
        reply["log"] = tuple(reply.get("log", ()))
        return LibelfResult(**reply)

    def _died(self, path: str, hvm: bool) -> LibelfResult:
        proc = self._proc
        rc = proc.wait() if proc is not None else None
        self.close()
        sig = -rc if rc is not None and rc < 0 else None
        return LibelfResult(path=path, hvm=hvm, status="crashed", signal=sig)


def _replace_path(result: LibelfResult, path: str) -> LibelfResult:
    return replace(result, path=path)


def _read_line(stream, timeout: float) -> bytes | None:
    """One line from the worker; b"" on EOF, None on timeout."""
    fd = stream.fileno()
    chunks = []
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(chunks)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2]))
    sys.exit("usage: libelf.py --worker LIBXENGUEST  (started by LibelfOracle)")
