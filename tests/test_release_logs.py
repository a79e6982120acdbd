"""Real serial logs of Xen 4.17.7 (Debian bookworm), 4.18.6, 4.19.6, 4.21.2 and
4.22.0 (built from their RELEASE tags) and Debian trixie's 4.20.4, each booting the
same four scenarios under QEMU (tests/data/xenlogs/releases/README.md): replayed
with `verify --against-log`, the release read from each log's banner.

Expected values are what each Xen printed (its failure lines, `d0 kernel: Moving`)
and where dom0 Linux found its initrd (`RAMDISK: [mem ...]`), which shows where
find_memory put the metadata block: after the kernel in 4.17/4.18, at 1 MiB from
4.19.0 (b6c7951f23)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from noteforge.cli.app import main

HERE = Path(__file__).resolve().parent
LOGS = HERE / "data" / "xenlogs" / "releases"
SAMPLES = HERE.parent / "samples"
SHARED = HERE.parents[1] / "shared" / "kernels"
# The generic trixie 6.12 these boots used: the synthetic sample carries its notes
# and load range (0x1000000-0x4200000, PHYS32_RELOC, SUPPORTED_FEATURES 0x8801).
GENERIC = SAMPLES / "synthetic-linux-6.12-amd64.elf"
CLOUD = SHARED / "vmlinuz-6.12.107+deb12-cloud-amd64"  # SUPPORTED_FEATURES 0x8001
DOM0_ARGS = "console=hvc0 earlyprintk=xen panic=1"
RAMDISK = re.compile(r"RAMDISK: \[mem (0x[0-9a-f]+)-0x[0-9a-f]+\]")

# release key -> (release noteforge reads from the banner, a-hole32 outcome, c-cloud reason)
RELEASES = {
    "4.17": ("4.17.7", "not-relocatable", None),
    "4.18.6": ("4.18.6", "not-relocatable", None),
    "4.19.6": ("4.19.6", "relocated", None),
    "4.20": ("4.20.4", "relocated", "not-dom0-capable"),
    "4.21.2": ("4.21.2", "relocated", "not-dom0-capable"),
    "4.22.0": ("4.22.0", "relocated", "not-dom0-capable"),
}


def replay(capsys, key: str, scenario: str, *extra: str) -> tuple[int, dict, str]:
    log = LOGS / f"{key}-{scenario}.log"
    meta = json.loads(log.with_suffix(".json").read_text())
    image = CLOUD if "cloud" in meta["kernel"] else GENERIC
    if image == CLOUD and not CLOUD.is_file():
        pytest.skip("../shared not present")
    args = ["verify", str(image), "--e820", str(log), "--against-log", "--json",
            "--cmdline", DOM0_ARGS, *extra]
    if meta["initrd"]:
        # initrd-nf.cpio: 6295356 bytes (README); its module string is its path and
        # 1599 characters, which QEMU's multiboot loader hands over as they are
        args += ["--initrd-size", "6295356", "--initrd-cmdline",
                 "/work/scratch/xenboots/kernels/initrd-nf.cpio " + "x" * 1599]
    rc = main(args)
    return rc, json.loads(capsys.readouterr().out), log.read_text(errors="replace")


@pytest.mark.parametrize("key", RELEASES)
def test_release_is_read_from_the_banner(capsys, key):
    _, d, _ = replay(capsys, key, "b-nohole")
    assert (d["xen_release"], d["xen_release_source"]) == (RELEASES[key][0], "log")
    assert d["against_log"]["status"] == "agree"
    assert d["loads"] and d["kernel"]["base"] == 0x1000000 and not d["kernel"]["relocated"]


@pytest.mark.parametrize("key", RELEASES)
def test_hole_at_32m(capsys, key):
    """cutmem 32M 33M: 4.17/4.18 fail copying the kernel ('Failed to load kernel:
    -1'); 4.19+ move it to [0x1ce00000, 0x1fffffff]."""
    rc, d, text = replay(capsys, key, "a-hole32")
    assert d["against_log"]["status"] == "agree", d["against_log"]
    if RELEASES[key][1] == "relocated":
        assert rc == 0 and d["kernel"]["relocated"]
        assert (d["kernel"]["base"], d["kernel"]["base"] + d["kernel"]["size"]) == (
            0x1CE00000, 0x20000000)
        assert "d0 kernel: Moving [0000000001000000, 00000000041fffff]" in text
    else:
        # with --against-log the status answers the comparison: 0, they agree
        assert rc == 0 and not d["loads"] and d["reason"] == "not-relocatable"
        assert d["message"] == "Failed to load kernel: -1"
        assert "(XEN) Failed to load kernel: -1" in text
        steps = {s["step"]: s["applied"] for s in d["release_steps"]}
        assert steps["kernel load"].startswith("each segment copied at its p_paddr")


@pytest.mark.parametrize("key", RELEASES)
def test_cloud_kernel_without_xenfeat_dom0(capsys, key):
    """Refused by 4.20.4, 4.21.2 and 4.22.0; loaded by 4.17.7, 4.18.6, 4.19.6."""
    rc, d, text = replay(capsys, key, "c-cloud")
    assert d["against_log"]["status"] == "agree", d["against_log"]
    refused = RELEASES[key][2]
    assert d["reason"] == refused and d["dom0_capable"] is False
    assert ("Kernel does not support Dom0 operation" in text) is bool(refused)
    assert rc == 0 and d["loads"] is not bool(refused)  # rc: the comparison agrees


@pytest.mark.parametrize("key", RELEASES)
def test_initrd_goes_where_linux_found_it(capsys, key):
    """A 6295356-byte initrd, no dom0_mem: find_memory of 4.17/4.18 keeps the
    larger side of the kernel (right after it, 0x4200000); 4.19+ the lowest fit
    (1 MiB). Linux's RAMDISK line is the proof."""
    rc, d, text = replay(capsys, key, "d-initrd-default")
    assert rc == 0 and d["against_log"]["status"] == "agree"
    [linux] = RAMDISK.findall(text)
    assert d["modules"]["initrd"]["addr"] == int(linux, 16)
    expected = 0x4200000 if key in ("4.17", "4.18.6") else 0x100000
    assert int(linux, 16) == expected
    # Xen's default dom0 size came from the Dom0 memory map it printed
    assert d["dom0"]["source"].startswith("the Dom0 memory map Xen printed")


def test_an_explicit_release_wins_over_the_banner(capsys):
    rc, d, _ = replay(capsys, "4.17", "c-cloud", "--xen-version", "4.22.0")
    assert (d["xen_release"], d["xen_release_source"]) == ("4.22.0", "flag")
    assert d["reason"] == "not-dom0-capable"
    assert rc == 1 and d["against_log"]["status"] == "disagree"  # 4.17.7 did load it


@pytest.mark.parametrize("key", RELEASES)
def test_the_note_on_a_log_without_elf_lines_names_the_release(capsys, key):
    """4.17/4.18 print no ELF lines for a PVH dom0 even with dom0=pvh,verbose
    (they came with ea3dabfb80, 4.19.0): the note says so, not 'not verbose'."""
    _, d, _ = replay(capsys, key, "b-nohole")
    notes = " ".join(d["against_log"]["notes"])
    if key in ("4.17", "4.18.6"):
        assert f"Xen {RELEASES[key][0]} prints no ELF lines for a PVH dom0" in notes
    else:
        assert "prints no ELF lines" not in notes and "not booted with" not in notes
