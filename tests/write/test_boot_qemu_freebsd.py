"""QEMU's PVH loader (`-kernel` with an ELF, QEMU 7.2) on the real FreeBSD 15.1
kernel: it reads the PHYS32_ENTRY note, loads the segments at their p_paddr
and enters at 0x7a1000 with EBX pointing at a start_info whose magic is
XEN_HVM_START_MAGIC_VALUE (0x336ec578), checked with gdb on QEMU's gdbstub.

FreeBSD does not get further than that under QEMU's PVH loader: its early
console probe calls xen_delay, which reads HYPERVISOR_shared_info, NULL
outside Xen, so it faults before any console exists (gdb backtrace:
xen_delay <- vga_initialize <- cninit <- hammer_time <- start_kernel). So
this proves the entry, not a banner.

A FreeBSD 13.x-shaped copy (Xen notes only in a non-allocated section) has no
note QEMU can see and is refused; after the writer re-points its PT_NOTE at
copies of the section's notes (set-reloc --force), QEMU enters it the same way.

Needs qemu-system-x86_64 and gdb. Slow-marked: QEMU boots."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from test_writer_freebsd import KERNEL, freebsd13

from noteforge.write import apply as writer

QEMU = shutil.which("qemu-system-x86_64")
GDB = shutil.which("gdb")
ENTRY = 0x7A1000
START_MAGIC = 0x336EC578  # XEN_HVM_START_MAGIC_VALUE, xen/include/public/arch-x86/hvm/start_info.h

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed"),
    pytest.mark.skipif(GDB is None, reason="gdb not installed"),
    pytest.mark.skipif(not KERNEL.is_file(), reason=f"{KERNEL} not present"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _qemu(kernel: Path, *extra: str) -> list[str]:
    return [QEMU, "-accel", "tcg", "-machine", "q35", "-m", "512", "-kernel", str(kernel),
            "-display", "none", "-monitor", "none", "-serial", "null", "-no-reboot", *extra]


def entry_state(kernel: Path) -> dict[str, int]:
    """Run QEMU stopped (-S) with a gdbstub, break at the PVH entry, and read
    RIP, EBX, the start_info magic at [EBX] and the first entry bytes. QEMU is
    always killed."""
    port = _free_port()
    proc = subprocess.Popen(_qemu(kernel, "-S", "-gdb", f"tcp:127.0.0.1:{port}"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out = ""
        for _ in range(20):  # until QEMU's gdbstub listens
            r = subprocess.run(
                [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                 "-ex", "set architecture i386:x86-64",
                 "-ex", f"target remote 127.0.0.1:{port}", "-ex", f"hbreak *{ENTRY:#x}",
                 "-ex", "continue", "-ex", "printf \"rip=%lx\\n\", $rip",
                 "-ex", "printf \"ebx=%lx\\n\", $rbx",
                 "-ex", "printf \"magic=%x\\n\", *(unsigned int *)$rbx",
                 "-ex", f"printf \"code=%x\\n\", *(unsigned int *){ENTRY:#x}"],
                capture_output=True, text=True, timeout=120)
            out = r.stdout + r.stderr
            if "Connection refused" not in out:
                break
            time.sleep(0.5)
        values = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep and key in ("rip", "ebx", "magic", "code"):
                values[key] = int(value, 16)
        assert set(values) == {"rip", "ebx", "magic", "code"}, out
        return values
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def _code_at_entry(data: bytes) -> int:
    # The second PT_LOAD: p_offset 0xbe4a0 at p_paddr 0x2be4a0.
    off = 0xBE4A0 + (ENTRY - 0x2BE4A0)
    return int.from_bytes(data[off : off + 4], "little")


def test_qemu_enters_freebsd_at_its_phys32_entry():
    state = entry_state(KERNEL)
    assert state["rip"] == ENTRY
    assert state["magic"] == START_MAGIC  # EBX -> hvm_start_info
    # QEMU copied the second PT_LOAD to its p_paddr: the entry code is the file's.
    assert state["code"] == _code_at_entry(KERNEL.read_bytes()) == 0xC9F022B8


def test_qemu_refuses_the_13x_shape_and_enters_it_once_repointed(tmp_path):
    shaped = tmp_path / "fbsd13.kernel"
    shaped.write_bytes(freebsd13(KERNEL.read_bytes()))
    r = subprocess.run(_qemu(shaped), capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "Error loading uncompressed kernel without PVH ELF Note" in r.stderr
    out = tmp_path / "fbsd13-reloc.kernel"
    assert writer.set_reloc(shaped, output=out, force=True).proof.ok
    state = entry_state(out)
    assert (state["rip"], state["magic"]) == (ENTRY, START_MAGIC)
