"""The fleet's summary: counts per image, a bounded list of failing maps, a
bounded heat map, warning kinds."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from noteforge.fleet.rows import BAD_INPUT, IN_PLACE, RELOCATED
from noteforge.maps.model import type_name

# An image with no Xen ELF note at all (Xen's own hypervisor, GNU Mach): it
# fails on every map for the same reason (Xen: 'Not a Xen-ELF image',
# xen/common/libelf/libelf-dominfo.c), so the summary reports it once, apart.
NOT_PVH = "not-pvh"

# --------------------------------------------------------------------------- summary


MAX_WARNING_KINDS = 50
_WARNING_TAG = re.compile(r"^([a-z0-9]+(?:-[a-z0-9]+)+): ")


# Where the release a verdict models came from (verify's xen_release_source).
_RELEASE_SOURCE = {
    "flag": "--xen-version",
    "log": "the map's Xen log",
    "default": "default: the newest release modelled; --xen-version to choose",
}


def warning_kind(text: str) -> str:
    """What a warning is about, without its numbers: placement's tag
    ('acpi-overlap', 'max-wrap', ...) or the words before the first colon."""
    m = _WARNING_TAG.match(text)
    if m:
        return m.group(1)
    head = text.split(":", 1)[0]
    return head if len(head) <= 80 else head[:79] + "…"


def outcome(row: dict) -> str:
    """'in-place', 'relocated', or the failure reason."""
    if row["loads"]:
        return RELOCATED if row["relocated"] else IN_PLACE
    return row["reason"] or "fail"


def entry_text(entry: dict | None) -> str:
    """An e820 entry as Xen prints it: type [start, end inclusive]."""
    if entry is None:
        return ""
    return f"{entry.get('type_name') or type_name(entry['type'])} " \
        f"[{entry['start']:#x}, {entry['end'] - 1:#x}]"


def describe(row: dict) -> str:
    """One line for a person: what happened to this image on this map."""
    oc = outcome(row)
    block = entry_text(row["blocking"])
    if oc == IN_PLACE:
        text = f"loads in place at {row['base']:#x}"
    elif oc == RELOCATED:
        text = f"relocated to {row['base']:#x}"
        if block:
            text += f" ({block} blocks its own address)"
    elif oc == BAD_INPUT:
        text = f"bad input: {row['message']}"
    else:
        text = f"fails: {oc}"
        if block:
            text += f" ({block} blocks its address)"
    return text


@dataclass
class ImageCounts:
    maps: int = 0
    outcomes: Counter = field(default_factory=Counter)

    @property
    def in_place(self) -> int:
        return self.outcomes[IN_PLACE]

    @property
    def relocated(self) -> int:
        return self.outcomes[RELOCATED]

    @property
    def failed(self) -> int:
        return self.maps - self.in_place - self.relocated

    def failures(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.outcomes.items()) if k not in (IN_PLACE, RELOCATED)}


class Summary:
    """Counts a run's rows as they stream past, in memory that does not grow
    with the number of maps beyond fixed caps:

    - per (image, variant): maps loading in place / relocated / failing by reason;
    - per map with a failure: which images fail and why (the first
      `max_listed_maps` such maps; the rest are only counted);
    - failure patterns: maps grouped by the exact set of failing
      (image, variant, reason), with a count and a few example maps;
    - a heat map of the first `heat_max_maps` maps: one cell per (image, map)
      per variant, with its outcome and a one-line description.

    Rows must arrive grouped by map (as iter_rows produces them)."""

    def __init__(
        self,
        images: Sequence[str],
        variants: Sequence[tuple[str | None, str]],
        *,
        max_listed_maps: int = 200,
        heat_max_maps: int = 400,
        max_patterns: int = 200,
        examples: int = 5,
        keep_all_bad: bool = False,
    ):
        self.images = list(images)
        self.variants = list(variants)
        self._img_index = {p: i for i, p in enumerate(self.images)}
        self._var_index = {v: i for i, v in enumerate(self.variants)}
        self._img_prefixes = tuple(self.images) or ("\0",)
        self.max_listed_maps = max_listed_maps
        self.heat_max_maps = heat_max_maps
        self.max_patterns = max_patterns
        self.examples = examples
        self.rows = 0
        self.maps = 0
        self.maps_failing = 0
        self.maps_relocating = 0
        self.maps_noted = 0  # maps with a failure or a relocation
        self.counts = {
            (i, v): ImageCounts() for i in range(len(self.images))
            for v in range(len(self.variants))
        }
        # map -> ([(image, variant, outcome)] failing, [(image, variant, base)]
        # relocated), for the first max_listed_maps maps with either
        self.per_map: dict[str, tuple[list, list]] = {}
        self.patterns: dict[tuple, list] = {}  # signature -> [count, [example maps]]
        self.other_patterns = 0
        self.bad_inputs: list[str] = []  # messages, the first max_listed_maps
        self.bad_input_count = 0
        # heat[v] = [(map, [(outcome, description) per image])]
        self.heat: list[list[tuple[str, list]]] = [[] for _ in self.variants]
        self.heat_truncated = 0
        self.notes: list[str] = []
        self._cur_map: str | None = None
        self._cur_fail: list[tuple[int, int, str]] = []
        self._cur_moves: list[tuple[int, int, int]] = []
        self._cur_cells: list[list] | None = None
        self._seen_bad: set[str] = set()
        # A chunk's partial summary keeps every distinct bad-input message (a
        # chunk has few maps) so that the parent can count each input once.
        self._keep_all_bad = keep_all_bad
        self.not_dom0_capable: set[int] = set()  # image indices
        # Reported apart from placement failures (issue 19): images that are
        # not PVH kernels, maps that could not be read (every row bad-input,
        # counted once per map, not once per image), and the maps where a PVH
        # image fails to place.
        self.not_pvh: set[int] = set()  # image indices
        self.bad_maps: list[tuple[str, str]] = []  # (map, message), the first max_listed_maps
        self.bad_map_count = 0
        self.maps_failing_placement = 0
        self._cur_msg = ""
        # warning kind -> rows carrying it (at most MAX_WARNING_KINDS kinds)
        self.warning_counts: Counter = Counter()
        # (Xen release, where it came from) -> maps modelled with it: a verdict
        # names the release it models (--xen-version, the map's log, default)
        self.releases: Counter = Counter()
        self._cur_releases: set[tuple[str, str]] = set()

    # -- feeding
    def add(self, row: dict) -> None:
        if row["map"] != self._cur_map:
            self._flush()
            self._start(row["map"])
        self.rows += 1
        i = self._img_index[row["image"]]
        v = self._var_index[(row["dom0_mem"], row["policy"])]
        oc = outcome(row)
        c = self.counts[(i, v)]
        c.maps += 1
        c.outcomes[oc] += 1
        if oc == RELOCATED:
            self._cur_moves.append((i, v, row["base"]))
        elif oc != IN_PLACE:
            self._cur_fail.append((i, v, oc))
        if oc == NOT_PVH:
            self.not_pvh.add(i)
        if oc == BAD_INPUT:
            self._cur_msg = self._cur_msg or row["message"] or ""
            self._note_bad(row["message"] or f"{row['image']} on {row['map']}")
        if not row["dom0_capable"]:
            self.not_dom0_capable.add(i)
        if row.get("xen_release"):
            self._cur_releases.add((row["xen_release"], row["xen_release_source"]))
        for w in row["warnings"]:
            self._count_warning(warning_kind(w))
        if self._cur_cells is not None:
            self._cur_cells[v][i] = (oc, describe(row))

    def _count_warning(self, kind: str, n: int = 1) -> None:
        if kind in self.warning_counts or len(self.warning_counts) < MAX_WARNING_KINDS:
            self.warning_counts[kind] += n
        else:
            self.warning_counts["other"] += n

    def _note_bad(self, msg: str) -> None:
        # Every row a broken input spoils carries the same message (it names
        # the file), so the message identifies the input.
        if msg in self._seen_bad:
            return
        self.bad_input_count += 1
        if self._keep_all_bad or len(self.bad_inputs) < self.max_listed_maps:
            self.bad_inputs.append(msg)
        if self._keep_all_bad or len(self._seen_bad) < 8 * self.max_listed_maps:
            self._seen_bad.add(msg)
        else:
            # A broken map's rows come together, so forgetting older map
            # errors costs nothing; broken images recur on every map: keep them.
            self._seen_bad = {m for m in self._seen_bad if m.startswith(self._img_prefixes)}
            self._seen_bad.add(msg)

    def _start(self, map_path: str) -> None:
        self._cur_map = map_path
        self.maps += 1
        self._cur_fail = []
        self._cur_moves = []
        self._cur_msg = ""
        self._cur_releases = set()
        if self.maps <= self.heat_max_maps:
            self._cur_cells = [[None] * len(self.images) for _ in self.variants]
        else:
            self._cur_cells = None
            self.heat_truncated += 1

    def _flush(self) -> None:
        if self._cur_map is None:
            return
        m = self._cur_map
        self.releases.update(self._cur_releases)
        if self._cur_cells is not None:
            for v, cells in enumerate(self._cur_cells):
                self.heat[v].append((m, cells))
        if self._cur_fail or self._cur_moves:
            self.maps_noted += 1
            if len(self.per_map) < self.max_listed_maps:
                self.per_map[m] = (self._cur_fail, self._cur_moves)
        if self._cur_moves:
            self.maps_relocating += 1
        # A broken image's message starts with its path; a broken map's does not.
        if (self._cur_fail and self.all_bad(self._cur_fail)
                and not self._cur_msg.startswith(self._img_prefixes)):
            self.bad_map_count += 1
            if len(self.bad_maps) < self.max_listed_maps:
                self.bad_maps.append((m, self._cur_msg))
        elif any(oc != NOT_PVH for _i, _v, oc in self._cur_fail):
            self.maps_failing_placement += 1
        if self._cur_fail:
            self.maps_failing += 1
            sig = tuple(sorted(set(self._cur_fail)))
            slot = self.patterns.get(sig)
            if slot is None and len(self.patterns) < self.max_patterns:
                slot = self.patterns[sig] = [0, []]
            if slot is None:
                self.other_patterns += 1
            else:
                slot[0] += 1
                if len(slot[1]) < self.examples:
                    slot[1].append(m)
        self._cur_map = None
        self._cur_cells = None

    def finish(self) -> Summary:
        self._flush()
        return self

    def merge(self, part: Summary) -> None:
        """Add a finished partial summary of the maps that follow this one's
        (a Chunk's), keeping every cap."""
        self._flush()
        self.rows += part.rows
        self.maps += part.maps
        self.maps_failing += part.maps_failing
        self.maps_relocating += part.maps_relocating
        self.maps_noted += part.maps_noted
        for key, c in part.counts.items():
            mine = self.counts[key]
            mine.maps += c.maps
            mine.outcomes.update(c.outcomes)
        for m, note in part.per_map.items():
            if len(self.per_map) >= self.max_listed_maps:
                break
            self.per_map[m] = note
        for sig, (count, examples) in part.patterns.items():
            slot = self.patterns.get(sig)
            if slot is None and len(self.patterns) < self.max_patterns:
                slot = self.patterns[sig] = [0, []]
            if slot is None:
                self.other_patterns += count
                continue
            slot[0] += count
            slot[1].extend(examples[: self.examples - len(slot[1])])
        self.other_patterns += part.other_patterns
        for msg in part.bad_inputs:
            self._note_bad(msg)
        for v, rows in enumerate(part.heat):
            room = self.heat_max_maps - len(self.heat[v])
            self.heat[v].extend(rows[: max(0, room)])
        shown = len(self.heat[0]) if self.heat else 0
        self.heat_truncated = max(0, self.maps - shown) if self.variants else 0
        self.not_dom0_capable |= part.not_dom0_capable
        self.releases.update(part.releases)
        self._merge_apart(part, 1)
        for kind, n in part.warning_counts.items():
            self._count_warning(kind, n)

    def _merge_apart(self, part: Summary, n: int) -> None:
        self.not_pvh |= part.not_pvh
        self.bad_map_count += part.bad_map_count * n
        self.maps_failing_placement += part.maps_failing_placement * n
        room = max(0, self.max_listed_maps - len(self.bad_maps))
        self.bad_maps.extend(part.bad_maps[:room])

    def merge_scaled(self, part: Summary, n: int, examples: Sequence[str] = ()) -> None:
        """Add `n` maps that each have exactly `part`'s rows (a fleet's
        machines sharing one map, fleet.inventory): every count times n; no
        map is listed or drawn (the heat map and the per-map list only count
        them as truncated), a failure pattern gains `examples` as its examples."""
        if n <= 0:
            return
        self._flush()
        self.rows += part.rows * n
        self.maps += part.maps * n
        self.maps_failing += part.maps_failing * n
        self.maps_relocating += part.maps_relocating * n
        self.maps_noted += part.maps_noted * n
        for key, c in part.counts.items():
            mine = self.counts[key]
            mine.maps += c.maps * n
            for oc, k in c.outcomes.items():
                mine.outcomes[oc] += k * n
        for sig, (count, _ex) in part.patterns.items():
            slot = self.patterns.get(sig)
            if slot is None and len(self.patterns) < self.max_patterns:
                slot = self.patterns[sig] = [0, []]
            if slot is None:
                self.other_patterns += count * n
                continue
            slot[0] += count * n
            slot[1].extend(list(examples)[: self.examples - len(slot[1])])
        self.other_patterns += part.other_patterns * n
        for msg in part.bad_inputs:
            self._note_bad(msg)
        shown = len(self.heat[0]) if self.heat else 0
        self.heat_truncated = max(0, self.maps - shown) if self.variants else 0
        self.not_dom0_capable |= part.not_dom0_capable
        for key, k in part.releases.items():
            self.releases[key] += k * n
        self._merge_apart(part, n)
        for kind, k in part.warning_counts.items():
            self._count_warning(kind, k * n)

    # -- reading
    @property
    def map_failures(self) -> dict[str, list[tuple[int, int, str]]]:
        """The listed maps where an image fails, with (image, variant, reason)."""
        return {m: fails for m, (fails, _moves) in self.per_map.items() if fails}

    @property
    def per_map_truncated(self) -> int:
        """Maps with a failure or a relocation that are counted but not listed."""
        return self.maps_noted - len(self.per_map)

    def all_bad(self, fails: Sequence[tuple[int, int, str]]) -> bool:
        """Did every image fail on this map as bad input (an unreadable map)?"""
        return len(fails) == len(self.images) * len(self.variants) and all(
            oc == BAD_INPUT for _i, _v, oc in fails
        )

    def placement_failures(self, fails: Sequence[tuple[int, int, str]]) -> list:
        """A map's failures as the summary shows them: none for a map that
        could not be read (listed apart), and no not-pvh image (listed apart)."""
        if self.all_bad(fails):
            return []
        return [f for f in fails if f[2] != NOT_PVH]

    def placement_patterns(self) -> list[tuple[tuple, int, list[str]]]:
        """Failure patterns without unreadable maps and not-PVH images, most
        maps first: (signature, maps, example maps)."""
        merged: dict[tuple, list] = {}
        for sig, (count, ex) in self.patterns.items():
            key = tuple(self.placement_failures(sig))
            if not key:
                continue
            slot = merged.setdefault(key, [0, []])
            slot[0] += count
            slot[1].extend(ex[: self.examples - len(slot[1])])
        return sorted(((k, c, ex) for k, (c, ex) in merged.items()), key=lambda t: -t[1])

    def variant_label(self, v: int) -> str:
        dom0_mem, policy = self.variants[v]
        return f"policy {policy}, dom0_mem {dom0_mem if dom0_mem is not None else 'default'}"

    def release_text(self) -> str | None:
        """The Xen release(s) the verdicts model and where each came from, for
        people: 'as Xen 4.22.0 does (default: ...)', 'as Xen 4.18.6 and 4.22.0
        do (--xen-version: ...)', or each release with its maps."""
        releases = dict(self.releases)
        if not releases:
            return None
        if len(releases) == 1:
            (release, source), = releases
            return f"as Xen {release} does ({_RELEASE_SOURCE.get(source, source)})"
        if {source for _r, source in releases} == {"flag"}:  # several --xen-version
            from noteforge.xen.releases import parse_release

            ordered = sorted({r for r, _s in releases}, key=lambda r: parse_release(r).release)
            return (f"as Xen {', '.join(ordered[:-1])} and {ordered[-1]} do (--xen-version: "
                    "one variant each)")
        parts = [f"{release} on {n} map{'s' if n != 1 else ''} "
                 f"({_RELEASE_SOURCE.get(source, source)})"
                 for (release, source), n in sorted(releases.items(), key=lambda kv: -kv[1])]
        return "as each map's Xen release does: " + "; ".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready summary (the heat map is left to the HTML report)."""
        per_image = []
        for (i, v), c in self.counts.items():
            per_image.append({
                "image": self.images[i],
                "dom0_mem": self.variants[v][0],
                "policy": self.variants[v][1],
                "maps": c.maps,
                "in_place": c.in_place,
                "relocated": c.relocated,
                "failed": c.failed,
                "failures": c.failures(),
            })
        per_map = [
            {
                "map": m,
                "failures": [
                    {"image": self.images[i], "dom0_mem": self.variants[v][0],
                     "policy": self.variants[v][1], "reason": oc}
                    for i, v, oc in fails
                ],
                "relocated": [
                    {"image": self.images[i], "dom0_mem": self.variants[v][0],
                     "policy": self.variants[v][1], "base": base}
                    for i, v, base in moves
                ],
            }
            for m, (fails, moves) in self.per_map.items()
        ]
        patterns = [
            {
                "maps": count,
                "examples": list(ex),
                "failures": [
                    {"image": self.images[i], "dom0_mem": self.variants[v][0],
                     "policy": self.variants[v][1], "reason": oc}
                    for i, v, oc in sig
                ],
            }
            for sig, (count, ex) in sorted(self.patterns.items(), key=lambda kv: -kv[1][0])
        ]
        return {
            "rows": self.rows,
            "maps": self.maps,
            "images": len(self.images),
            "maps_failing": self.maps_failing,
            "maps_relocating": self.maps_relocating,
            "per_image": per_image,
            "per_map": per_map,
            "per_map_truncated": self.per_map_truncated,
            "patterns": patterns,
            "other_patterns": self.other_patterns,
            "bad_inputs": list(self.bad_inputs),
            "bad_input_count": self.bad_input_count,
            "not_dom0_capable": [self.images[i] for i in sorted(self.not_dom0_capable)],
            "not_pvh": [self.images[i] for i in sorted(self.not_pvh)],
            "maps_failing_placement": self.maps_failing_placement,
            "bad_maps": [{"map": m, "message": msg} for m, msg in self.bad_maps],
            "bad_map_count": self.bad_map_count,
            "warnings": dict(self.warning_counts.most_common()),
            "xen_releases": [{"xen_release": r, "xen_release_source": src, "maps": n}
                             for (r, src), n in sorted(self.releases.items())],
            "notes": list(self.notes),
        }
