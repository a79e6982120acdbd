"""`matrix` stopped by SIGTERM or Ctrl-C (issue 16, item 13): the workers are
terminated (none left orphaned or blocked), the unfinished --out file is
removed, and the exit status is 143 (128 + SIGTERM) or 130, with no traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
NOTEFORGE = [sys.executable, "-c",
             "import sys; from noteforge.cli.app import main; sys.exit(main())"]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:  # the process has exited
        return found
    for task in tasks:
        try:
            with (task / "children").open() as fh:
                found |= {int(c) for c in fh.read().split()}
        except FileNotFoundError:  # a thread ended between the listing and the read
            continue
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def many_maps(tmp_path) -> Path:
    maps = tmp_path / "maps"
    maps.mkdir()
    src = SAMPLES / "framework-laptop-tgl-insyde.dmesg"
    for i in range(4000):  # far more work than the test waits for
        shutil.copyfile(src, maps / f"m{i:05d}.dmesg")
    return maps


def start_matrix(tmp_path: Path, maps: Path) -> tuple[subprocess.Popen, set[int]]:
    out = tmp_path / "out" / "rows.jsonl"
    out.parent.mkdir()
    proc = subprocess.Popen(
        [*NOTEFORGE, "matrix", "--images", str(SAMPLES / "synthetic-linux-6.12-amd64.elf"),
         str(SAMPLES / "synthetic-linux-6.1-amd64.elf"), "--maps", str(maps), "-j", "2",
         "--out", str(out)],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell's background job starts with SIGINT ignored, and Python keeps
        # an ignored SIGINT: give matrix the terminal's default, as a user has.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
    while time.monotonic() < deadline and proc.poll() is None:
        workers = children(proc.pid)
        if len(workers) >= 2 and any(out.parent.iterdir()):  # workers up, .tmp open
            return proc, workers
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"matrix never started its workers: {proc.communicate()}")


@pytest.mark.parametrize("how,status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_matrix_stops_its_workers_and_removes_its_output(tmp_path, many_maps, how, status):
    proc, workers = start_matrix(tmp_path, many_maps)
    try:
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:  # Ctrl-C: the terminal signals the whole process group
            for pid in (proc.pid, *workers):
                os.kill(pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err == ""  # quiet: the status says it
    assert out == ""
    assert list((tmp_path / "out").iterdir()) == []  # no rows file, no hidden .tmp
    assert [w for w in workers if alive(w)] == []
