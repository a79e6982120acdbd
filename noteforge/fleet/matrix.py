"""The fleet check: many kernel images against many machines' maps.

verify answers for one image on one map; the matrix answers the same question
for every (image, map, dom0 size, policy) combination, with the same names and
meanings as `verify --json`, and without repeating work:

- each image is opened once (in parallel processes, because a 60 MB bzImage
  costs a decompression) and only its KernelParams, a few ints, are kept;
- each map is read and cleaned once (Xen's clean-up, xen/arch/x86/e820.c);
- dom0's map is derived once per (map, dom0 size) (pvh_setup_e820);
- only place() runs per (image, policy), which is microseconds.

Rows are produced lazily, map after map, so a run's memory does not grow with
the number of maps; the Summary keeps counts, a bounded list of failing maps and
a bounded heat map. Writers stream rows to JSON Lines or CSV through a temporary
file in the target folder that is renamed into place at the end.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from noteforge.errors import NoteforgeError, UsageError, WriteError
from noteforge.maps.model import E820Entry, type_name
from noteforge.xen.abi import GAP_TYPE

# The keys of one result row, in CSV column order. image..blocking are the
# issue's contract; dom0_pages, dom0_capable and warnings are verify's JSON
# names for the same facts; message is the error text of a bad-input row.
ROW_KEYS = (
    "image",
    "map",
    "dom0_mem",
    "policy",
    "loads",
    "reason",
    "base",
    "entry",
    "relocated",
    "blocking",
    "dom0_pages",
    "dom0_capable",
    "warnings",
    "message",
)

BAD_INPUT = "bad-input"
IN_PLACE = "in-place"
RELOCATED = "relocated"

# Names a directory listing may hold next to the inputs that are never inputs
# (the shared folders carry INDEX.md and PROVENANCE.md; /boot carries
# config-*, System.map-*, initrd.img-*). A file named on the command line is
# always taken.
_SKIP_SUFFIXES = (".md", ".rst", ".json", ".jsonl", ".csv", ".html", ".sha256", ".sig", ".asc")
_SKIP_IMAGE_PREFIXES = ("config-", "system.map", "initrd", "initramfs", "readme")


# --------------------------------------------------------------------------- inputs


def expand_paths(
    specs: Sequence[str], *, images: bool = False, warn: Callable[[str], None] | None = None
) -> list[str]:
    """Files, directories (their regular files, sorted, not recursive) and
    globs, in the order given, each path once. A literal path that does not
    exist is kept: reading it fails and it shows up as a bad-input row. A glob
    that matches nothing is reported through `warn`."""
    out: dict[str, None] = {}
    for spec in specs:
        if glob.has_magic(spec) and not os.path.exists(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches and warn:
                warn(f"{spec}: matches no file")
            for m in matches:
                if os.path.isdir(m):
                    for f in _dir_files(m, images):
                        out.setdefault(f, None)
                elif not _skipped(os.path.basename(m), images):
                    out.setdefault(m, None)
        elif os.path.isdir(spec) and not images and _is_memmap_dir(spec):
            out.setdefault(spec, None)  # read_map reads a /sys/firmware/memmap dump whole
        elif os.path.isdir(spec):
            files = _dir_files(spec, images)
            if not files and warn:
                warn(f"{spec}: directory holds no input file")
            for f in files:
                out.setdefault(f, None)
        else:
            out.setdefault(spec, None)
    return list(out)


def _is_memmap_dir(folder: str) -> bool:
    """A copy of /sys/firmware/memmap: numbered folders holding start/end/type."""
    return os.path.isfile(os.path.join(folder, "0", "start"))


def _skipped(name: str, images: bool) -> bool:
    low = name.lower()
    if low.startswith(".") or low.endswith(_SKIP_SUFFIXES):
        return True
    return images and low.startswith(_SKIP_IMAGE_PREFIXES)


def _dir_files(folder: str, images: bool) -> list[str]:
    return [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if os.path.isfile(os.path.join(folder, name)) and not _skipped(name, images)
    ]


@dataclass(frozen=True)
class ImageInfo:
    """What the matrix keeps of an image: placement's inputs, nothing else.
    Small and picklable, so worker processes can hand it back."""

    path: str
    params: object | None  # placement.KernelParams; None when the image is unreadable
    dom0_capable: bool = True
    broken: str | None = None  # why Xen's note parse gives up (verify warns about it)
    # The file's size: Xen counts the kernel it was handed as a boot module when
    # it sizes dom0 (verify's XenEstimate.boot_modules).
    file_size: int = 0
    error: str | None = None


@dataclass(frozen=True)
class MapInfo:
    """A host map after Xen's clean-up, what its Xen log says about dom0, or
    the reason it could not be read."""

    path: str
    entries: tuple[E820Entry, ...] = ()
    log_nr_pages: int | None = None  # from a "Dom0 memory map:" Xen printed
    log_dom0_mem: str | None = None  # the last dom0_mem= on the logged Xen command line
    xen_version: str | None = None  # as verify reads it from the log's banner
    error: str | None = None


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def load_image(path: str) -> ImageInfo:
    """Open one image (decompressing a bzImage payload once) and keep its
    KernelParams. A NoteforgeError becomes ImageInfo.error, never an exception."""
    from noteforge.image.open import open_image
    from noteforge.verify import kernel_params

    try:
        image = open_image(path)
        return ImageInfo(
            path=path,
            params=kernel_params(image),
            dom0_capable=image.effective.dom0_capable is not False,
            broken=image.effective.broken,
            file_size=_file_size(path),
        )
    except NoteforgeError as err:
        return ImageInfo(path=path, params=None, error=str(err))
    except OSError as err:
        return ImageInfo(path=path, params=None, error=f"{path}: {err.strerror or err}")


def load_images(
    paths: Sequence[str], jobs: int = 1, progress: Callable[[ImageInfo], None] | None = None
) -> list[ImageInfo]:
    """load_image for every path, in `jobs` processes, results in input order."""
    results: list[ImageInfo] = []
    if jobs <= 1 or len(paths) <= 1:
        for p in paths:
            results.append(load_image(p))
            if progress:
                progress(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        for info in pool.map(load_image, paths):
            results.append(info)
            if progress:
                progress(info)
    return results


def load_map(path: str) -> MapInfo:
    """Read one map, run Xen's clean-up on it and keep what verify takes from a
    Xen log (dom0's exact size, dom0_mem=, the Xen version); errors become
    MapInfo.error."""
    from noteforge.maps.read import read_map
    from noteforge.verify import last_dom0_mem, xen_version_from_banner
    from noteforge.xen.dom0_mem import nr_pages_from_dom0_log_map
    from noteforge.xen.e820 import clean_map

    try:
        host = read_map(path)
        log_nr = None
        if host.dom0_log_map is not None:
            log_nr = nr_pages_from_dom0_log_map(host.dom0_log_map, host.entries)
        return MapInfo(
            path=path,
            entries=tuple(clean_map(host).entries),  # a map Xen printed stays as it is
            log_nr_pages=log_nr,
            log_dom0_mem=last_dom0_mem(host.xen_command_line)
            if host.xen_command_line else None,
            xen_version=xen_version_from_banner(host.xen_version) if host.xen_version else None,
        )
    except NoteforgeError as err:
        return MapInfo(path=path, error=str(err))
    except OSError as err:
        return MapInfo(path=path, error=f"{path}: {err.strerror or err}")


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class MatrixSpec:
    """Everything a run needs besides the maps, which are streamed."""

    images: tuple[ImageInfo, ...]
    dom0_mems: tuple[str | None, ...] = (None,)
    policies: tuple[str, ...] = ("xen",)
    xen_version: str | None = None

    @property
    def variants(self) -> list[tuple[str | None, str]]:
        """(dom0_mem, policy) pairs in row order."""
        return [(d, p) for d in self.dom0_mems for p in self.policies]


def _blocking_dict(entry: E820Entry | None) -> dict | None:
    """As Placement.to_dict() writes `blocking` (an address range the map does
    not describe is a synthetic GAP_TYPE entry named "not in map")."""
    if entry is None:
        return None
    d = entry.to_dict()
    if entry.type == GAP_TYPE:
        d["type_name"] = "not in map"
    return d


def _bad_rows(
    spec: MatrixSpec, map_path: str, dom0_mem: str | None, message_for
) -> Iterator[dict]:
    for img in spec.images:
        for policy in spec.policies:
            yield _row(img.path, map_path, dom0_mem, policy, message=message_for(img),
                       dom0_capable=img.dom0_capable)


def _row(
    image: str,
    map_path: str,
    dom0_mem: str | None,
    policy: str,
    *,
    message: str,
    dom0_capable: bool,
    dom0_pages: int | None = None,
) -> dict:
    return {
        "image": image,
        "map": map_path,
        "dom0_mem": dom0_mem,
        "policy": policy,
        "loads": False,
        "reason": BAD_INPUT,
        "base": None,
        "entry": None,
        "relocated": False,
        "blocking": None,
        "dom0_pages": dom0_pages,
        "dom0_capable": dom0_capable,
        "warnings": [],
        "message": message,
    }


def map_rows(spec: MatrixSpec, mp: MapInfo) -> Iterator[dict]:
    """Every row for one map: dom0 sizes, then images, then policies.

    The same steps as verify.verify() without --align-from, initrd or
    command line, in the same order, each done once for all the rows that
    share it: dom0's size (from the map's Xen log, "all", or
    dom0_compute_nr_pages, estimated) and dom0's map per (map, dom0 size), then
    per image and policy the placement and the two checks outside it
    (initdom_check_parms, the dom0 allocation)."""
    from noteforge.verify import dom0_check, estimate_is_uncertain, outcome
    from noteforge.xen.dom0_build import dom0_map
    from noteforge.xen.placement import place

    xen_version = spec.xen_version or mp.xen_version
    # Worked out once per map: the check depends on the Xen version only.
    refused_if_not_dom0, not_dom0 = dom0_check(False, xen_version)
    opts = {"align_override": None, "cmdline": "", "initrd_size": None}
    for dom0_mem in spec.dom0_mems:
        if mp.error is not None:
            yield from _bad_rows(spec, mp.path, dom0_mem, lambda img, e=mp.error: e)
            continue
        try:
            sizes = _Dom0Sizes(spec, mp, dom0_mem)
            d0 = dom0_map(mp.entries, sizes.nr_pages)
        except NoteforgeError as err:
            msg = f"{mp.path}: dom0_mem {dom0_mem}: {err}"
            yield from _bad_rows(spec, mp.path, dom0_mem, lambda img, e=msg: e)
            continue
        d0_entries, d0_warnings = d0.entries, list(d0.warnings)
        for img in spec.images:
            if img.params is None:
                for policy in spec.policies:
                    yield _row(img.path, mp.path, dom0_mem, policy, message=img.error or "",
                               dom0_capable=img.dom0_capable, dom0_pages=d0.nr_pages)
                continue
            size = sizes.for_image(img)
            ranged = estimate_is_uncertain(size)
            for policy in spec.policies:
                try:
                    pl = place(img.params, d0_entries, policy, **opts)
                except NoteforgeError as err:
                    yield _row(img.path, mp.path, dom0_mem, policy, message=str(err),
                               dom0_capable=img.dom0_capable, dom0_pages=d0.nr_pages)
                    continue
                warnings = list(size.warnings) if size is not None else []
                if img.broken:
                    warnings.append(f"Xen's note parse fails: {img.broken}")
                if not img.dom0_capable:
                    warnings.append(not_dom0)
                loads, reason, message = outcome(
                    pl, refused=refused_if_not_dom0 and not img.dom0_capable, size=size
                )
                warnings.extend(pl.warnings)
                warnings.extend(d0_warnings)
                if ranged:
                    warnings.extend(sizes.sensitivity(img.params, policy, opts, size, pl))
                yield {
                    "image": img.path,
                    "map": mp.path,
                    "dom0_mem": dom0_mem,
                    "policy": policy,
                    "loads": loads,
                    "reason": reason,
                    "base": pl.base,
                    "entry": pl.entry,
                    "relocated": pl.relocated,
                    "blocking": _blocking_dict(pl.blocking),
                    "dom0_pages": d0.nr_pages,
                    "dom0_capable": img.dom0_capable,
                    "warnings": warnings,
                    "message": message,
                }


class _Dom0Sizes:
    """dom0's size on one map for one --dom0-mem value, as verify decides it:
    the Xen log's own Dom0 memory map when the user gives no size, else
    dom0_mem (the user's, or the log's dom0_mem=), "all" meaning all RAM, else
    dom0_compute_nr_pages estimated with the kernel file as a boot module.

    The boot modules only move the "Xen fails to build dom0" threshold (fails,
    may_fail and the words about it), never nr_pages, and that threshold is
    monotonic in their size: when the largest image does not come near it, the
    one Dom0Size computed for it is what every smaller image gets too. Only
    near the limit is the size computed per image."""

    def __init__(self, spec: MatrixSpec, mp: MapInfo, dom0_mem: str | None):
        from noteforge.xen.dom0_mem import XenEstimate, compute_nr_pages

        self._compute = compute_nr_pages
        self._estimate = XenEstimate
        self._entries = mp.entries
        self.shared = None
        self._cache: dict[int, object] = {}
        self._maps: dict[int, tuple] = {}  # dom0 maps for the plausible size range
        if dom0_mem is None and mp.log_nr_pages is not None:
            self.mem = None
            self.nr_pages = mp.log_nr_pages
            return
        self.mem = dom0_mem if dom0_mem is not None else mp.log_dom0_mem
        if self.mem is not None and self.mem.strip().lower() == "all":
            self.mem = None
            self.nr_pages = None
            return
        self._top = max((i.file_size for i in spec.images if i.params is not None), default=0)
        self.shared = self._size(self._top)
        self.nr_pages = self.shared.nr_pages

    def _size(self, boot_modules: int):
        size = self._cache.get(boot_modules)
        if size is None:
            size = self._compute(self.mem, self._entries,
                                 estimate=self._estimate(boot_modules=boot_modules))
            self._cache[boot_modules] = size
        return size

    def sensitivity(self, params, policy: str, opts: dict, size, at) -> list[str]:
        """verify._range_sensitivity, with dom0's map for the smallest and the
        largest plausible size derived once per map instead of once per row,
        and no placement redone on a map equal to the one `at` came from."""
        from noteforge.verify import sensitivity_warning
        from noteforge.xen.dom0_build import dom0_map
        from noteforge.xen.placement import place

        alternatives = []
        for label, pages in (("smallest", size.low), ("largest", size.high)):
            if pages == self.nr_pages:
                continue  # the same map: the same verdict as `at`
            entries = self._maps.get(pages)
            if entries is None:
                entries = self._maps[pages] = dom0_map(self._entries, pages).entries
            alternatives.append((label, pages, place(params, entries, policy, **opts)))
        return sensitivity_warning(alternatives, at)

    def for_image(self, img: ImageInfo):
        if self.shared is None:
            return None
        b = img.file_size
        if 0 < b <= self._top and not self.shared.may_fail:
            return self.shared
        size = self._size(b)
        if size.nr_pages != self.nr_pages:  # not expected: nr_pages ignores the modules
            raise NoteforgeError(f"{img.path}: dom0 size depends on the boot modules")
        return size


def iter_rows(spec: MatrixSpec, map_paths: Iterable[str]) -> Iterator[dict]:
    """All rows, map after map, reading each map once as it comes."""
    for path in map_paths:
        yield from map_rows(spec, load_map(path))


# ------------------------------------------------------------------ map chunks


@dataclass
class Chunk:
    """The result of a run of consecutive maps: their rows already serialised
    (JSON Lines or CSV text, or None when rows are not kept) and a partial
    Summary, so the parent process only writes text and merges counts."""

    first_map: int
    maps: int
    rows: int
    text: str | None
    summary: Summary


_WORKER: tuple | None = None


def _init_worker(spec: MatrixSpec, fmt: str | None, caps: dict) -> None:
    global _WORKER
    _WORKER = (spec, fmt, caps)


def chunk_work(
    spec: MatrixSpec, paths: Sequence[str], first_map: int, fmt: str | None, caps: dict
) -> Chunk:
    """Rows for `paths` (maps first_map..), serialised to `fmt`, and their summary.
    The heat map is only collected for maps still under the report's cap."""
    summary = Summary(
        [i.path for i in spec.images], spec.variants,
        max_listed_maps=caps.get("max_listed_maps", 200),
        heat_max_maps=max(0, caps.get("heat_max_maps", 400) - first_map),
        keep_all_bad=True,
    )
    buf = io.StringIO() if fmt else None
    writer = csv.writer(buf) if fmt == "csv" else None
    n = 0
    for path in paths:
        for row in map_rows(spec, load_map(path)):
            summary.add(row)
            if writer is not None:
                writer.writerow(csv_cells(row))
            elif buf is not None:
                buf.write(json.dumps(row, separators=(",", ":")))
                buf.write("\n")
            n += 1
    summary.finish()
    summary.heat_truncated = 0  # the parent counts truncation over the whole run
    return Chunk(first_map, len(paths), n, buf.getvalue() if buf is not None else None,
                 summary)


