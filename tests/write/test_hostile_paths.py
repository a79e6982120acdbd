"""Hostile paths and faults (issue 16, items 1-4, 11, 12): the writer and
`extract` never rewrite the input without --in-place, never write through a
symbolic link, never lose a change to a concurrent writer, keep what they can
of the file they replace, and leave nothing behind on a full disk or a kill.

Each test asserts the exact one-line message (status 2) and that nothing was
modified or left behind (file hashes and directory listings).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_process import ENV, NOTEFORGE, listing, refused
from test_writer_support import linux_612_like, sha256, write

from noteforge.cli.app import main
from noteforge.image import synth
from noteforge.image.open import open_image


def reloc_align(path: Path) -> int:
    return open_image(path).effective.phys32_reloc.align


def guest_version(path: Path) -> str:
    return open_image(path).effective.guest_version


def bzimage_of(elf: bytes) -> bytes:
    return synth.build_bzimage(synth.compress(elf, "gzip"))


# --- 1. the output is the input -------------------------------------------------


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused_without_in_place(tmp_path, capsys, monkeypatch,
                                                              spelling):
    monkeypatch.chdir(tmp_path)
    src = write(tmp_path / "a.elf", linux_612_like())
    out = {"same": "a.elf", "dot": "./a.elf", "symlink": "link.elf", "hardlink": "hard.elf"}
    if spelling == "symlink":
        os.symlink("a.elf", tmp_path / "link.elf")
    if spelling == "hardlink":
        os.link(src, tmp_path / "hard.elf")
    before, names = sha256(src), listing(tmp_path)
    msg = refused(capsys, "set-reloc", "a.elf", "--align", "4M", "-o", out[spelling])
    assert msg == (f"noteforge: error: {out[spelling]}: is the input a.elf (same device and "
                   "inode); use --in-place to rewrite it")
    assert sha256(src) == before and listing(tmp_path) == names


def test_extract_refuses_a_link_to_its_input(tmp_path, capsys):
    bz = write(tmp_path / "bz", bzimage_of(linux_612_like()))
    os.symlink(bz, tmp_path / "link")
    before = sha256(bz)
    msg = refused(capsys, "extract", bz, "-o", tmp_path / "link")
    assert msg == (f"noteforge: error: {tmp_path / 'link'}: is the input {bz} (same device "
                   "and inode); choose another output")
    assert sha256(bz) == before and listing(tmp_path) == ["bz", "link"]


# --- 2. a symbolic link at the output path ----------------------------------------


@pytest.mark.parametrize("command", ["set-reloc", "extract"])
@pytest.mark.parametrize("dangling", [False, True])
def test_planted_symlink_is_neither_followed_nor_replaced(tmp_path, capsys, command, dangling):
    victim = tmp_path / "victim"  # the root-owned file a planted link points at
    if not dangling:
        write(victim, b"precious\n")
    src = write(tmp_path / "k", linux_612_like() if command == "set-reloc"
                else bzimage_of(linux_612_like()))
    planted = tmp_path / "planted.elf"
    os.symlink(victim, planted)
    names = listing(tmp_path)
    extra = ["--align", "4M"] if command == "set-reloc" else []
    msg = refused(capsys, command, src, *extra, "-o", planted)
    assert msg == (f"noteforge: error: {planted}: is a symbolic link (to {victim}); refusing "
                   "to write through it or replace it: remove the link or name the file itself")
    assert listing(tmp_path) == names and os.readlink(planted) == str(victim)
    if not dangling:
        assert victim.read_bytes() == b"precious\n"


def test_in_place_through_a_symlink_rewrites_the_file_it_names(tmp_path, capsys):
    # --in-place names the input: its link is followed (the file read is the
    # file rewritten) and the link stays a link.
    src = write(tmp_path / "vmlinux-6.12", linux_612_like())
    os.symlink("vmlinux-6.12", tmp_path / "vmlinux")
    assert main(["set-reloc", str(tmp_path / "vmlinux"), "--align", "4M", "--in-place"]) == 0
    capsys.readouterr()
    assert os.readlink(tmp_path / "vmlinux") == "vmlinux-6.12"
    assert reloc_align(src) == 0x400000
    assert listing(tmp_path) == ["vmlinux", "vmlinux-6.12"]


# --- 3. concurrent --in-place writers ---------------------------------------------


def start_paused(args: list[str], stage: str, seconds: float) -> subprocess.Popen:
    env = dict(ENV, NOTEFORGE_TEST_PAUSE=f"{stage}:{seconds}")
    proc = subprocess.Popen([*NOTEFORGE, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        line = proc.stderr.readline()
        assert line, f"writer never reached {stage}"
        if f"noteforge-test-pause {stage}" in line:
            return proc


def test_second_in_place_writer_is_refused_while_the_first_holds_the_lock(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    first = start_paused(["set-reloc", str(src), "--align", "4M", "--in-place"], "written", 8)
    try:
        msg = refused(capsys, "set-note", src, "--type", "GUEST_VERSION", "--value", "9.9",
                      "--in-place")
        assert msg == (f"noteforge: error: {src}: another process is writing it (it holds a "
                       "lock on the file); nothing written")
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert reloc_align(src) == 0x400000 and guest_version(src) == "2.6"
    assert listing(tmp_path) == ["vmlinux"]


def test_input_replaced_during_the_write_is_not_overwritten(tmp_path):
    # Another tool replaced the file after noteforge read it: the rename would
    # throw that change away, so noteforge refuses at the last moment.
    src = write(tmp_path / "vmlinux", linux_612_like())
    first = start_paused(["set-reloc", str(src), "--align", "4M", "--in-place"], "written", 8)
    try:
        other = write(tmp_path / "other", linux_612_like(), mode=0o644)
        os.replace(other, src)
        theirs = sha256(src)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 2 and out == ""
    assert err.splitlines()[-1] == (f"noteforge: error: {src}: changed while noteforge was "
                                    "writing it (another writer?); nothing written, run again")
    assert sha256(src) == theirs and listing(tmp_path) == ["vmlinux"]


def test_concurrent_in_place_writers_never_lose_a_reported_change(tmp_path):
    # 12 racing pairs: each writer that reports success must find its change in
    # the final file (before the fix, 20 of 20 pairs both said "proof passed").
    src = tmp_path / "vmlinux"
    image = linux_612_like()
    outcomes = []
    for _ in range(12):
        write(src, image)
        a = subprocess.Popen([*NOTEFORGE, "set-reloc", str(src),
                              "--align", "4M", "--in-place"], env=ENV, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        b = subprocess.Popen([*NOTEFORGE, "set-note", str(src),
                              "--type", "GUEST_VERSION", "--value", "9.9", "--in-place"],
                             env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        (_, a_err), (_, b_err) = a.communicate(timeout=120), b.communicate(timeout=120)
        for proc, err in ((a, a_err), (b, b_err)):
            assert proc.returncode in (0, 2), err
            if proc.returncode == 2:
                assert err.count("\n") == 1 and ("another process is writing it" in err
                                                 or "changed while noteforge" in err), err
        if a.returncode == 0:
            assert reloc_align(src) == 0x400000
        if b.returncode == 0:
            assert guest_version(src) == "9.9"
        assert listing(tmp_path) == ["vmlinux"]
        outcomes.append((a.returncode, b.returncode))
    assert all(0 in pair for pair in outcomes)  # a refusal only when the other one wrote


# --- 4. what --in-place keeps, and what it refuses --------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_in_place_keeps_owner_mode_and_xattrs(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like(), mode=0o640)
    os.chown(src, 1234, 5678)
    os.setxattr(src, "user.noteforge.test", b"kept")
    assert main(["set-reloc", str(src), "--align", "4M", "--in-place"]) == 0
    capsys.readouterr()
    st = src.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o640)
    assert os.getxattr(src, "user.noteforge.test") == b"kept"
    assert reloc_align(src) == 0x400000


def test_in_place_keeps_xattrs_as_an_ordinary_user(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    try:
        os.setxattr(src, "user.origin", b"debian")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    assert main(["set-reloc", str(src), "--align", "4M", "--in-place"]) == 0
    capsys.readouterr()
    assert os.getxattr(src, "user.origin") == b"debian"


def test_in_place_refuses_a_hard_linked_input_without_force(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like())
    os.link(src, tmp_path / "vmlinux.bak")
    before = sha256(src)
    msg = refused(capsys, "set-reloc", src, "--align", "4M", "--in-place")
    assert msg == (f"noteforge: error: {src}: has 2 hard links; --in-place gives this name a "
                   "new file and the other links keep the old one; use -o OUTPUT, or --force "
                   "to do it anyway")
    assert sha256(src) == before and listing(tmp_path) == ["vmlinux", "vmlinux.bak"]
    assert main(["set-reloc", str(src), "--align", "4M", "--in-place", "--force"]) == 0
    capsys.readouterr()
    assert reloc_align(src) == 0x400000 and sha256(tmp_path / "vmlinux.bak") == before


def test_in_place_refuses_a_read_only_input_without_force(tmp_path, capsys):
    src = write(tmp_path / "vmlinux", linux_612_like(), mode=0o444)
    before = sha256(src)
    msg = refused(capsys, "set-reloc", src, "--align", "4M", "--in-place")
    assert msg == (f"noteforge: error: {src}: is read-only (mode 0444); refusing to replace it "
                   "without --force")
    assert sha256(src) == before and listing(tmp_path) == ["vmlinux"]
    assert main(["set-reloc", str(src), "--align", "4M", "--in-place", "--force"]) == 0
    capsys.readouterr()
    assert reloc_align(src) == 0x400000 and src.stat().st_mode & 0o7777 == 0o444


@pytest.mark.parametrize("shape", ["read-only", "hard-linked"])
def test_in_place_that_changes_nothing_needs_no_force(tmp_path, capsys, shape):
    """The refusal is about replacing the file: setting the values it already
    has replaces nothing, so it succeeds (status 0), says so, and leaves the
    file as it was (same inode, same mtime), read-only or hard-linked."""
    src = write(tmp_path / "vmlinux", linux_612_like(), mode=0o444 if shape == "read-only"
                else 0o644)
    if shape == "hard-linked":
        os.link(src, tmp_path / "vmlinux.bak")
    align = reloc_align(src)
    st = src.stat()
    assert main(["set-reloc", str(src), "--align", hex(align), "--in-place"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nothing changed: ") and out.rstrip().endswith(
        f"{src} left untouched")
    after = src.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_nlink) == (
        st.st_ino, st.st_mtime_ns, st.st_nlink)


# --- 11. a full disk ----------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    path.mkdir()
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                        capture_output=True).returncode if os.geteuid() == 0 else 1
    if rc != 0:
        pytest.skip("cannot mount a tmpfs here (the RLIMIT_FSIZE test covers the fault)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("command", ["set-reloc", "extract", "set-reloc-in-place"])
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, command):
    image = linux_612_like()  # 2.1 MiB: cannot fit in a 1 MiB tmpfs
    with small_tmpfs(tmp_path / "small", "1m") as small:
        if command == "set-reloc-in-place":
            # A 3 MiB filesystem holding the 2.1 MiB image: no room for a second copy.
            with small_tmpfs(tmp_path / "s3", "3m") as s3:
                src = write(s3 / "vmlinux", image)
                before = sha256(src)
                msg = refused(capsys, "set-reloc", src, "--align", "4M", "--in-place")
                assert msg == (f"noteforge: error: {src}: cannot write: No space left on "
                               "device; nothing written")
                assert sha256(src) == before and listing(s3) == ["vmlinux"]
            return
        if command == "set-reloc":
            src = write(tmp_path / "vmlinux", image)
            args = ["set-reloc", src, "--align", "4M"]
        else:
            src = write(tmp_path / "bz", bzimage_of(image))
            args = ["extract", src]
        before = sha256(src)
        out = small / "out"
        msg = refused(capsys, *args, "-o", out)
        assert msg == f"noteforge: error: {out}: cannot write: No space left on device; " \
                      "nothing written"
        assert listing(small) == [] and sha256(src) == before
        assert os.statvfs(small).f_bfree == os.statvfs(small).f_blocks  # all space back


FSIZE_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
from noteforge.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["set-reloc", "extract"])
def test_file_size_limit_is_one_line_and_leaves_nothing(tmp_path, command):
    # The same fault without root: RLIMIT_FSIZE (Python ignores SIGXFSZ, so
    # the write fails with EFBIG).
    image = linux_612_like()
    src = write(tmp_path / "k", image if command == "set-reloc" else bzimage_of(image))
    before = sha256(src)
    extra = ["--align", "4M"] if command == "set-reloc" else []
    r = subprocess.run([sys.executable, "-c", FSIZE_CHILD, command, str(src), *extra, "-o",
                        str(tmp_path / "out")], env=ENV, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"noteforge: error: {tmp_path / 'out'}: cannot write: File too large; "
                        "nothing written\n")
    assert listing(tmp_path) == ["k"] and sha256(src) == before


# --- 12. kill -9 at any moment ------------------------------------------------------


def kill_after(args: list[str], delay: float, env: dict) -> int:
    proc = subprocess.Popen([*NOTEFORGE, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=60)


@pytest.mark.parametrize("command", ["extract", "set-reloc"])
def test_kill_9_loop_leaves_nothing_behind(tmp_path, command):
    # A 24 MiB ELF in a bzImage; killed at 16 random moments from start-up
    # to the end of the write: afterwards the output directory holds the
    # input and at most the complete output, and $TMPDIR is empty.
    elf = synth.pvh_elf(synth.xen_note(18, 0x1000A30), tail=random.Random(16).randbytes(24 << 20))
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    bz = write(work / "bz", bzimage_of(elf))
    out = work / "vmlinux"
    args = ["extract", str(bz), "-o", str(out)] if command == "extract" else \
        ["set-reloc", str(bz), "--align", "4M", "--force", "-o", str(out)]
    env = dict(ENV, TMPDIR=str(tmp))
    start = time.monotonic()
    assert kill_after(args, 600, env) == 0  # one full run: how long a run takes here
    full = time.monotonic() - start
    expected = sha256(out)
    rng = random.Random(12)
    killed = 0
    for _ in range(16):
        out.unlink(missing_ok=True)
        rc = kill_after(args, rng.uniform(0, full), env)
        killed += rc == -signal.SIGKILL
        assert listing(tmp) == []
        assert listing(work) in (["bz"], ["bz", "vmlinux"])
        if out.exists():
            assert sha256(out) == expected  # complete: killed after the rename, or done
    assert killed >= 8  # most runs were killed on the way


@pytest.mark.parametrize("stage", ["created", "copied", "written", "verified"])
def test_kill_9_set_reloc_on_a_bzimage_at_every_stage(tmp_path, stage):
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    bz = write(work / "bz", bzimage_of(linux_612_like()))
    env = dict(ENV, TMPDIR=str(tmp), NOTEFORGE_TEST_PAUSE=f"{stage}:60")
    proc = subprocess.Popen([*NOTEFORGE, "set-reloc", str(bz),
                             "--align", "4M", "-o", str(work / "vmlinux")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            line = proc.stderr.readline()
            assert line, "the writer never reached the stage"
            if f"noteforge-test-pause {stage}" in line:
                break
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert listing(work) == ["bz"] and listing(tmp) == []

