"""Fleets of real size: a JSON Lines inventory of machines, each distinct map
placed once and its verdict fanned out to every machine that has it.

A fleet of a million machines has a few hundred distinct firmware maps (one per
board and BIOS version). The inventory names each machine and its map, one
machine per line:

    {"id": "web-0001", "map": [{"start": 0, "end": 654336, "type": 1}, ...]}
    {"id": "web-0002", "map": "BIOS-e820: [mem 0x0000000000000000-...] usable\\n..."}
    {"id": "db-0001", "path": "maps/db-board-r2.dmesg"}

`map` is a map inline: noteforge's JSON map (a list of entries or an object
with `entries`, as `e820 --json` prints) or the text of a map in any format
read_map reads; `path` names a map file (relative to the inventory's folder).
Other keys are ignored; ids are not checked for uniqueness (that would cost
memory that grows with the fleet).

Work is shared at two levels, so that the cost per machine is parsing its
line and writing its rows:

1. identical lines but for the id are one map: parsed, cleaned and placed the
   first time only (a bounded cache);
2. maps that Xen's clean-up (xen/arch/x86/e820.c: sanitize_e820_map) turns
   into the same entries, with the same facts from a Xen log, are one result:
   the rows are computed once (fleet.rows.map_rows, as for a map file), kept
   serialised with the machine and the map left as markers, and written for
   each machine by substituting them.

Errors: a line that is not an inventory entry (not JSON, no id, neither or
both of map and path) stops the run with a one-line error naming the
inventory and the line, status 2, and the --out file is not written (it is
atomic). A map that cannot be read or used (a parse error, a missing file)
is that machine's problem, not the inventory's: its rows are bad-input rows
whose message names the inventory line (or the file), as for --maps files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from noteforge.errors import MapError, NoteforgeError
from noteforge.fleet.inputs import MapInfo, map_info
from noteforge.fleet.output import csv_cells
from noteforge.fleet.rows import ROW_KEYS, MatrixSpec, map_rows
from noteforge.fleet.summary import Summary

# Stand-ins for the machine's id and its map's name in a result's rows; NUL
# never occurs in a file name, and json.dumps writes it as \u0000.
MACHINE = "\0machine\0"
MAP = "\0map\0"
_J_MACHINE = json.dumps(MACHINE)[1:-1]
_J_MAP = json.dumps(MAP)[1:-1]
_CSV_SPECIAL = frozenset(',"\r\n')

INVENTORY_KEYS = ("machine", *ROW_KEYS)

# Bounds that keep memory flat whatever the fleet: raw lines remembered, and
# distinct results kept (each holds its serialised rows and a partial summary).
MAX_LINES_CACHED = 65536
MAX_RESULTS = 4096
# Machines merged into the summary one by one (named in the per-map list, the
# heat map and the pattern examples); after these, each result's machines are
# only counted and merged once, scaled.
NAMED_MACHINES = 400


@dataclass
class Machine:
    """One inventory line: the machine's id, where its map came from (the
    label its rows carry as `map`) and the map itself."""

    id: str
    label: str
    line: int
    inline: object = None  # the JSON value of "map"
    path: str | None = None


@dataclass
class Result:
    """The rows of one distinct (cleaned) map, serialised once."""

    rows: list[dict]
    jsonl: str
    csv: str
    part: Summary
    bad: bool  # every row is a bad-input row: summarise each machine apart
    examples: list[str] = field(default_factory=list)


def inventory_header() -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(INVENTORY_KEYS)
    return buf.getvalue()


def read_inventory(path: str) -> Iterator[tuple[str, Machine]]:
    """(raw line, Machine) for every non-blank line of a JSON Lines inventory
    ('-' is stdin). A line that is not an entry raises MapError naming it."""
    import sys

    if path == "-":
        yield from _lines(sys.stdin, "<stdin>", "")
        return
    try:
        fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except OSError as err:
        raise MapError(f"{path}: cannot read the inventory: {err.strerror or err}") from None
    with fh:
        yield from _lines(fh, path, os.path.dirname(path))


def _lines(fh, name: str, folder: str) -> Iterator[tuple[str, Machine]]:
    for number, raw in enumerate(fh, 1):
        if not raw.strip():
            continue
        yield raw, _machine(raw, name, number, folder)


def _machine(raw: str, name: str, number: int, folder: str) -> Machine:
    where = f"{name}:{number}"
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as err:
        raise MapError(f"{where}: expected a JSON object per line (an inventory entry): "
                       f"{err.msg} at column {err.colno}") from None
    if not isinstance(obj, dict):
        raise MapError(f"{where}: expected a JSON object with an id and a map or path, got "
                       f"{type(obj).__name__}")
    ident = obj.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if not isinstance(ident, str) or not ident:
        raise MapError(f"{where}: expected \"id\": a machine name (string)")
    has_map, has_path = "map" in obj, "path" in obj
    if has_map == has_path:
        raise MapError(f"{where}: expected exactly one of \"map\" (the map inline) or "
                       f"\"path\" (a map file), machine {ident!r}")
    if has_path:
        p = obj["path"]
        if not isinstance(p, str) or not p:
            raise MapError(f"{where}: expected \"path\": a file name, machine {ident!r}")
        full = p if os.path.isabs(p) else os.path.join(folder, p)
        return Machine(ident, full, number, path=full)
    value = obj["map"]
    if not isinstance(value, (str, list, dict)):
        raise MapError(f"{where}: expected \"map\": a JSON map (list or object) or map text, "
                       f"machine {ident!r}")
    return Machine(ident, where, number, inline=value)


def load_inline(m: Machine) -> MapInfo:
    """The machine's map, read and cleaned as load_map does, named MAP (the
    rows' and messages' stand-in for the machine's own label)."""
    from noteforge.maps.read import parse_map_text, read_map

    try:
        if m.path is not None:
            host = read_map(m.path)
            # read_map names the file in its messages and the map; the
            # result is shared by every machine, so name the stand-in.
            return map_info(MAP, host)
        text = m.inline if isinstance(m.inline, str) else json.dumps(m.inline)
        return map_info(MAP, parse_map_text(text, MAP))
    except NoteforgeError as err:
        return MapInfo(path=MAP, error=str(err).replace(m.label, MAP))
    except OSError as err:
        return MapInfo(path=MAP, error=f"{MAP}: {err.strerror or err}")


