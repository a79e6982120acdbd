"""The end of a `matrix` run for a person: plain aligned lines, laid out for
the console's width (80 columns in a pipe or a CI log), colour only as a
second channel (every failure is also a word and a count).

What it says, in order: the headline (placements, loads, failures) and the
Xen release the verdicts model with where it came from; images that are not
PVH kernels and maps that could not be read, apart; per image, its counts;
per map, the images that fail there and the ones Xen moves (an image failing
on every map is said once, not on every map); the failure patterns when maps
were left out; warnings; images Xen refuses as dom0; broken inputs."""

from __future__ import annotations

import os
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from noteforge.render.term import say

# The terminal lists this many maps; the HTML report and the rows hold more.
TEXT_MAX_MAPS = 30
_COUNTS = (("maps", 5), ("in place", 9), ("relocated", 10), ("fail", 5))


def render_summary(console: Console, s) -> None:
    """Print a noteforge.fleet.summary.Summary."""
    from noteforge.fleet.report import short_names

    names = dict(zip(s.images, short_names(s.images), strict=True))
    variants = variant_labels(s.variants)

    def label(i: int, v: int) -> str:
        name = names[s.images[i]]
        return f"{name} [{variants[v]}]" if variants[v] else name

    _headline(console, s)
    _apart(console, s, names)
    _per_image(console, s, label)
    everywhere = _failing_everywhere(s)
    listed = _per_map(console, s, label, everywhere)
    _patterns(console, s, label, listed, everywhere)
    _closing(console, s, names)


def variant_labels(variants: Sequence[tuple[str | None, str]]) -> list[str]:
    """A short name for each (dom0_mem, policy) variant, naming only what
    varies: 'xen@4.18.6', 'dom0_mem 8G', or both; '' for a single variant."""
    sizes = len({d for d, _p in variants}) > 1
    policies = len({p for _d, p in variants}) > 1
    out = []
    for d, p in variants:
        parts = ([p] if policies else []) + ([f"dom0_mem {d or 'default'}"] if sizes else [])
        out.append(", ".join(parts))
    return out


def _headline(console: Console, s) -> None:
    loads = sum(c.in_place + c.relocated for c in s.counts.values())
    relocated = sum(c.relocated for c in s.counts.values())
    say(console, Text.assemble(
        ("noteforge matrix", "bold"),
        f": {len(s.images)} images × {s.maps} maps × "
        f"{len(s.variants)} (dom0 size, policy) = {s.rows} placements; "
        f"{loads} load ({relocated} relocated), {s.rows - loads} do not; "
        f"{s.maps_failing_placement} of {s.maps} maps fail an image"), first="", rest="")
    releases = s.release_text()
    if releases:
        say(console, releases, first="", rest="  ")


def _apart(console: Console, s, names: dict[str, str]) -> None:
    from noteforge.fleet.rows import BAD_INPUT
    from noteforge.fleet.summary import NOT_PVH

    if s.not_pvh:
        say(console, Text.assemble(
            ("not a PVH kernel", "bold"),
            f" (no Xen ELF note, reason {NOT_PVH} on every map; not counted as failing "
            f"above): {len(s.not_pvh)} image{'s' if len(s.not_pvh) != 1 else ''}, "
            + ", ".join(names[s.images[i]] for i in sorted(s.not_pvh))), first="", rest="  ")
    if s.bad_map_count:
        say(console, Text.assemble(
            (f"{s.bad_map_count} map{'s' if s.bad_map_count != 1 else ''} could not be read",
             "bold"), f" (reason {BAD_INPUT} for every image; not counted as failing above):"),
            first="", rest="  ")
        for m, msg in s.bad_maps[:TEXT_MAX_MAPS]:
            say(console, msg or m)
        more = s.bad_map_count - min(len(s.bad_maps), TEXT_MAX_MAPS)
        if more:
            say(console, f"... and {more} more (see --out)")


def _per_image(console: Console, s, label) -> None:
    rows = [(label(i, v), c) for (i, v), c in s.counts.items()]
    numbers = sum(w for _h, w in _COUNTS) + 2 * len(_COUNTS)
    width = max([len("Per image"), *(len(name) for name, _c in rows)])
    width = min(width, max(20, console.width - numbers))
    head = "Per image".ljust(width) + "".join(f"  {h:>{w}}" for h, w in _COUNTS)
    console.print(Text(head.rstrip(), style="bold"))
    for name, c in rows:
        cells = [c.maps, c.in_place, c.relocated, c.failed]
        counts = Text()
        for (_h, w), n in zip(_COUNTS, cells, strict=True):
            style = "red" if n and w == _COUNTS[-1][1] and n == c.failed else ""
            counts.append(f"  {n:>{w}}", style=style)
        if len(name) > width:  # a long name on a line of its own
            say(console, name, first="", rest="  ")
            console.print(Text(" " * width) + counts)
        else:
            console.print(Text(name.ljust(width)) + counts)
        if c.failed:
            say(console, Text("fails: ", style="red") + Text(
                ", ".join(f"{k} {n}" for k, n in c.failures().items())),
                first="  ", rest="    ")


