"""The real-Xen scenario table: each boot and what Debian's Xen 4.20 did.

The `xen` column is what Xen 4.20.4 (Debian 4.20.4+63-g7abfd2bce2-0+deb13u1)
printed when booted under QEMU 7.2 TCG (q35, -cpu max) on this project's CI
machines; every value was read from the serial logs of those boots (ranges are
half-open: Xen's printed inclusive end + 1).  The test suite boots each
scenario again and asserts that noteforge.maps.xenlog reads exactly these values.

Kernels: "6.12" is trixie's generic linux-image-6.12.*-amd64 vmlinux (load
range 0x1000000-0x4200000, 50 MiB, PHYS32_RELOC {0x200000, 0x1000000,
0x3fffffff}, XENFEAT_dom0 set); "6.1" is bookworm's generic 6.1 vmlinux
(0x1000000-0x4a00000, no PHYS32_RELOC); "-bz" the bzImage itself; "reloc:A:MIN:MAX"
the 6.12 vmlinux with its PHYS32_RELOC words rewritten in place ('-' keeps);
"nf-reloc:A:MIN:MAX:KEY" / "nf-note:TYPE:VALUE:KEY" KEY's file rewritten by
noteforge.write.apply ('-' leaves a word out of the note);
"cloud-6.12" the cloud vmlinux from ../shared/kernels (SUPPORTED_FEATURES
0x8001, no XENFEAT_dom0); "features:8801:cloud-6.12" that one with bit 11 set.
Holes are cut by GRUB's `cutmem START END` (MiB, END exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass

from .harness import Scenario


@dataclass(frozen=True)
class XenResult:
    outcome: str  # relocated | in-place | loaded | failed
    reason: str | None = None
    kernel: tuple[int, int] | None = None  # where the kernel went, [start, end)
    dom0_pages: int | None = None  # from the verbose Dom0 memory map


MIB = 1 << 20
K612 = (0x1000000, 0x4200000)  # 6.12 in place
K61 = (0x1000000, 0x4A00000)  # 6.1 in place
TOP_512M = (0x1CE00000, 0x20000000)  # 6.12 relocated below the end of dom0's 512 MiB
P512 = 512 * MIB // 4096
FREEBSD = (0x200000, 0x11AE160)  # pstart to virt_kend (ELF range plus BSD symbols)

HOLE32 = ((32, 33),)

SCENARIOS: tuple[tuple[Scenario, XenResult], ...] = (
    # --- 1 MiB holes under the 6.12 kernel's default range, dom0_mem=512M
    (Scenario("base-512M"), XenResult("in-place", None, K612, P512)),
    (Scenario("hole16", holes_mib=((16, 17),)), XenResult("relocated", None, TOP_512M, P512)),
    (Scenario("hole32", holes_mib=HOLE32), XenResult("relocated", None, TOP_512M, P512)),
    (Scenario("hole65", holes_mib=((65, 66),)), XenResult("relocated", None, TOP_512M, P512)),
    (Scenario("hole66", holes_mib=((66, 67),)), XenResult("in-place", None, K612, P512)),
    # --- the bzImage as the dom0 module (Xen decompresses it itself)
    (
        Scenario("hole32-bzimage", kernel="6.12-bz", holes_mib=HOLE32),
        XenResult("relocated", None, TOP_512M, P512),
    ),
    # --- dom0_mem: the relocation search stays inside dom0's own RAM
    (
        Scenario("hole32-100M", dom0_mem="100M", holes_mib=HOLE32),
        XenResult("relocated", None, (0x3200000, 0x6400000), 100 * MIB // 4096),
    ),
    (
        Scenario("hole32-80M", dom0_mem="80M", holes_mib=HOLE32),
        XenResult("failed", "no-load-address"),
    ),
    (
        Scenario("hole32-64M", dom0_mem="64M", holes_mib=HOLE32),
        XenResult("failed", "no-load-address"),
    ),
    (Scenario("nohole-80M", dom0_mem="80M"), XenResult("in-place", None, K612, 80 * MIB // 4096)),
    (Scenario("nohole-64M", dom0_mem="64M"), XenResult("failed", "no-load-address")),
    # --- no dom0_mem on a 4 GiB guest: Xen's default size
    (
        Scenario("m4096-default-hole32", memory_mib=4096, dom0_mem=None, holes_mib=HOLE32),
        XenResult("relocated", None, (0x3CE00000, 0x40000000), 999618),
    ),
    # --- Linux 6.1: no PHYS32_RELOC, so any conflict is fatal
    (Scenario("linux61", kernel="6.1"), XenResult("in-place", None, K61, P512)),
    (Scenario("linux61-bzimage", kernel="6.1-bz"), XenResult("in-place", None, K61, P512)),
    (
        Scenario("linux61-hole32", kernel="6.1", holes_mib=HOLE32),
        XenResult("failed", "not-relocatable"),
    ),
    # --- PHYS32_RELOC rewritten in a copy of the 6.12 vmlinux
    (
        Scenario("reloc-align4M-hole32", kernel="reloc:400000:-:-", holes_mib=HOLE32),
        XenResult("relocated", None, (0x1CC00000, 0x1FE00000), P512),
    ),
    (
        Scenario("reloc-max384M-hole32", kernel="reloc:-:-:17ffffff", holes_mib=HOLE32),
        XenResult("relocated", None, (0x14E00000, 0x18000000), P512),
    ),
    (
        # Not a power of two: Xen masks with ~(align - 1), giving 0x1cd00000.
        Scenario("reloc-align3M-hole32", kernel="reloc:300000:-:-", holes_mib=HOLE32),
        XenResult("relocated", None, (0x1CD00000, 0x1FF00000), P512),
    ),
    (
        Scenario("reloc-align0-hole32", kernel="reloc:0:-:-", holes_mib=HOLE32),
        XenResult("failed", "no-load-address"),
    ),
    # --- the same kind of files written by noteforge's own writer (noteforge.write.apply)
    (
        # a later 4-byte note carrying only the alignment; Xen prints just that word
        Scenario("writer-612-align4M-hole32", kernel="nf-reloc:400000:-:-:6.12", holes_mib=HOLE32),
        XenResult("relocated", None, (0x1CC00000, 0x1FE00000), P512),
    ),
    (
        # Linux 6.1 made relocatable (forced: its PVH entry is not position independent)
        Scenario(
            "writer-61bz-reloc-hole32",
            kernel="nf-reloc:200000:1000000:3fffffff:6.1-bz",
            holes_mib=HOLE32,
        ),
        XenResult("relocated", None, (0x1C600000, 0x20000000), P512),
    ),
    (
        # an empty PHYS32_RELOC: "relocatable" with Xen's defaults (p_align, 0, 4 GiB)
        Scenario("writer-61-reloc-empty-hole32", kernel="nf-reloc:-:-:-:6.1", holes_mib=HOLE32),
        XenResult("relocated", None, (0x1C600000, 0x20000000), P512),
    ),
    (
        Scenario("writer-cloud-dom0-bit", kernel="nf-note:17:0x8801:cloud-6.12"),
        XenResult("in-place", None, K612, P512),
    ),
    # --- low RAM only 62/66 MiB (QEMU's max-ram-below-4g), the rest above 4 GiB
    (
        Scenario("low62", machine="pc,max-ram-below-4g=62M"),
        XenResult("failed", "no-load-address"),
    ),
    (
        Scenario("low66", machine="pc,max-ram-below-4g=66M"),
        XenResult("failed", "no-load-address"),
    ),
    (
        Scenario("low66-min0", kernel="reloc:-:0:-", machine="pc,max-ram-below-4g=66M"),
        XenResult("relocated", None, (0xE00000, 0x4000000), P512),
    ),
    # --- start_info/cmdline need RAM outside the kernel: none left (1-16 MiB cut,
    #     dom0 = 159 low pages + exactly the kernel's 50 MiB), then one page more
    (
        Scenario("metadata-none", dom0_mem="51836K", holes_mib=((1, 16),)),
        XenResult("failed", "no-metadata-space"),
    ),
    (
        Scenario("metadata-one-page", dom0_mem="51840K", holes_mib=((1, 16),)),
        XenResult("in-place", None, K612, 12960),
    ),
    # --- dom0 capability (XENFEAT_dom0 in SUPPORTED_FEATURES)
    (Scenario("cloud-not-dom0", kernel="cloud-6.12"), XenResult("failed", "not-dom0-capable")),
    (
        Scenario("cloud-dom0-bit-set", kernel="features:8801:cloud-6.12"),
        XenResult("in-place", None, K612, P512),
    ),
    # --- dom0_mem that cannot be met
    (
        Scenario("m1024-dom0mem-1G", memory_mib=1024, dom0_mem="1G"),
        XenResult("failed", "dom0-alloc-failed"),
    ),
    # --- default dom0 size (no dom0_mem) on 1, 2, 3 and 6 GiB guests
    (
        Scenario("default-1G", memory_mib=1024, dom0_mem=None),
        XenResult("in-place", None, K612, 240906),
    ),
    (
        Scenario("default-2G", memory_mib=2048, dom0_mem=None),
        XenResult("in-place", None, K612, 483306),
    ),
    (
        Scenario("default-3G", memory_mib=3072, dom0_mem=None),
        XenResult("in-place", None, K612, 741315),
    ),
    (
        Scenario("default-6G", memory_mib=6144, dom0_mem=None),
        XenResult("in-place", None, K612, 1516995),
    ),
    # --- without dom0=pvh,verbose: no ELF lines, no "Moving", no Dom0 map
    (
        Scenario("quiet-hole32", verbose=False, holes_mib=HOLE32),
        XenResult("loaded"),
    ),
    (
        Scenario("quiet-64M", verbose=False, dom0_mem="64M"),
        XenResult("failed", "no-load-address"),
    ),
    (
        Scenario("quiet-linux61-hole32", kernel="6.1", verbose=False, holes_mib=HOLE32),
        XenResult("failed", "not-relocatable"),
    ),
    # --- the real FreeBSD 15.1 kernel: BSD_SYMTAB "yes", so Xen loads its symbol
    # block after pend (virt_kend 0x11ae160, not 0x1000000); not relocatable.
    # A 1 MiB hole at 16 MiB touches only the symbol block, and Xen refuses it.
    # (Let run past the Dom0 map, FreeBSD printed nothing within 230 s under TCG:
    # QEMU's monitor showed the CPU at CPL 0 in Xen's range past its image.)
    (
        Scenario("freebsd-15.1", kernel="freebsd-15.1"),
        XenResult("in-place", None, FREEBSD, P512),
    ),
    (
        Scenario("freebsd-15.1-hole16", kernel="freebsd-15.1", holes_mib=((16, 17),)),
        XenResult("failed", "not-relocatable"),
    ),
    # --- Xen console timestamps
    (
        Scenario("timestamps-hole32", holes_mib=HOLE32, extra_xen_args="console_timestamps=boot"),
        XenResult("relocated", None, TOP_512M, P512),
    ),
)

# Boots that show Xen behaviour outside the placement algorithm; kept out of the
# default table because the outcome is a hypervisor crash, not a verdict.
# With 60 MiB of low RAM (pc or q35, max-ram-below-4g=60M) Xen 4.20 takes an
# early page fault in get_smp_config reading the MP table at 0xf5bb0.
CRASHES: tuple[tuple[Scenario, XenResult], ...] = (
    (
        Scenario("low60-crash", machine="pc,max-ram-below-4g=60M"),
        XenResult("failed", "xen-panic"),
    ),
)
