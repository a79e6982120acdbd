"""Boot Debian's Xen 4.20 with a PVH dom0 under QEMU (TCG) and capture its serial log.

The pieces come from scripts/fetch-debian (Xen, generic kernels, GRUB tools,
QEMU).  A scenario is booted directly (`-kernel xen -initrd kernel`) or, when it
needs holes in the memory map, through a GRUB ISO whose menu entry runs `cutmem`
before `multiboot`.  QEMU is stopped as soon as Xen has said where the kernel
went (the verbose `Dom0 memory map:` block is complete) or that it failed, and
it is always killed: every boot has a hard timeout.

Nothing here parses Xen's lines beyond what is needed to know when to stop;
noteforge.maps.xenlog does the reading.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "scripts" / "fetch-debian"
SHARED_KERNELS = REPO.parent / "shared" / "kernels"

# Xen's command line pieces common to every scenario.  `dom0=pvh,verbose` makes
# Xen print the ELF notes, the move and the Dom0 memory map (`dom0-verbose` is
# silently ignored); QEMU emulates no IOMMU, so dom0 must not ask for one.
XEN_BASE_ARGS = "dom0-iommu=none console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all"
DOM0_ARGS = "console=hvc0 earlyprintk=xen panic=1"
BOOT_TIMEOUT = 90.0  # seconds; a placement is logged within a few seconds of start


class HarnessUnavailable(Exception):
    """The Debian packages or QEMU are not there (and could not be fetched)."""


def cache_dir() -> Path:
    env = os.environ.get("NOTEFORGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "noteforge"


# --------------------------------------------------------------------------- packages


@dataclass(frozen=True)
class Packages:
    xen: Path
    qemu: Path
    grub_mkrescue: Path
    linux_612: Path  # bzImage, trixie generic 6.12 (PHYS32_RELOC, XENFEAT_dom0)
    linux_61: Path  # bzImage, bookworm generic 6.1 (no PHYS32_RELOC)
    versions: dict = field(default_factory=dict)


_PACKAGES: Packages | None = None
FETCH_GROUPS = ("--xen", "--kernels", "--grub", "--qemu")


def may_fetch() -> bool:
    """Download missing packages only in CI or when asked (NOTEFORGE_FETCH=1):
    a plain local pytest run never pulls 200 MB or installs QEMU behind one's back."""
    return bool(os.environ.get("CI")) or os.environ.get("NOTEFORGE_FETCH") == "1"


