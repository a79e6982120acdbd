"""Every input the fuzzers (fuzz/) ever crashed on, replayed through the same
harness: tests/data/fuzz-regressions/<harness>/<name>. A harness raises on
anything but a result or a clean one-line NoteforgeError (fuzz/common.py), so
each file must now pass. atheris is not needed: the harnesses import without it.

To add one: minimize it (python fuzz/minimize.py HARNESS CRASH -o FILE), put it
under tests/data/fuzz-regressions/HARNESS/ with a name saying what it was, and
add a regression test with the rebuilt input where the bug's module is tested.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = ROOT / "tests" / "data" / "fuzz-regressions"
sys.path.insert(0, str(ROOT / "fuzz"))

CASES = sorted(p for p in REGRESSIONS.glob("*/*") if p.is_file())
HARNESSES = ("image", "bzimage", "notes", "e820", "placement", "writer")
# Inputs whose bug is reported but not fixed yet: xfail until the fix lands,
# then remove the entry (the test XPASSes meanwhile).
KNOWN_OPEN: dict[str, str] = {}


def test_regressions_exist_for_known_harnesses():
    assert CASES, "no fuzz regression inputs"
    for p in CASES:
        assert p.parent.name in HARNESSES, p


def _case(p: Path):
    key = f"{p.parent.name}/{p.name}"
    marks = [pytest.mark.xfail(reason=KNOWN_OPEN[key], strict=False)] if key in KNOWN_OPEN else []
    return pytest.param(p, id=key, marks=marks)


@pytest.mark.parametrize("path", [_case(p) for p in CASES])
def test_fuzz_regression(path, tmp_path, monkeypatch):
    monkeypatch.setenv("NOTEFORGE_FUZZ_TMP", str(tmp_path))
    harness = importlib.import_module(f"fuzz_{path.parent.name}")
    harness.test_one(path.read_bytes())


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_accepts_its_seed_shapes(name, tmp_path, monkeypatch):
    """Each harness runs on a few inputs of its own format without atheris,
    so CI's short fuzz step cannot fail for a reason the suite does not see."""
    monkeypatch.setenv("NOTEFORGE_FUZZ_TMP", str(tmp_path))
    harness = importlib.import_module(f"fuzz_{name}")
    for data in (b"", b"\0" * 64, b"\x7fELF" + b"\x02\x01\x01" + b"\0" * 200, b"\xff" * 300):
        harness.test_one(data)
