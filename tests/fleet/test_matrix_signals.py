"""`matrix` stopped by SIGTERM or Ctrl-C (issue 16, item 13): the workers are
terminated (none left orphaned or blocked), the unfinished --out file is
removed, and the exit status is 143 (128 + SIGTERM) or 130, with no traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_process import ENV, NOTEFORGE, listing

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


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


def writing_into(pid: int, folder: Path) -> bool:
    """Does the process hold a file in `folder` open (its unnamed rows file,
    which /proc shows as "FOLDER/#INODE (deleted)")?"""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder) + "/"):
            return True
    return False


@pytest.fixture
def many_maps(tmp_path) -> Path:
    maps = tmp_path / "maps"
    maps.mkdir()
    src = SAMPLES / "framework-laptop-tgl-insyde.dmesg"
    for i in range(4000):  # far more work than the test waits for
        shutil.copyfile(src, maps / f"m{i:05d}.dmesg")
    return maps


def start_matrix(tmp_path: Path, maps: Path, make_folder: bool = True
                 ) -> tuple[subprocess.Popen, set[int]]:
    out = tmp_path / "out" / "rows.jsonl"
    if make_folder:
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
        if len(workers) >= 2 and writing_into(proc.pid, out.parent):  # workers up, rows open
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
    assert list((tmp_path / "out").iterdir()) == []  # no rows file, nothing named beside it
    assert [w for w in workers if alive(w)] == []


def test_matrix_killed_leaves_nothing_in_the_output_folder(tmp_path, many_maps):
    """kill -9 cannot be caught: the rows file is unnamed (O_TMPFILE) until
    the run ends, so the folder keeps its old file and nothing beside it, and
    no worker outlives the run."""
    (tmp_path / "out").mkdir()
    old = tmp_path / "out" / "rows.jsonl"
    old.write_text('{"old": true}\n')
    proc, workers = start_matrix(tmp_path, many_maps, make_folder=False)
    proc.kill()
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert listing(tmp_path / "out") == ["rows.jsonl"]  # the old file, alone
    assert old.read_text() == '{"old": true}\n'
    # The workers die with their parent (PR_SET_PDEATHSIG), so the pipes
    # closed and communicate() returned; none is left waiting on its queue.
    deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
    while [w for w in workers if alive(w)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [w for w in workers if alive(w)] == []
