"""The written images still boot: Debian's Linux 6.1 cloud kernel given a
PHYS32_RELOC note (with --force: its PVH entry is not position independent,
but QEMU ignores the note and loads it at 16 MiB as before), and the 6.12
kernel with its note changed to align 4 MiB, both booted by QEMU's PVH path
(`-kernel` with an ELF: QEMU 7.2 loads an ELF vmlinux only through its PVH
note). The test passes only when the kernel's own "Linux version" line
arrives on the serial console. A control image whose PHYS32_ENTRY was removed
must not boot, which shows the PVH path is the one taken.

Needs qemu-system-x86_64 (Debian: apt-get install qemu-system-x86). Slow:
TCG emulation, a few seconds per boot."""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_writer_support import KERNELS, extracted

from noteforge.image.open import open_image
from noteforge.write import apply as writer

QEMU = shutil.which("qemu-system-x86_64")
BOOT_TIMEOUT = 180.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed"),
    pytest.mark.skipif(not KERNELS.is_dir(), reason="../shared/kernels not present"),
]


def boot(kernel: Path, want: bytes, timeout: float = BOOT_TIMEOUT) -> tuple[bool, bytes]:
    """Boot `kernel` under QEMU (TCG, q35, PVH via -kernel) until `want`
    appears on the serial console or the timeout passes; QEMU is always
    killed. Returns (seen, everything QEMU printed)."""
    cmd = [QEMU, "-accel", "tcg", "-machine", "q35", "-m", "1024", "-kernel", str(kernel),
           "-append", "console=ttyS0 earlyprintk=ttyS0", "-nographic", "-no-reboot",
           "-monitor", "none", "-serial", "stdio", "-display", "none"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    out = b""
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while want not in out and time.monotonic() < deadline:
            if not sel.select(timeout=min(1.0, max(0.0, deadline - time.monotonic()))):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break  # QEMU exited
            out += chunk
        return want in out, out
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("boot")


def test_linux_61_with_a_reloc_note_boots(kernels):
    src = extracted(kernels, "vmlinuz-6.1.0-56-cloud-amd64")
    out = kernels / "vmlinux-6.1-reloc"
    r = writer.set_reloc(src, align=0x200000, min_addr=0x1000000, max_addr=0x3FFFFFFF,
                         output=out, force=True)
    assert r.proof.ok and r.plan.method == writer.METHOD_NEW_SEGMENT
    assert open_image(out).effective.relocatable
    seen, log = boot(out, b"Linux version 6.1.0-56-cloud-amd64")
    assert seen, log[-2000:].decode(errors="replace")


def test_linux_612_with_align_4m_boots(kernels):
    src = extracted(kernels, "vmlinuz-6.12.107+deb12-cloud-amd64")
    out = kernels / "vmlinux-6.12-align4m"
    r = writer.set_reloc(src, align=0x400000, output=out)
    assert r.proof.ok
    assert open_image(out).effective.phys32_reloc.align == 0x400000
    seen, log = boot(out, b"Linux version 6.12.107+deb12-cloud-amd64")
    assert seen, log[-2000:].decode(errors="replace")


def test_without_phys32_entry_qemu_refuses_the_elf(kernels):
    # The control: QEMU boots an ELF vmlinux only through its PVH note, and
    # matches PHYS32_ENTRY by type, so remove-note must change the type too.
    src = extracted(kernels, "vmlinuz-6.1.0-56-cloud-amd64")
    with_note = kernels / "vmlinux-6.1-reloc-control"
    writer.set_reloc(src, align=0x200000, output=with_note, force=True)
    out = kernels / "vmlinux-6.1-no-pvh"
    r = writer.remove_note(with_note, 18, output=out, force=True)
    assert len(r.plan.neutralised) == 2  # the original and the copy in the new segment
    seen, log = boot(out, b"Linux version", timeout=60)
    assert not seen
    assert b"without PVH ELF Note" in log
