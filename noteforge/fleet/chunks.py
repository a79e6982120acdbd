"""Maps in chunks over worker processes, rows back in order."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from noteforge.fleet.inputs import load_map
from noteforge.fleet.output import csv_cells
from noteforge.fleet.rows import MatrixSpec, map_rows
from noteforge.fleet.summary import Summary
from noteforge.fleet.workers import worker_pool

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
    # worker_pool: an interrupted run (Ctrl-C, SIGTERM, an error in the
    # consumer closing this generator) terminates its workers at once.
    with worker_pool(jobs, _init_worker, (spec, fmt, caps)) as pool:
        pending = []
        for i in starts:
            pending.append(pool.submit(_chunk_in_worker, list(map_paths[i : i + size]), i))
            if len(pending) >= 2 * jobs:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()