class InventoryRun:
    """Streams the rows of every machine of one or more inventories and
    builds the run's Summary (machines count as maps)."""

    def __init__(self, spec: MatrixSpec, summary: Summary, fmt: str | None):
        self.spec = spec
        self.summary = summary
        self.fmt = fmt
        self._by_line: dict[str, tuple[object, Result]] = {}
        self._by_map: dict[tuple, Result] = {}
        self._pending: Counter = Counter()  # id(result) -> machines not yet merged
        self._results: dict[int, Result] = {}
        self.machines = 0
        self.distinct = 0  # results computed (distinct cleaned maps, evictions counted)
        self.rows = 0

    # -- results
    def _result(self, raw: str, m: Machine) -> Result:
        key = raw.replace(json.dumps(m.id), "", 1) if m.path is None else "\0" + m.path
        hit = self._by_line.get(key)
        # The key drops the id's first occurrence, which is its value in all
        # but contrived lines: the map itself decides.
        if hit is not None and hit[0] == (m.inline if m.path is None else m.path):
            return hit[1]
        mp = load_inline(m)
        mkey = (mp.entries, mp.log_nr_pages, mp.log_dom0_mem, mp.xen_version, mp.error)
        res = self._by_map.get(mkey)
        if res is None:
            if len(self._by_map) >= MAX_RESULTS:
                self._evict()
            res = self._by_map[mkey] = self._compute(mp)
            self._results[id(res)] = res
            self.distinct += 1
        if len(self._by_line) >= MAX_LINES_CACHED:
            self._by_line.clear()
        self._by_line[key] = (m.inline if m.path is None else m.path, res)
        return res

    def _compute(self, mp: MapInfo) -> Result:
        rows = list(map_rows(self.spec, mp))
        part = Summary([i.path for i in self.spec.images], self.spec.variants,
                       heat_max_maps=1, keep_all_bad=True)
        for row in rows:
            part.add(row)
        part.finish()
        jsonl = "".join(
            json.dumps({"machine": MACHINE, **row}, separators=(",", ":")) + "\n" for row in rows
        )
        buf = io.StringIO()
        w = csv.writer(buf)
        for row in rows:
            w.writerow([MACHINE, *csv_cells(row)])
        bad = mp.error is not None
        return Result(rows, jsonl, buf.getvalue(), part, bad)

    def _evict(self) -> None:
        self._flush_pending()
        self._by_map.clear()
        self._by_line.clear()
        self._results.clear()

    # -- per machine
    def text(self, res: Result, m: Machine) -> str:
        if self.fmt == "csv":
            if _CSV_SPECIAL.isdisjoint(m.id) and _CSV_SPECIAL.isdisjoint(m.label):
                return res.csv.replace(MACHINE, m.id).replace(MAP, m.label)
            buf = io.StringIO()
            w = csv.writer(buf)
            for row in res.rows:
                w.writerow([m.id, *(_sub(c, m) for c in csv_cells(row))])
            return buf.getvalue()
        ident = json.dumps(m.id)[1:-1]
        label = json.dumps(m.label)[1:-1]
        return res.jsonl.replace(_J_MACHINE, ident).replace(_J_MAP, label)

    def add(self, raw: str, m: Machine) -> str | None:
        """Account for one machine; its rows as text when rows are written."""
        res = self._result(raw, m)
        self.machines += 1
        self.rows += len(res.rows)
        if res.bad or self.machines <= NAMED_MACHINES:
            self.summary.merge(_renamed(res.part, m))
        else:
            self._pending[id(res)] += 1
            if len(res.examples) < self.summary.examples:
                res.examples.append(m.id)
        return self.text(res, m) if self.fmt else None

    def _flush_pending(self) -> None:
        for key, n in self._pending.items():
            res = self._results[key]
            self.summary.merge_scaled(res.part, n, res.examples)
        self._pending.clear()

    def finish(self) -> None:
        self._flush_pending()


