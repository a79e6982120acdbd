"""Atomic output: the target is the old file or the complete new one, never a
partial one, including when the writer is killed with SIGKILL at any point."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_process import listing
from test_writer_support import linux_612_like, sha256, write

from noteforge.errors import WriteError
from noteforge.image.open import open_image
from noteforge.write import atomic
from noteforge.write.atomic import AtomicFile

MAIN = Path(__file__).resolve().parents[2]


def test_commit_makes_the_file_appear_complete(tmp_path):
    target = tmp_path / "out"
    with AtomicFile(target, mode=0o640) as f:
        f.write_at(0, b"hello ")
        f.write_at(6, b"world")
        assert listing(tmp_path) == []  # unnamed until commit
        assert Path(f.path).read_bytes() == b"hello world"
        f.commit()
    assert target.read_bytes() == b"hello world"
    assert target.stat().st_mode & 0o7777 == 0o640
    assert listing(tmp_path) == ["out"]


def test_replacing_an_existing_file(tmp_path):
    target = tmp_path / "out"
    target.write_bytes(b"old")
    inode = target.stat().st_ino
    with AtomicFile(target, mode=0o600) as f:
        f.write_at(0, b"new contents")
        f.commit()
    assert target.read_bytes() == b"new contents"
    assert target.stat().st_ino != inode
    assert listing(tmp_path) == ["out"]


def test_leaving_without_commit_discards(tmp_path):
    target = tmp_path / "out"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), AtomicFile(target) as f:
        f.write_at(0, b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert listing(tmp_path) == ["out"]


def test_copy_from_another_file(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(bytes(range(256)) * 5000)
    fd = os.open(src, os.O_RDONLY)
    try:
        with AtomicFile(tmp_path / "dst") as f:
            f.copy_from(fd, src.stat().st_size)
            f.commit()
    finally:
        os.close(fd)
    assert (tmp_path / "dst").read_bytes() == src.read_bytes()


def test_fallback_without_o_tmpfile(tmp_path, monkeypatch):
    real_open = os.open

    def no_tmpfile(path, flags, *a, **kw):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "not supported")
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(atomic.os, "open", no_tmpfile)
    with pytest.raises(RuntimeError), AtomicFile(tmp_path / "a") as f:
        hidden = listing(tmp_path)
        assert len(hidden) == 1 and hidden[0].startswith(".a.")
        assert hidden[0].endswith(atomic.TEMP_SUFFIX)
        raise RuntimeError("boom")
    assert listing(tmp_path) == []
    with AtomicFile(tmp_path / "a", mode=0o644) as f:
        f.write_at(0, b"ok")
        f.commit()
    assert listing(tmp_path) == ["a"] and (tmp_path / "a").read_bytes() == b"ok"


def test_refuses_a_missing_directory_or_a_non_file(tmp_path):
    with pytest.raises(WriteError, match="does not exist"):
        AtomicFile(tmp_path / "nope" / "out")
    (tmp_path / "d").mkdir()
    with pytest.raises(WriteError, match="not a regular file"):
        AtomicFile(tmp_path / "d")


# --- SIGKILL at every stage ------------------------------------------------------

CHILD = """
import sys
from noteforge.write import apply as writer
src, out = sys.argv[1], sys.argv[2]
kw = {"in_place": True} if out == "-" else {"output": out}
writer.set_reloc(src, align=0x400000, **kw)
print("done")
"""

STAGES = ["created", "copied", "written", "verified"]


def run_and_kill(tmp_path: Path, src: Path, out: str, stage: str) -> bool:
    """Run the writer in a child stopped at `stage`, SIGKILL it there.
    Returns False if the child never reached the stage (it then finished)."""
    env = dict(os.environ, NOTEFORGE_TEST_PAUSE=f"{stage}:60",
               PYTHONPATH=str(MAIN) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(src), out], cwd=tmp_path,
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        line = b""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or b"noteforge-test-pause" in line:
                break
        if b"noteforge-test-pause " + stage.encode() not in line:
            proc.wait(timeout=60)
            return False
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_with_a_new_output_leaves_nothing(tmp_path, stage):
    src = write(tmp_path / "vmlinux", linux_612_like())
    before = sha256(src)
    assert run_and_kill(tmp_path, src, str(tmp_path / "out"), stage)
    assert sha256(src) == before
    assert listing(tmp_path) == ["vmlinux"]  # no output, no temporary file


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_in_place_leaves_the_input_intact(tmp_path, stage):
    src = write(tmp_path / "vmlinux", linux_612_like())
    before = sha256(src)
    assert run_and_kill(tmp_path, src, "-", stage)
    assert sha256(src) == before
    assert listing(tmp_path) == ["vmlinux"]


def test_sigkill_between_naming_and_rename(tmp_path):
    # Replacing a file needs a hidden name for a moment (linkat cannot
    # replace): a kill there leaves the input intact and, beside it, the
    # complete and already proven new file under that hidden name.
    src = write(tmp_path / "vmlinux", linux_612_like())
    before = sha256(src)
    assert run_and_kill(tmp_path, src, "-", "linked")
    assert sha256(src) == before
    names = listing(tmp_path)
    assert len(names) == 2 and names[1] == "vmlinux"
    hidden = tmp_path / names[0]
    assert names[0].startswith(".vmlinux.") and names[0].endswith(atomic.TEMP_SUFFIX)
    img = open_image(hidden)
    assert img.effective.phys32_reloc.align == 0x400000
    assert hidden.stat().st_size == src.stat().st_size


def test_child_without_a_pause_finishes(tmp_path):
    src = write(tmp_path / "vmlinux", linux_612_like())
    assert not run_and_kill(tmp_path, src, str(tmp_path / "out"), "no-such-stage")
    assert open_image(tmp_path / "out").effective.phys32_reloc.align == 0x400000