def packages() -> Packages:
    """The fetched artefacts, from scripts/fetch-debian's cache (run once if allowed)."""
    global _PACKAGES
    if _PACKAGES is not None:
        return _PACKAGES
    try:
        _PACKAGES = _from_manifest(cache_dir() / "manifest.json")
        return _PACKAGES
    except HarnessUnavailable:
        if not may_fetch():
            raise
    r = subprocess.run(
        [sys.executable, str(FETCH), *FETCH_GROUPS, "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if r.returncode != 0:
        raise HarnessUnavailable(f"scripts/fetch-debian failed: {r.stderr.strip()[-400:]}")
    _PACKAGES = _from_manifest(cache_dir() / "manifest.json")
    return _PACKAGES


def _from_manifest(path: Path) -> Packages:
    hint = f"run scripts/fetch-debian {' '.join(FETCH_GROUPS)}"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        raise HarnessUnavailable(f"no fetch-debian manifest at {path} ({hint})") from None
    try:
        p = Packages(
            xen=Path(manifest["xen"]["paths"]["xen"]),
            qemu=Path(manifest["qemu"]["paths"]["qemu"]),
            grub_mkrescue=Path(manifest["grub"]["paths"]["grub-mkrescue"]),
            linux_612=Path(manifest["kernels"]["paths"]["linux-6.12"]),
            linux_61=Path(manifest["kernels"]["paths"]["linux-6.1"]),
            versions={
                g: manifest[g].get("packages", {}) for g in ("xen", "kernels", "grub", "qemu")
            },
        )
    except KeyError as e:
        raise HarnessUnavailable(f"fetch-debian manifest lacks {e} ({hint})") from None
    for f in (p.xen, p.qemu, p.grub_mkrescue, p.linux_612, p.linux_61):
        if not f.exists():
            raise HarnessUnavailable(f"{f} is missing ({hint})")
    return p


# --------------------------------------------------------------------------- kernels


def extract_vmlinux(bzimage: Path, out: Path) -> Path:
    """Decompress a bzImage's payload (the ELF vmlinux) into `out` (once).

    Uses noteforge's own reader (noteforge.image.open.extract_vmlinux) when it is
    there; otherwise reads the setup header (payload_offset 0x248,
    payload_length 0x24c after (setup_sects + 1) * 512 bytes) and decompresses
    zstd or xz, the two codecs Debian's generic amd64 kernels use."""
    if out.exists():
        return out
    try:
        from noteforge.image.open import extract_vmlinux as nf_extract
    except ImportError:
        nf_extract = None
    if nf_extract is not None:
        nf_extract(bzimage, out)
    else:
        tmp = out.with_suffix(".part")
        tmp.write_bytes(_own_extract(bzimage.read_bytes()))
        os.replace(tmp, out)
    with open(out, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise RuntimeError(f"{bzimage}: payload did not decompress to an ELF file")
    return out


def _own_extract(d: bytes) -> bytes:
    setup_sects = d[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", d, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = d[start : start + payload_length]
    size = struct.unpack("<I", payload[-4:])[0]  # Linux appends the decompressed size
    if payload[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(payload[:-4], max_output_size=size)
    if payload[:6] == b"\xfd7zXZ\x00":
        import lzma

        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload[:-4], size)
    raise RuntimeError(f"unsupported bzImage payload magic {payload[:6].hex()}")


def patch_reloc(vmlinux: Path, out: Path, align=None, min_=None, max_=None) -> Path:
    """Copy an ELF64 vmlinux, rewriting words of its existing PHYS32_RELOC note.

    The note's 12-byte desc {align, min, max} is edited in place, so the load
    range and every other byte stay as they were; a word given as None is kept."""
    data = bytearray(vmlinux.read_bytes())
    off = _find_xen_note(data, 19)
    if off is None:
        raise RuntimeError(f"{vmlinux}: no PHYS32_RELOC note")
    desc, descsz = off
    if descsz != 12:
        raise RuntimeError(f"{vmlinux}: PHYS32_RELOC descsz {descsz}, expected 12")
    words = list(struct.unpack_from("<III", data, desc))
    for i, v in enumerate((align, min_, max_)):
        if v is not None:
            words[i] = v
    struct.pack_into("<III", data, desc, *words)
    out.write_bytes(data)
    return out


def set_features(vmlinux: Path, out: Path, value: int) -> Path:
    """Copy an ELF64 vmlinux with its SUPPORTED_FEATURES (type 17) word replaced."""
    data = bytearray(vmlinux.read_bytes())
    off = _find_xen_note(data, 17)
    if off is None:
        raise RuntimeError(f"{vmlinux}: no SUPPORTED_FEATURES note")
    struct.pack_into("<I", data, off[0], value)
    out.write_bytes(data)
    return out


def _find_xen_note(data: bytearray, want: int) -> tuple[int, int] | None:
    """(file offset of desc, descsz) of the first Xen note of type `want` in a PT_NOTE."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise RuntimeError("not an ELF64 file")
    e_phoff = struct.unpack_from("<Q", data, 0x20)[0]
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(e_phnum):
        ph = e_phoff + i * e_phentsize
        p_type = struct.unpack_from("<I", data, ph)[0]
        if p_type != 4:  # PT_NOTE
            continue
        p_offset = struct.unpack_from("<Q", data, ph + 8)[0]
        p_filesz = struct.unpack_from("<Q", data, ph + 32)[0]
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name = bytes(data[pos + 12 : pos + 12 + namesz]).split(b"\0")[0]
            desc = pos + 12 + ((namesz + 3) & ~3)
            if name == b"Xen" and ntype == want:
                return desc, descsz
            pos = desc + ((descsz + 3) & ~3)
    return None


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One boot: which kernel, how much memory, which holes, which dom0_mem."""

    name: str
    kernel: str = "6.12"  # key into kernel_file(): 6.12, 6.12-bz, 6.1, 6.1-bz, reloc:..., ...
    memory_mib: int = 2048
    dom0_mem: str | None = "512M"
    holes_mib: tuple[tuple[int, int], ...] = ()  # GRUB cutmem ranges [start, end) in MiB
    machine: str = "q35"
    verbose: bool = True  # dom0=pvh,verbose (else dom0=pvh)
    extra_xen_args: str = ""  # e.g. console_timestamps=boot

    @property
    def xen_args(self) -> str:
        args = ("dom0=pvh,verbose " if self.verbose else "dom0=pvh ") + XEN_BASE_ARGS
        if self.extra_xen_args:
            args += " " + self.extra_xen_args
        if self.dom0_mem is not None:
            args += f" dom0_mem={self.dom0_mem}"
        return args


def kernel_file(key: str, workdir: Path) -> Path:
    """The dom0 kernel file for a scenario key (built once per workdir).

    6.12 / 6.1: the vmlinux (ELF) of the generic kernels; -bz: the bzImage;
    reloc:A:MIN:MAX: 6.12's vmlinux with PHYS32_RELOC words replaced (hex, '-' keeps);
    features:HEX:KEY: the vmlinux of KEY with SUPPORTED_FEATURES set to HEX;
    nf-reloc:A:MIN:MAX:KEY / nf-note:TYPE:VALUE:KEY: KEY's file rewritten by
    noteforge.write.apply (set_reloc / set_note; a bzImage comes out as a vmlinux);
    cloud-6.12: the cloud vmlinux from ../shared/kernels (no XENFEAT_dom0);
    freebsd-15.1: the real FreeBSD kernel from ../shared/kernels, as it is."""
    pk = packages()
    workdir.mkdir(parents=True, exist_ok=True)
    if key == "6.12-bz":
        return pk.linux_612
    if key == "6.1-bz":
        return pk.linux_61
    if key == "6.12":
        return extract_vmlinux(pk.linux_612, workdir / f"vmlinux-{pk.linux_612.name[8:]}")
    if key == "6.1":
        return extract_vmlinux(pk.linux_61, workdir / f"vmlinux-{pk.linux_61.name[8:]}")
    if key.startswith("reloc:"):
        words = [None if w == "-" else int(w, 16) for w in key.split(":")[1:]]
        out = workdir / ("vmlinux-612-" + key.replace(":", "_"))
        if not out.exists():
            patch_reloc(kernel_file("6.12", workdir), out, *words)
        return out
    if key.startswith("features:"):
        _, value, base = key.split(":", 2)
        out = workdir / f"vmlinux-{base}-features-{value}"
        if not out.exists():
            set_features(kernel_file(base, workdir), out, int(value, 16))
        return out
    if key.startswith("nf-reloc:"):
        # noteforge's own writer (noteforge.write.apply.set_reloc): the end-to-end test of it
        _, a, lo, hi, base = key.split(":", 4)
        out = workdir / ("vmlinux-nf-" + key.replace(":", "_"))
        if not out.exists():
            from noteforge.write.apply import set_reloc

            words = [None if w == "-" else int(w, 16) for w in (a, lo, hi)]
            set_reloc(
                kernel_file(base, workdir),
                align=words[0],
                min_addr=words[1],
                max_addr=words[2],
                # '-' leaves the word out of the note (not "keep the image's word").
                words=sum(1 for _ in itertools.takewhile(lambda w: w is not None, words)),
                output=out,
                # The writer refuses a RELOC note on Linux < 6.12 (its PVH entry is not
                # position independent, so dom0 would crash after a move); here only
                # Xen's placement is watched, and QEMU is stopped before dom0 runs.
                force=True,
            )
        return out
    if key.startswith("nf-note:"):
        _, type_, value, base = key.split(":", 3)
        out = workdir / ("vmlinux-nf-" + key.replace(":", "_"))
        if not out.exists():
            from noteforge.write.apply import set_note

            set_note(kernel_file(base, workdir), int(type_), value, output=out)
        return out
    if key == "freebsd-15.1":
        # FreeBSD 15.1-RELEASE-p1 (../shared/kernels/PROVENANCE.md): BSD_SYMTAB "yes",
        # so Xen loads the symbol block after pend too; not relocatable.
        src = SHARED_KERNELS / "freebsd-15.1-MINIMAL-amd64.kernel"
        if not src.exists():
            raise HarnessUnavailable(f"{src} is missing")
        return src
    if key == "cloud-6.12":
        src = SHARED_KERNELS / "vmlinuz-6.12.107+deb12-cloud-amd64"
        if not src.exists():
            raise HarnessUnavailable(f"{src} is missing")
        return extract_vmlinux(src, workdir / "vmlinux-6.12.107-cloud")
    raise KeyError(key)


def build_iso(scenario: Scenario, kernel: Path, workdir: Path) -> Path:
    """A GRUB rescue ISO that cuts the scenario's holes and boots Xen with the kernel."""
    pk = packages()
    cuts = "".join(f"  cutmem {s}M {e}M\n" for s, e in scenario.holes_mib)
    cfg = (
        "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\n"
        "terminal_output serial\n"
        f"menuentry xen {{\n{cuts}"
        f"  multiboot /boot/xen.elf {scenario.xen_args}\n"
        f"  module /boot/dom0 {DOM0_ARGS}\n"
        "  boot\n}\n"
    )
    key = hashlib.sha256((cfg + str(kernel) + str(pk.xen)).encode()).hexdigest()[:16]
    iso = workdir / f"grub-{scenario.name}-{key}.iso"
    if iso.exists():
        return iso
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".iso-") as tmp:
        tree = Path(tmp) / "tree"
        (tree / "boot" / "grub").mkdir(parents=True)
        (tree / "boot" / "grub" / "grub.cfg").write_text(cfg)
        os.link(pk.xen, tree / "boot" / "xen.elf") if _same_fs(pk.xen, tree) else shutil.copy(
            pk.xen, tree / "boot" / "xen.elf"
        )
        if _same_fs(kernel, tree):
            os.link(kernel, tree / "boot" / "dom0")
        else:
            shutil.copy(kernel, tree / "boot" / "dom0")
        out = Path(tmp) / "out.iso"
        r = subprocess.run(
            [str(pk.grub_mkrescue), "-o", str(out), str(tree)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if r.returncode != 0 or not out.exists():
            raise RuntimeError(f"grub-mkrescue failed: {r.stderr.strip()[-400:]}")
        os.replace(out, iso)
    return iso


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


def qemu_command(
    scenario: Scenario, kernel: Path, workdir: Path, iso: Path | None = None
) -> list[str]:
    """QEMU's argument list; `iso` is the GRUB ISO for scenarios with holes."""
    pk = packages()
    cmd = [
        str(pk.qemu),
        "-accel",
        "tcg",
        # SVM with nested paging under TCG comes with -cpu max; PVH dom0 needs HAP.
        "-machine",
        scenario.machine,
        "-cpu",
        "max",
        "-m",
        str(scenario.memory_mib),
        "-smp",
        "1",
        "-display",
        "none",
        "-vga",
        "none",
        "-nic",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
    ]
    if scenario.holes_mib:
        if iso is None:
            raise ValueError(f"{scenario.name}: holes need a GRUB ISO")
        cmd += ["-cdrom", str(iso), "-boot", "d"]
    else:
        cmd += [
            "-kernel",
            str(pk.xen),
            "-append",
            scenario.xen_args,
            "-initrd",
            f"{kernel} {DOM0_ARGS}",
        ]
    return cmd


# Lines after which nothing more about placement will come.
_FINAL = re.compile(
    r"Reboot in five seconds|Manual reset required|"
    r"\*\*\* Serial input to DOM0|Freed \d+kB init memory|Linux version "
)
_MAP_HEAD = re.compile(r"Dom0 memory map:")
# "(XEN)  [start, end] (type)", possibly after a console timestamp "[    0.904091]".
_MAP_ENTRY = re.compile(r"^\(XEN\)(?: \[[^\],]*\])?\s+\[[0-9a-fA-F]+, [0-9a-fA-F]+\] ")


class _StopWatch:
    """Says when the log holds the placement (or failure) and the complete Dom0 map."""

    def __init__(self) -> None:
        self.in_map = False
        self.panic = False

    def feed(self, line: str) -> bool:
        if self.in_map:
            return not _MAP_ENTRY.match(line)  # first line after the map's entries
        if _MAP_HEAD.search(line):
            self.in_map = True
            return False
        if "Panic on CPU" in line:
            # The reason comes on the next lines: wait for the reboot notice.
            self.panic = True
            return False
        return bool(_FINAL.search(line))


@dataclass(frozen=True)
class BootResult:
    scenario: Scenario
    command: list[str]
    log: str
    seconds: float  # QEMU start to stop
    stopped_early: bool  # True when the stop condition matched (else timeout or QEMU exit)
    returncode: int | None
    error: str | None = None  # the harness failed before or around the boot


def boot(scenario: Scenario, workdir: Path, timeout: float = BOOT_TIMEOUT) -> BootResult:
    """Boot one scenario; return the serial log.  QEMU is always killed."""
    kernel = kernel_file(scenario.kernel, workdir)
    iso = build_iso(scenario, kernel, workdir) if scenario.holes_mib else None
    try:
        return _boot(scenario, qemu_command(scenario, kernel, workdir, iso), workdir, timeout)
    finally:
        if iso is not None:
            iso.unlink(missing_ok=True)  # 65 MB each; rebuilt in a second when needed


def _boot(scenario: Scenario, cmd: list[str], workdir: Path, timeout: float) -> BootResult:
    lines: list[str] = []
    watch = _StopWatch()
    matched = threading.Event()  # Xen said what it did with the kernel
    done = threading.Event()  # matched, or QEMU's output ended
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: killed as a whole, deaf to ^C
    )

    def reader() -> None:
        assert proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # pipe closed under us
            for raw in proc.stdout:
                lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if watch.feed(lines[-1]):
                    matched.set()
                    break
        done.set()

    th = threading.Thread(target=reader, daemon=True)
    try:
        th.start()
        done.wait(timeout)
        seconds = time.monotonic() - t0
    finally:
        # Always: QEMU never outlives the boot, whatever happened above.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        th.join(5)
        if proc.stdout:
            proc.stdout.close()
    text = "\n".join(lines) + "\n"
    (workdir / f"{scenario.name}.log").write_text(text)
    return BootResult(scenario, cmd, text, seconds, matched.is_set(), proc.returncode)


def boot_many(
    scenarios: list[Scenario], workdir: Path, jobs: int | None = None
) -> dict[str, BootResult]:
    """Boot scenarios, two at a time on two cores (TCG runs one thread per vCPU)."""
    for sc in scenarios:  # prepare kernel files once, before the parallel part
        kernel_file(sc.kernel, workdir)
    jobs = jobs or max(1, min(2, os.cpu_count() or 1))

    def one(sc: Scenario) -> BootResult:
        try:
            return boot(sc, workdir)
        except Exception as e:  # one broken scenario must not hide the others' results
            return BootResult(sc, [], "", 0.0, False, None, error=f"{type(e).__name__}: {e}")

    with ThreadPoolExecutor(jobs) as pool:
        return {r.scenario.name: r for r in pool.map(one, scenarios)}
