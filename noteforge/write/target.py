"""Where a write may go, decided by what the paths are, not by how they are
spelled.

* `-o OUTPUT` is used as given, never resolved: a symbolic link there is
  refused (noteforge writes neither through it nor over it: a link planted in
  /tmp would otherwise lead a root-run command to replace the file it names),
  and an OUTPUT that is the input itself (same device and inode: `a.elf`,
  `./a.elf`, a hard or symbolic link to it) is refused without --in-place.
* `--in-place` rewrites the file the input's name leads to. The input is
  opened once and locked (flock, exclusive, not waiting) for the whole run, and
  just before the new file is renamed over it the name must still lead to the
  same file, unchanged (device, inode, size, mtime): two writers on one file
  never both succeed with one change lost. A hard-linked or read-only input is
  refused without --force, saying why; owner and extended attributes are kept
  where the filesystem and our privileges allow (AtomicFile.keep_from).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from noteforge.errors import ImageError, UsageError, WriteError


@dataclass(frozen=True)
class Identity:
    """What says 'the same file, unchanged' (an in-place rewrite makes a new inode)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _stat(path: Path, *, follow: bool = True) -> os.stat_result | None:
    try:
        return os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise WriteError(f"{path}: cannot look at it: {err.strerror}") from None


def output_path(src: str | os.PathLike, output: str | os.PathLike, *,
                in_place_hint: bool = True) -> Path:
    """The path to write for `-o output`, after refusing the dangerous ones:
    the input itself (same device and inode) and a symbolic link."""
    out = Path(output)
    src_st = _stat(Path(src))
    out_st = _stat(out)
    if src_st is not None and out_st is not None and \
            (src_st.st_dev, src_st.st_ino) == (out_st.st_dev, out_st.st_ino):
        how = "use --in-place to rewrite it" if in_place_hint else "choose another output"
        raise UsageError(f"{output}: is the input {src} (same device and inode); {how}")
    link = _stat(out, follow=False)
    if link is not None and stat.S_ISLNK(link.st_mode):
        raise WriteError(f"{out}: is a symbolic link (to {os.readlink(out)}); refusing to "
                         "write through it or replace it: remove the link or name the file "
                         "itself")
    if out_st is not None and not stat.S_ISREG(out_st.st_mode):
        raise WriteError(f"{out}: exists and is not a regular file")
    return out


class LockedInput:
    """The input of an --in-place write, opened once, locked, and checked
    again just before the rename (see check_unchanged)."""

    def __init__(self, src: str | os.PathLike, *, force: bool = False):
        self.name = str(src)
        self.path = Path(os.path.realpath(src))
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise ImageError(f"{src}: cannot open ({err.strerror})") from None
        try:
            self._lock()
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode):
                raise WriteError(f"{src}: not a regular file; --in-place rewrites regular "
                                 "files only")
            # Said only when the write would replace the file: setting what
            # is already there changes nothing and needs no permission.
            self.replace_refused: str | None = None
            if st.st_nlink > 1 and not force:
                self.replace_refused = (
                    f"{src}: has {st.st_nlink} hard links; --in-place gives this name a new "
                    "file and the other links keep the old one; use -o OUTPUT, or --force "
                    "to do it anyway")
            elif not st.st_mode & stat.S_IWUSR and not force:
                self.replace_refused = (
                    f"{src}: is read-only (mode {st.st_mode & 0o7777:04o}); refusing to "
                    "replace it without --force")
            self.stat = st
            self.identity = Identity.of(st)
            self.check_unchanged()
        except BaseException:
            os.close(self.fd)
            raise

    def _lock(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise WriteError(f"{self.name}: another process is writing it (it holds a "
                                 "lock on the file); nothing written") from None
            # A filesystem without flock (some network filesystems): the
            # identity check before the rename still guards the write.

    def check_replaceable(self) -> None:
        """Refuse to replace a hard-linked or read-only input without --force."""
        if self.replace_refused is not None:
            raise WriteError(self.replace_refused)

    def check_unchanged(self) -> None:
        """The input's name still leads to the file that was read, and that
        file is unchanged; otherwise another writer came between us."""
        now = _stat(self.path)
        if now is None or Identity.of(now) != self.identity or \
                Identity.of(os.fstat(self.fd)) != self.identity:
            raise WriteError(f"{self.name}: changed while noteforge was writing it (another "
                             "writer?); nothing written, run again")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # also releases the lock
            self.fd = -1

    def __enter__(self) -> LockedInput:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