def _sub(cell, m: Machine):
    return cell.replace(MACHINE, m.id).replace(MAP, m.label) if isinstance(cell, str) else cell


def _renamed(part: Summary, m: Machine) -> Summary:
    """A copy of a result's partial summary for one machine: named by its id,
    messages naming its map."""
    import copy

    def msg(text: str) -> str:
        return text.replace(MAP, m.label).replace(MACHINE, m.id)

    s = copy.copy(part)
    s.per_map = {}
    for note in part.per_map.values():  # one map: this machine's
        s.per_map[m.id] = note
    s.patterns = {sig: [count, [m.id]] for sig, (count, _ex) in part.patterns.items()}
    s.bad_inputs = [msg(b) for b in part.bad_inputs]
    s.heat = [[(m.id, [None if c is None else (c[0], msg(c[1])) for c in cells])
               for _name, cells in rows] for rows in part.heat]
    return s


def iter_inventory(paths: list[str]) -> Iterator[tuple[str, Machine]]:
    for path in paths:
        yield from read_inventory(path)


def file_machines(map_paths: list[str]) -> Iterator[tuple[str, Machine]]:
    """--maps files beside an inventory: machines named by their path."""
    for p in map_paths:
        yield "", Machine(p, p, 0, path=p)


def run_inventory(
    spec: MatrixSpec, summary: Summary, fmt: str | None, fh, inventories: list[str],
    map_paths: list[str], progress=None,
) -> InventoryRun:
    """Every machine's rows to `fh` (when given), in inventory order after the
    --maps files; the summary counts machines as maps."""
    run = InventoryRun(spec, summary, fmt)
    if fh is not None and fmt == "csv":
        fh.write(inventory_header())
    write = fh.write if fh is not None else None
    for source in (file_machines(map_paths), iter_inventory(inventories)):
        for raw, m in source:
            text = run.add(raw, m)
            if write is not None:
                write(text)
            if progress is not None and run.machines % 1024 == 0:
                progress(run.rows)
    run.finish()
    summary.notes.append(
        f"{run.machines} machines: {run.distinct} distinct maps after Xen's clean-up, each "
        f"placed once; {run.rows} rows"
    )
    return run
