#!/usr/bin/env python3
"""Fuzz harness: memory map reading and what follows it. The input is the
bytes of a map file (any format: dmesg, Xen log, hvmloader, sysfs dump,
table, JSON); the harness reads it (noteforge.maps.read.read_map), then runs Xen's
clean-up (clean_map), the map checks (analyse_map), dom0's size
(dom0mem.compute_nr_pages) and dom0's map (dom0_map), and places a fixed
Linux 6.12-shaped kernel on it (placement.place), as `noteforge verify` does.
"""

from __future__ import annotations

import common

with common.instrumented_imports():
    from noteforge.maps import read as maps_read
    from noteforge.maps.analyse import analyse_map
    from noteforge.xen import dom0_build, placement
    from noteforge.xen import dom0_mem as dom0mem
    from noteforge.xen import e820 as xen_e820

# Linux 6.12 amd64 (PROVENANCE.md): 0x1000000-0x4200000, RELOC {2M, 16M, 1G-1}.
KERNEL = placement.KernelParams(
    dest_base=0x1000000, dest_size=0x3200000, phys_entry=0x1000A30, relocatable=True,
    reloc_align=0x200000, reloc_min=0x1000000, reloc_max=0x3FFFFFFF, palign=0x200000,
)


def test_one(data: bytes) -> None:
    path = common.write_input(data, "map.txt")
    host = common.read_or_error(maps_read.read_map, path)
    if host is None:
        return
    common.check_plain(host.to_dict())
    # Past reading, the map is valid data: nothing below may raise at all.
    cleaned = xen_e820.clean_map(host)
    common.check_plain(cleaned.to_dict())
    analyse_map(cleaned.entries)
    size = dom0mem.compute_nr_pages(None, cleaned.entries)
    common.check_plain(size.to_dict())
    for pages in (None, size.nr_pages, 1 << 18):
        dom0 = dom0_build.dom0_map(cleaned.entries, pages)
        common.check_plain(dom0.to_dict())
    result = placement.place(KERNEL, dom0.entries, "xen", initrd_size=0x2000000)
    common.check_plain(result.to_dict())


if __name__ == "__main__":
    common.setup_and_fuzz(test_one)
