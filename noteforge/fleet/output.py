"""Streaming rows to JSON Lines or CSV through an unnamed file in the target
folder, named at the end."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from noteforge.errors import UsageError, WriteError
from noteforge.fleet.rows import ROW_KEYS
from noteforge.fleet.summary import entry_text

# --------------------------------------------------------------------------- output


class AtomicFile:
    """A text file that appears at `path` complete or not at all: an unnamed
    file in the target's folder (write.atomic, O_TMPFILE) named only when the
    writer finishes cleanly. A failed, interrupted or killed (-9) run leaves
    the old file alone and nothing beside it."""

    def __init__(self, path: str | os.PathLike, newline: str | None = None):
        self.path = Path(path)
        self._newline = newline
        self._file = None
        self.fh: io.TextIOBase | None = None

    def __enter__(self) -> io.TextIOBase:
        from noteforge.write.atomic import AtomicFile as NewFile

        self._file = NewFile(self.path, mode=0o644 & ~_umask())
        # A second descriptor for the text layer: closing it flushes the text
        # without closing the one commit() names.
        self.fh = open(os.dup(self._file.fd), "w", encoding="utf-8",
                       newline=self._newline)
        return self.fh

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.fh is not None and self._file is not None
        try:
            try:
                self.fh.close()
            except OSError as err:
                if exc_type is None:
                    raise WriteError(f"{self.path}: cannot write: {err.strerror or err}; "
                                     "nothing written") from err
            if exc_type is None:
                self._file.commit()
        finally:
            self._file.__exit__(exc_type, exc, tb)  # discards an uncommitted file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        row["xen_release"] or "", row["xen_release_source"] or "",
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
