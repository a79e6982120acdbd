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
import re
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
    """The rows of one distinct (cleaned) map, serialised once (UTF-8
    templates, see _template)."""

    rows: list[dict]
    jsonl: bytes
    csv: bytes
    part: Summary
    bad: bool  # every row is a bad-input row: summarise each machine apart
    examples: list[str] = field(default_factory=list)


def inventory_header() -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(INVENTORY_KEYS)
    return buf.getvalue()


def read_inventory(path: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for every non-blank line of a JSON Lines inventory
    ('-' is stdin)."""
    import sys

    if path == "-":
        yield from _lines(sys.stdin)
        return
    try:
        fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except OSError as err:
        raise MapError(f"{path}: cannot read the inventory: {err.strerror or err}") from None
    with fh:
        yield from _lines(fh)


def _lines(fh) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(fh, 1):
        if raw.strip():
            yield number, raw


# A line that starts with its id (as generated inventories do): the id and the
# rest of the line. Two such lines with the same rest are the same entry but
# for the id, so only the first is decoded and checked (InventoryRun.feed).
_ID_FIRST = re.compile(r'\s*\{\s*"id"\s*:\s*("(?:[^"\\\n]|\\.)+")\s*,')


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
        # "\0" + a map file's path, or the rest of a line after its id -> result
        self._by_line: dict[str, Result] = {}
        self._folder_lines: dict[str, str] = {}  # rest of a line -> its map file
        self._by_map: dict[tuple, Result] = {}
        self._pending: Counter = Counter()  # id(result) -> machines not yet merged
        self._results: dict[int, Result] = {}
        self.machines = 0
        self.distinct = 0  # results computed (distinct cleaned maps, evictions counted)
        self.rows = 0

    # -- results
    def _result(self, m: Machine) -> Result:
        """The result for a decoded machine: by file, else by cleaned map."""
        key = "\0" + m.path if m.path is not None else None
        hit = self._by_line.get(key) if key is not None else None
        if hit is not None:
            return hit
        mp = load_inline(m)
        mkey = (mp.entries, mp.log_nr_pages, mp.log_dom0_mem, mp.xen_version, mp.error)
        res = self._by_map.get(mkey)
        if res is None:
            if len(self._by_map) >= MAX_RESULTS:
                self._evict()
            res = self._by_map[mkey] = self._compute(mp)
            self._results[id(res)] = res
            self.distinct += 1
        if key is not None:
            self._remember(key, res)
        return res

    def _remember(self, key: str, res: Result) -> None:
        if len(self._by_line) >= MAX_LINES_CACHED:
            self._by_line.clear()
        self._by_line[key] = res

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
        return Result(rows, _template(jsonl, _J_MACHINE, _J_MAP),
                      _template(buf.getvalue(), MACHINE, MAP), part, bad)

    def _evict(self) -> None:
        self._flush_pending()
        self._by_map.clear()
        self._by_line.clear()
        self._results.clear()

    # -- per machine
    def text(self, res: Result, m: Machine) -> bytes:
        """The machine's rows, UTF-8: the result's template filled with its id
        and its map's name (one pass of bytes formatting)."""
        if self.fmt == "csv":
            if not (_CSV_SPECIAL.isdisjoint(m.id) and _CSV_SPECIAL.isdisjoint(m.label)):
                buf = io.StringIO()
                w = csv.writer(buf)
                for row in res.rows:
                    w.writerow([m.id, *(_sub(c, m) for c in csv_cells(row))])
                return buf.getvalue().encode()
            return res.csv % {b"m": m.id.encode(), b"p": m.label.encode()}
        return res.jsonl % {b"m": _json_inner(m.id), b"p": _json_inner(m.label)}

    def feed(self, path: str) -> Iterator[bytes | None]:
        """Every machine of one inventory file: its rows (when written)."""
        name = "<stdin>" if path == "-" else path
        folder = "" if path == "-" else os.path.dirname(path)
        self._by_line = {k: v for k, v in self._by_line.items() if k.startswith("\0")}
        self._folder_lines = {}
        for number, raw in read_inventory(path):
            fast = _ID_FIRST.match(raw)
            res = None
            if fast is not None:
                rest = raw[fast.end():]
                res = self._by_line.get(rest)
            if res is not None:
                ident = fast.group(1)
                try:
                    # json.loads refuses what the fast path would not see:
                    # escapes, and control characters a JSON string cannot hold
                    plain = "\\" not in ident and ident.isprintable()
                    ident = ident[1:-1] if plain else json.loads(ident)
                except json.JSONDecodeError:
                    res = None  # a bad escape: the full check below says where
            if res is not None:
                path_ = self._folder_lines.get(rest)
                label = path_ if path_ is not None else f"{name}:{number}"
                m = Machine(ident, label, number, path=path_)
            else:
                m = _machine(raw, name, number, folder)
                res = self._result(m)
                if fast is not None and '"id"' not in rest and json.loads(fast.group(1)) == m.id:
                    self._remember(rest, res)
                    if m.path is not None:
                        self._folder_lines[rest] = m.path
            yield self.add(res, m)

    def add(self, res: Result, m: Machine) -> bytes | None:
        """Account for one machine; its rows when rows are written."""
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


def _json_inner(text: str) -> bytes:
    """`text` as it reads between the quotes of a JSON string."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text.encode()
    return json.dumps(text)[1:-1].encode()


def _template(text: str, machine: str, map_: str) -> bytes:
    """`text` as a bytes %-template: the markers become %(m)s and %(p)s."""
    text = text.replace("%", "%%").replace(machine, "%(m)s").replace(map_, "%(p)s")
    return text.encode()


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




def run_inventory(
    spec: MatrixSpec, summary: Summary, fmt: str | None, fh, inventories: list[str],
    map_paths: list[str], progress=None,
) -> InventoryRun:
    """Every machine's rows to `fh` (when given), in inventory order after the
    --maps files; the summary counts machines as maps."""
    run = InventoryRun(spec, summary, fmt)
    if fh is not None and fmt == "csv":
        fh.write(inventory_header())
    write = None
    if fh is not None:
        # The rows are UTF-8 already: straight to the binary file under the
        # text one (no re-encoding of gigabytes); a text-only stream decodes.
        binary = getattr(fh, "buffer", None)
        if binary is not None:
            fh.flush()
            write = binary.write
        else:
            def write(data: bytes) -> None:
                fh.write(data.decode())
    # --maps files beside an inventory: machines named by their path
    files = (run.add(run._result(m), m) for m in (Machine(p, p, 0, path=p) for p in map_paths))
    # A machine's rows are a few KB: gathered into ~1 MiB writes (a write
    # system call per machine costs more than formatting its rows).
    batch: list[bytes] = []
    size = 0
    try:
        for source in (files, *(run.feed(p) for p in inventories)):
            for text in source:
                if write is not None:
                    batch.append(text)
                    size += len(text)
                    if size >= 1 << 20:
                        write(b"".join(batch))
                        batch, size = [], 0
                if progress is not None and run.machines % 1024 == 0:
                    progress(run.rows)
    finally:
        if batch:  # the machines before a bad line are out, as when streamed
            write(b"".join(batch))
    run.finish()
    summary.notes.append(
        f"{run.machines} machines: {run.distinct} distinct maps after Xen's clean-up, each "
        f"placed once; {run.rows} rows"
    )
    return run
