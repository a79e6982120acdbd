"""Atomic output files: a kernel image is either the old one or the complete,
verified new one, never something in between.

The new file is built as an *unnamed* file in the target's directory
(O_TMPFILE), so a process killed at any point before the commit leaves
nothing behind: the kernel frees an unnamed inode when its last descriptor
closes. The file gets its final mode at once; commit: fsync the data, give
the inode a name, rename that name over the target, fsync the directory. A new target gets its name
directly (linkat refuses to replace, which is what we want then); replacing an
existing file needs a short-lived hidden name `.NAME.XXXXXXXX.nf-tmp` in the
same directory because linkat cannot replace. Where O_TMPFILE is not
supported (some filesystems), the hidden name is created first and removed on
any failure that Python sees.

Write errors (a full disk, a file size limit) become one WriteError line:
"OUT: cannot write: No space left on device; nothing written"; the unnamed
file goes with its descriptor. A sparse input stays sparse: only its data
extents are copied (SEEK_DATA/SEEK_HOLE, copy_file_range), and the holes are
left as holes by the final ftruncate.

Tests can stop the writer at named points with NOTEFORGE_TEST_PAUSE=
"stage[,stage]:seconds" (see pause_point) to kill it there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from noteforge.errors import WriteError
from noteforge.write.pages import data_extents

TEST_PAUSE_ENV = "NOTEFORGE_TEST_PAUSE"
TEMP_SUFFIX = ".nf-tmp"
_COPY_CHUNK = 1 << 30


def pause_point(stage: str) -> None:
    """Test hook: sleep at `stage` when NOTEFORGE_TEST_PAUSE names it, after
    telling stderr (so a test knows when to send SIGKILL)."""
    spec = os.environ.get(TEST_PAUSE_ENV)
    if not spec or ":" not in spec:
        return
    stages, _, seconds = spec.rpartition(":")
    if stage not in stages.split(","):
        return
    print(f"noteforge-test-pause {stage}", file=sys.stderr, flush=True)
    time.sleep(float(seconds))


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


class AtomicFile:
    """A new file for `target`, invisible until commit().

    Use as a context manager: leaving the block without commit() (an
    exception, a failed proof) discards the file. `path` names the unfinished
    file for readers in this process (e.g. the post-write proof)."""

    def __init__(self, target: str | os.PathLike, *, mode: int = 0o644,
                 before_replace: Callable[[], None] | None = None):
        self.target = Path(target)
        self.mode = mode & 0o7777
        self.fd: int | None = None
        self._named: Path | None = None  # fallback: a hidden name exists from the start
        self._committed = False
        # Called just before the rename over an existing target (the in-place
        # writer checks there that its input is still the file it read).
        self._before_replace = before_replace
        parent = self.target.parent
        if not parent.is_dir():
            raise WriteError(f"{self.target}: directory {parent} does not exist")
        try:
            st = os.lstat(self.target)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            # A symbolic link too: the rename would replace the link itself,
            # which is not what a caller naming it can have meant.
            raise WriteError(f"{self.target}: exists and is not a regular file")
        try:
            self.fd = os.open(parent, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise WriteError(f"{self.target}: cannot create a file in {parent}: "
                                 f"{err.strerror}") from err
            self._open_named()
        # The final mode from the start: the file is unnamed (or hidden) until
        # commit, and the post-write proof checks the mode before the rename.
        os.fchmod(self.fd, self.mode)
        pause_point("created")

    def _open_named(self) -> None:
        for _ in range(16):
            name = _temp_name(self.target)
            try:
                self.fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
            except OSError as err:
                raise WriteError(f"{self.target}: cannot create {name}: {err.strerror}") from err
            self._named = name
            return
        raise WriteError(f"{self.target}: cannot find a free temporary name")

    # -- writing -------------------------------------------------------------

    @property
    def path(self) -> Path:
        """A path this process can open to read the unfinished file."""
        if self._named is not None:
            return self._named
        return Path(f"/proc/self/fd/{self.fd}")

    def _failed(self, err: OSError) -> WriteError:
        return WriteError(f"{self.target}: cannot write: {err.strerror}; nothing written")

    def keep_from(self, st: os.stat_result, src_fd: int) -> None:
        """Give the new file the owner and extended attributes of the file it
        replaces, where the filesystem and our privileges allow (an owner
        change needs CAP_CHOWN; security.* and trusted.* attributes may need
        more). chown clears set-id bits, so the mode is set again after."""
        with contextlib.suppress(OSError):
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                os.fchown(self.fd, st.st_uid, st.st_gid)
        try:
            names = os.listxattr(src_fd)
        except OSError:
            names = []
        for name in names:
            with contextlib.suppress(OSError):
                os.setxattr(self.fd, name, os.getxattr(src_fd, name))
        os.fchmod(self.fd, self.mode)

    def copy_from(self, src_fd: int, size: int) -> None:
        """Copy `size` bytes of src_fd (from offset 0) to the start of the file,
        in the kernel where possible, data extents only: holes stay holes."""
        for start, end in data_extents(src_fd, size):
            self._copy_range(src_fd, start, end)
        try:
            if os.fstat(self.fd).st_size < size:
                os.ftruncate(self.fd, size)  # a trailing hole
        except OSError as err:
            raise self._failed(err) from err

    def _copy_range(self, src_fd: int, start: int, end: int) -> None:
        done = start
        try:
            while done < end:
                n = os.copy_file_range(src_fd, self.fd, min(end - done, _COPY_CHUNK), done, done)
                if n == 0:
                    break
                done += n
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise self._failed(err) from err
        while done < end:  # fallback (and the rest after a short copy)
            try:
                chunk = os.pread(src_fd, min(end - done, 8 << 20), done)
            except OSError as err:
                raise WriteError(f"{self.target}: cannot read the input at offset {done:#x}: "
                                 f"{err.strerror}; nothing written") from err
            if not chunk:
                raise WriteError(f"{self.target}: input ended at offset {done:#x}, "
                                 f"expected {end:#x} bytes")
            self.write_at(done, chunk)
            done += len(chunk)

    def write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(self.fd, view, offset)
                view = view[n:]
                offset += n
        except OSError as err:
            raise self._failed(err) from err

    def truncate(self, size: int) -> None:
        try:
            os.ftruncate(self.fd, size)
        except OSError as err:
            raise self._failed(err) from err

    def sync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError as err:
            raise self._failed(err) from err

    # -- finishing -----------------------------------------------------------

    def commit(self) -> None:
        """fsync, chmod, then make the file appear as `target` in one rename."""
        if self._committed:
            return
        self.sync()
        pause_point("verified")
        target = self.target
        if self._named is None:
            # New target: linkat gives the inode its final name atomically and
            # refuses (EEXIST) if someone created the target meanwhile.
            if not os.path.lexists(target):
                if self._before_replace is not None:
                    self._before_replace()
                try:
                    self._link(target)
                    self._finish()
                    return
                except FileExistsError:
                    pass
            for _ in range(16):
                name = _temp_name(target)
                try:
                    self._link(name)
                except FileExistsError:
                    continue
                self._named = name
                break
            else:
                raise WriteError(f"{target}: cannot find a free temporary name")
        pause_point("linked")
        if self._before_replace is not None:
            self._before_replace()
        try:
            os.replace(self._named, target)
        except OSError as err:
            raise WriteError(f"{target}: cannot rename {self._named.name} over it: "
                             f"{err.strerror}") from err
        self._named = None
        self._finish()

    def _link(self, name: Path) -> None:
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N is the documented way to
        # name an O_TMPFILE inode without CAP_DAC_READ_SEARCH (open(2)).
        procfd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(str(self.fd), name, src_dir_fd=procfd, follow_symlinks=True)
        except FileExistsError:
            raise
        except OSError as err:
            raise WriteError(f"{self.target}: cannot name the new file: {err.strerror}; "
                             "nothing written") from err
        finally:
            os.close(procfd)

    def _finish(self) -> None:
        self._committed = True
        os.close(self.fd)
        self.fd = None
        dfd = os.open(self.target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def discard(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self._named is not None and not self._committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._named)
            self._named = None

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc) -> None:
        if not self._committed:
            self.discard()


def scratch_file(what: str) -> int:
    """An unnamed read-write file in $TMPDIR (O_TMPFILE), gone when its last
    descriptor closes, so a killed run leaves nothing; where O_TMPFILE is not
    supported, a named one unlinked at once."""
    import tempfile

    tmpdir = tempfile.gettempdir()
    try:
        return os.open(tmpdir, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            raise WriteError(f"{what}: cannot create a temporary file in {tmpdir}: "
                             f"{err.strerror}") from err
    try:
        fd, name = tempfile.mkstemp(prefix=".noteforge-", dir=tmpdir)
    except OSError as err:
        raise WriteError(f"{what}: cannot create a temporary file in {tmpdir}: "
                         f"{err.strerror}") from err
    os.unlink(name)
    return fd


def file_mode(path: str | os.PathLike) -> int:
    return os.stat(path).st_mode & 0o7777
