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

Tests can stop the writer at named points with NOTEFORGE_TEST_PAUSE=
"stage[,stage]:seconds" (see pause_point) to kill it there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sys
import time
from pathlib import Path

from noteforge.errors import WriteError

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

    def __init__(self, target: str | os.PathLike, *, mode: int = 0o644):
        self.target = Path(target)
        self.mode = mode & 0o7777
        self.fd: int | None = None
        self._named: Path | None = None  # fallback: a hidden name exists from the start
        self._committed = False
        parent = self.target.parent
        if not parent.is_dir():
            raise WriteError(f"{self.target}: directory {parent} does not exist")
        if self.target.exists() and not self.target.is_file():
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

    def copy_from(self, src_fd: int, size: int) -> None:
        """Copy `size` bytes of src_fd (from offset 0) to the start of the file,
        in the kernel where possible."""
        done = 0
        try:
            while done < size:
                n = os.copy_file_range(src_fd, self.fd, min(size - done, _COPY_CHUNK), done, done)
                if n == 0:
                    break
                done += n
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise WriteError(f"{self.target}: copy failed: {err.strerror}") from err
        while done < size:  # fallback (and the rest after a short copy)
            chunk = os.pread(src_fd, min(size - done, 8 << 20), done)
            if not chunk:
                raise WriteError(f"{self.target}: input ended at offset {done:#x}, "
                                 f"expected {size:#x} bytes")
            self.write_at(done, chunk)
            done += len(chunk)

    def write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, offset)
            view = view[n:]
            offset += n

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def sync(self) -> None:
        os.fsync(self.fd)

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
            if not target.exists():
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


def file_mode(path: str | os.PathLike) -> int:
    return os.stat(path).st_mode & 0o7777