def _failing_everywhere(s) -> set[tuple[int, int]]:
    """(image, variant) pairs failing on every map, each reason its own:
    said once in the per-image lines, left out of the per-map lines."""
    from noteforge.fleet.rows import BAD_INPUT
    from noteforge.fleet.summary import NOT_PVH

    return {key for key, c in s.counts.items()
            if c.maps > 1 and c.failed == c.maps
            and not set(c.failures()) & {BAD_INPUT, NOT_PVH}}


def _per_map(console: Console, s, label, everywhere: set) -> list:
    listed = []
    for m, (fails, moves) in s.per_map.items():
        fails = [(i, v, oc) for i, v, oc in s.placement_failures(fails)
                 if (i, v) not in everywhere]
        if fails or moves:
            listed.append((m, fails, moves))
    if listed:
        title = Text("Per map", style="bold")
        title.append(": images that fail there, images Xen moves")
        if everywhere:
            title.append(" (left out: " + ", ".join(
                label(i, v) for i, v in sorted(everywhere)) + ", failing on every map)")
        say(console, title, first="", rest="  ")
        for m, fails, moves in listed[:TEXT_MAX_MAPS]:
            say(console, os.path.basename(m) or m, first="", rest="  ")
            if fails:
                say(console, Text("fails: ", style="red") + Text(", ".join(
                    f"{label(i, v)} ({oc})" for i, v, oc in fails)), first="  ", rest="    ")
            if moves:
                say(console, "moves: " + ", ".join(
                    f"{label(i, v)} to {base:#x}" for i, v, base in moves),
                    first="  ", rest="    ")
        more = s.per_map_truncated + max(0, len(listed) - TEXT_MAX_MAPS)
        if more:
            say(console, f"... and {more} more maps with a failure or a relocation (see the "
                "patterns below, --html and --out)", first="", rest="")
    elif not s.maps_failing_placement and not s.maps_relocating:
        say(console, "Every PVH image loads in place on every readable map."
            if s.not_pvh or s.bad_map_count else "Every image loads in place on every map.",
            first="", rest="")
    return listed


def _patterns(console: Console, s, label, listed: Sequence, everywhere: set) -> None:
    """Maps grouped by what fails on them: only when the per-map lines were
    cut (a fleet), and without the images failing on every map."""
    if not (s.per_map_truncated or len(listed) > TEXT_MAX_MAPS):
        return
    grouped: dict[tuple, list] = {}
    for sig, count, ex in s.placement_patterns():
        sig = tuple(f for f in sig if (f[0], f[1]) not in everywhere)
        if sig:
            slot = grouped.setdefault(sig, [0, []])
            slot[0] += count
            slot[1] += ex[: 5 - len(slot[1])]
    patterns = sorted(((sig, n, ex) for sig, (n, ex) in grouped.items()),
                      key=lambda p: -p[1])
    if not patterns:
        return
    say(console, Text("Failure patterns", style="bold")
        + Text(" (maps grouped by what fails on them)"), first="", rest="  ")
    for sig, count, ex in patterns[:20]:
        what = "; ".join(f"{label(i, v)}: {oc}" for i, v, oc in sig)
        examples = ", ".join(os.path.basename(m) for m in ex)
        say(console, f"{count} map{'s' if count != 1 else ''}: {what} (e.g. {examples})",
            first="  ", rest="    ")
    if len(patterns) > 20 or s.other_patterns:
        say(console, f"... {max(0, len(patterns) - 20)} more patterns"
            + (f", {s.other_patterns} maps in patterns not kept"
               if s.other_patterns else ""), first="", rest="")


def _closing(console: Console, s, names: dict[str, str]) -> None:
    from noteforge.fleet.rows import BAD_INPUT

    if s.warning_counts:
        say(console, Text.assemble(
            ("Warnings", "bold"), " (rows carrying each kind; the rows hold the text): "
            + "; ".join(f"{k} {n}" for k, n in s.warning_counts.most_common())),
            first="", rest="  ")
    if s.not_dom0_capable:
        say(console, Text.assemble(
            ("Not dom0-capable", "bold"),
            " (SUPPORTED_FEATURES without XENFEAT_dom0; Xen 4.20.4+, 4.21.2+ and 4.22 "
            "refuse them before placement, see --xen-version): "
            + ", ".join(names[s.images[i]] for i in sorted(s.not_dom0_capable))),
            first="", rest="  ")
    # Bad inputs other than the unreadable maps listed above (broken images).
    map_msgs = {msg for _m, msg in s.bad_maps}
    others = [msg for msg in s.bad_inputs if msg not in map_msgs]
    if others:
        n = max(len(others), s.bad_input_count - s.bad_map_count)
        say(console, Text.assemble(("Bad inputs", "bold"), f" ({n}, reason {BAD_INPUT}):"),
            first="", rest="  ")
        for msg in others:
            say(console, msg)