def _chunk_in_worker(paths: list[str], first_map: int) -> Chunk:
    assert _WORKER is not None
    spec, fmt, caps = _WORKER
    return chunk_work(spec, paths, first_map, fmt, caps)


def chunk_size(maps: int, jobs: int) -> int:
    """Small enough to balance the workers and bound memory, large enough
    that pickling a chunk costs little next to computing it."""
    return max(4, min(64, maps // max(1, jobs * 8) or 1))


def iter_chunks(
    spec: MatrixSpec,
    map_paths: Sequence[str],
    *,
    jobs: int = 1,
    fmt: str | None = None,
    caps: dict | None = None,
    chunk: int | None = None,
) -> Iterator[Chunk]:
    """The whole run as Chunks in map order, computed in `jobs` processes.
    At most 2*jobs chunks are in flight, so memory is bounded however many
    maps there are; merge each chunk's summary with Summary.merge."""
    caps = caps or {}
    size = chunk or chunk_size(len(map_paths), jobs)
    starts = range(0, len(map_paths), size)
    if jobs <= 1 or len(map_paths) <= size:
        for i in starts:
            yield chunk_work(spec, map_paths[i : i + size], i, fmt, caps)
        return
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(spec, fmt, caps)
    ) as pool:
        pending = []
        for i in starts:
            pending.append(pool.submit(_chunk_in_worker, list(map_paths[i : i + size]), i))
            if len(pending) >= 2 * jobs:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


# --------------------------------------------------------------------------- summary


MAX_WARNING_KINDS = 50
_WARNING_TAG = re.compile(r"^([a-z0-9]+(?:-[a-z0-9]+)+): ")


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
        # warning kind -> rows carrying it (at most MAX_WARNING_KINDS kinds)
        self.warning_counts: Counter = Counter()

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
        if oc == BAD_INPUT:
            self._note_bad(row["message"] or f"{row['image']} on {row['map']}")
        if not row["dom0_capable"]:
            self.not_dom0_capable.add(i)
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
        if self.maps <= self.heat_max_maps:
            self._cur_cells = [[None] * len(self.images) for _ in self.variants]
        else:
            self._cur_cells = None
            self.heat_truncated += 1

    def _flush(self) -> None:
        if self._cur_map is None:
            return
        m = self._cur_map
        if self._cur_cells is not None:
            for v, cells in enumerate(self._cur_cells):
                self.heat[v].append((m, cells))
        if self._cur_fail or self._cur_moves:
            self.maps_noted += 1
            if len(self.per_map) < self.max_listed_maps:
                self.per_map[m] = (self._cur_fail, self._cur_moves)
        if self._cur_moves:
            self.maps_relocating += 1
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
        for kind, n in part.warning_counts.items():
            self._count_warning(kind, n)

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

    def variant_label(self, v: int) -> str:
        dom0_mem, policy = self.variants[v]
        return f"policy {policy}, dom0_mem {dom0_mem if dom0_mem is not None else 'default'}"

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
            "warnings": dict(self.warning_counts.most_common()),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- output


class AtomicFile:
    """A text file written under a temporary name in the target's folder and
    renamed over the target only when the writer finishes cleanly: a reader
    never sees half a result, and a failed run leaves the old file alone."""

    def __init__(self, path: str | os.PathLike, newline: str | None = None):
        self.path = Path(path)
        self._newline = newline
        self._tmp: str | None = None
        self.fh: io.TextIOBase | None = None

    def __enter__(self) -> io.TextIOBase:
        folder = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                             dir=folder)
        except OSError as err:
            raise WriteError(f"{self.path}: cannot create a file in {folder}: "
                             f"{err.strerror or err}") from err
        self.fh = open(fd, "w", encoding="utf-8", newline=self._newline)
        return self.fh

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.fh is not None and self._tmp is not None
        try:
            self.fh.close()
        except OSError:
            if exc_type is None:
                os.unlink(self._tmp)
                raise
        if exc_type is not None:
            with _suppress_os():
                os.unlink(self._tmp)
            return
        try:
            os.chmod(self._tmp, 0o644 & ~_umask())
            os.replace(self._tmp, self.path)
        except OSError as err:
            with _suppress_os():
                os.unlink(self._tmp)
            raise WriteError(f"{self.path}: cannot write: {err.strerror or err}") from err


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _suppress_os:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, OSError)


