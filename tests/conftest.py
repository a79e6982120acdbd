"""Test layout: tests/<part>/ follows noteforge/<part>/ (image, maps, xen, write,
fleet, cli); the pipelines' tests (verify, advice, designs, logcheck, samples) sit
here; tests/realxen boots Debian's Xen under QEMU; tests/xenref drives Xen's own
readnotes and libelf. Shared helpers (xenref, test_writer_support, the kernel
parameter tables of test_placement) are imported by name from any folder, so
every folder is on sys.path."""

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent
for folder in (_TESTS, *(p for p in sorted(_TESTS.iterdir()) if p.is_dir() and p.name not in (
        "data", "realxen", "xenref", "__pycache__"))):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch):
    """Human output is laid out for $COLUMNS (noteforge.render.term): every
    test sees the 80 columns of a pipe or a CI log, whatever the shell that
    runs pytest exports."""
    monkeypatch.setenv("COLUMNS", "80")
