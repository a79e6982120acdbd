"""Xen's clean-up of a firmware map: xen/arch/x86/e820.c (sanitize_e820_map,
copy_e820_map, the 640 KiB - 1 MiB clip, E820MAX)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from noteforge.maps.analyse import some
from noteforge.maps.model import (
    E820_RAM,
    E820Entry,
    HostMap,
    type_name,
)
from noteforge.maps.syntax import E820MAX, LOW_640K, MIB1

# --------------------------------------------------------------------------
# Xen's clean-up (xen/arch/x86/e820.c)


@dataclass(frozen=True)
class CleanedMap:
    """The map after Xen's sanitize_e820_map + copy_e820_map, and what changed."""

    entries: tuple[E820Entry, ...]
    changes: tuple[str, ...]
    bare_metal: bool = True

    def to_dict(self) -> dict:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "changes": list(self.changes),
            "bare_metal": self.bare_metal,
        }


def clean_map(
    entries: Iterable[E820Entry] | HostMap,
    *,
    bare_metal: bool = True,
    xen_printed: bool | None = None,
) -> CleanedMap:
    """What Xen makes of a firmware map before using it (xen/arch/x86/e820.c):

    - only the first E820MAX (1024) entries are read, and a map of fewer than
      two entries is ignored altogether (copy_e820_map), leaving Xen no memory;
    - sanitize_e820_map: empty entries dropped, sorted, overlaps resolved to the
      higher type number, adjacent entries of one type merged;
    - copy_e820_map: RAM between 640 KiB and 1 MiB is cut out, on bare metal
      only (Xen skips it when it runs under a hypervisor, cpu_has_hypervisor).

    Not modelled: the mem=/availmem= options, the MTRR clip (Intel, when MTRRs
    do not cover RAM) and DMI tables turned reserved; they need the machine.
    A map Xen printed (``HostMap.xen_printed``) is already clean: it comes back
    unchanged with no changes.
    """
    if isinstance(entries, HostMap):
        if xen_printed is None:
            xen_printed = entries.xen_printed
        entries = entries.entries
    items = list(entries)
    if xen_printed:
        return CleanedMap(tuple(items), (), bare_metal)
    changes: list[str] = []
    if len(items) > E820MAX:
        changes.append(
            f"kept the first {E820MAX} of {len(items)} entries: Xen's e820 holds no more "
            "(E820MAX)"
        )
        items = items[:E820MAX]
    if len(items) < 2:
        changes.append(
            "a firmware map of fewer than two entries is ignored by Xen (copy_e820_map): it "
            "would find no memory"
        )
        return CleanedMap((), tuple(changes), bare_metal)
    merged, sanitize_changes = _sanitize(items)
    changes.extend(sanitize_changes)
    final: list[E820Entry] = []
    for e in merged:
        if bare_metal and e.is_ram and e.start < MIB1 and e.end > LOW_640K:
            kept = []
            if e.start < LOW_640K:
                kept.append(E820Entry(e.start, LOW_640K, E820_RAM))
            if e.end > MIB1:
                kept.append(E820Entry(MIB1, e.end, E820_RAM))
            final.extend(kept)
            what = " and ".join(f"[{k.start:#x}, {k.end:#x})" for k in kept) or "nothing"
            changes.append(
                f"usable [{e.start:#x}, {e.end:#x}) overlaps 640 KiB-1 MiB, which is not RAM on "
                f"a PC: kept {what} (bare metal only)"
            )
            continue
        final.append(e)
    return CleanedMap(tuple(final), tuple(changes), bare_metal)


def _sanitize(items: Sequence[E820Entry]) -> tuple[list[E820Entry], list[str]]:
    """sanitize_e820_map by change points, O(n log n): at each address the
    type is the highest of the entries covering it (type 0 never wins), runs of
    one type become one entry. Grouping all change points at one address gives
    Xen's result, whose own sort puts starts before ends at equal addresses."""
    changes: list[str] = []
    if any(b.start < a.start for a, b in itertools.pairwise(items)):
        changes.append("sorted the entries by address (the firmware listed them out of order)")
    empty = [e for e in items if e.size == 0]
    if empty:
        changes.append("dropped empty entries at " + some([f"{e.start:#x}" for e in empty]))
    zero = [e for e in items if e.type == 0 and e.size]
    if zero:
        changes.append("type 0 entries never count (Xen treats 0 as no entry): "
                       + some([f"[{e.start:#x}, {e.end:#x})" for e in zero]))
    events: list[tuple[int, int, int]] = []  # (addr, 0 start / 1 end, index)
    for i, e in enumerate(items):
        if e.size:
            events.append((e.start, 0, i))
            events.append((e.end, 1, i))
    events.sort()
    active: dict[int, int] = {}  # type -> count
    heap: list[int] = []  # negated types, lazily cleaned
    active_ids: set[int] = set()
    out: list[E820Entry] = []
    last_type, last_addr = 0, 0
    overlaps: list[tuple[int, int, tuple[int, ...], int]] = []
    merges: dict[int, int] = {}  # output start -> number of joins
    i = 0
    n = len(events)
    while i < n:
        addr = events[i][0]
        ended_same: set[int] = set()
        started_same: set[int] = set()
        while i < n and events[i][0] == addr:
            _, kind, idx = events[i]
            t = items[idx].type
            if kind == 0:
                active[t] = active.get(t, 0) + 1
                heapq.heappush(heap, -t)
                active_ids.add(idx)
                started_same.add(idx)
            else:
                active[t] -= 1
                if not active[t]:
                    del active[t]
                active_ids.discard(idx)
                ended_same.add(idx)
            i += 1
        while heap and -heap[0] not in active:
            heapq.heappop(heap)
        current = -heap[0] if heap else 0
        if current != last_type:
            if last_type != 0 and addr > last_addr:
                out.append(E820Entry(last_addr, addr, last_type))
            if current != 0:
                last_addr = addr
            last_type = current
        elif current != 0:
            # Same type on both sides of addr: a join if the entries of that type
            # that ended here were all replaced by ones starting here.
            ended = {j for j in ended_same if items[j].type == current}
            started = {j for j in started_same if items[j].type == current}
            survivors = {j for j in active_ids if items[j].type == current} - started
            if ended and started and not survivors:
                merges[last_addr] = merges.get(last_addr, 0) + 1
        # Record overlaps: two or more entries covering the span after addr.
        if i < n and len(active_ids) > 1:
            types = tuple(sorted({items[j].type for j in active_ids}))
            nxt = events[i][0]
            if overlaps and overlaps[-1][1] == addr and overlaps[-1][2] == types:
                s, _, ty, w = overlaps[-1]
                overlaps[-1] = (s, nxt, ty, w)
            else:
                overlaps.append((addr, nxt, types, current))
    for s, e, types, winner in overlaps:
        if len(types) == 1:
            changes.append(
                f"[{s:#x}, {e:#x}): {type_name(types[0])} entries overlap (duplicated): "
                "kept once"
            )
        else:
            names = " and ".join(type_name(t) for t in types)
            changes.append(
                f"[{s:#x}, {e:#x}): {names} overlap: Xen keeps {type_name(winner)} "
                "(the higher type)"
            )
    for entry in out:
        joins = merges.get(entry.start)
        if joins:
            changes.append(
                f"merged {joins + 1} adjacent {entry.type_name} entries into "
                f"[{entry.start:#x}, {entry.end:#x})"
            )
    return out, changes