def write_html_atomic(path: str | os.PathLike, text: str) -> None:
    with AtomicFile(path) as fh:
        fh.write(text)


def output_format(path: str) -> str:
    """'jsonl' or 'csv', from the file name."""
    low = path.lower()
    if low.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if low.endswith(".csv"):
        return "csv"
    raise UsageError(f"--out {path}: expected a .jsonl or .csv file name")


def csv_header() -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(ROW_KEYS)
    return buf.getvalue()


def csv_cells(row: dict) -> list:
    """One CSV line: addresses in hex (as people read them), the blocking
    entry as Xen prints it, warnings joined with ' | '."""
    def hx(v):
        return "" if v is None else f"{v:#x}"

    return [
        row["image"], row["map"], row["dom0_mem"] or "", row["policy"],
        "yes" if row["loads"] else "no", row["reason"] or "", hx(row["base"]),
        hx(row["entry"]), "yes" if row["relocated"] else "no", entry_text(row["blocking"]),
        "" if row["dom0_pages"] is None else row["dom0_pages"],
        "yes" if row["dom0_capable"] else "no", " | ".join(row["warnings"]),
        row["message"] or "",
    ]


class RowWriter:
    """Streams rows to FILE.jsonl or FILE.csv (atomically, see AtomicFile).
    Use as a context manager; write(row) per row."""

    def __init__(self, path: str):
        self.format = output_format(path)
        self._atomic = AtomicFile(path, newline="" if self.format == "csv" else None)
        self._csv = None
        self._fh = None
        self.count = 0

    def __enter__(self) -> RowWriter:
        self._fh = self._atomic.__enter__()
        if self.format == "csv":
            self._fh.write(csv_header())
            self._csv = csv.writer(self._fh)
        return self

    def write(self, row: dict) -> None:
        if self._csv is not None:
            self._csv.writerow(csv_cells(row))
        else:
            self._fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._atomic.__exit__(exc_type, exc, tb)
