"""Where the unpacked Debian Xen 4.17 tools live.

The folder is the result of `dpkg-deb -x` of xen-utils-4.17 and its libraries
(libxenmisc4.17, libxentoollog1, libxentoolcore1, libxencall1,
libxenforeignmemory1, libxengnttab1, libxenevtchn1, libxendevicemodel1,
libxenstore4, libxenhypfs1) into one root, so it holds:

    <root>/usr/lib/xen-4.17/bin/readnotes
    <root>/usr/lib/x86_64-linux-gnu/libxenguest.so.4.17   (+ the other libxen*.so.*)

Looked up:
  1. $NOTEFORGE_XENTOOLS (the root itself); when set, nothing else is tried, so a
     wrong value shows up as "absent" instead of silently using another copy;
  2. else <cache>/xen-utils-4.17, then <cache>/readnotes, where <cache> is
     $NOTEFORGE_CACHE or ~/.cache/noteforge (scripts/fetch-debian's cache).
Nothing here downloads anything: scripts/fetch-debian --readnotes does that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

READNOTES_REL = Path("usr/lib/xen-4.17/bin/readnotes")
LIBDIR_REL = Path("usr/lib/x86_64-linux-gnu")
LIBXENGUEST = "libxenguest.so.4.17"
# Folder names tried under the cache, in order.
CACHE_SUBDIRS = ("xen-utils-4.17", "readnotes")


@dataclass(frozen=True)
class XenTools:
    root: Path

    @property
    def readnotes(self) -> Path:
        return self.root / READNOTES_REL

    @property
    def libdir(self) -> Path:
        return self.root / LIBDIR_REL

    @property
    def libxenguest(self) -> Path:
        return self.libdir / LIBXENGUEST

    def env(self) -> dict[str, str]:
        """Environment for a child process that loads the unpacked libraries."""
        env = dict(os.environ)
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = str(self.libdir) + (os.pathsep + old if old else "")
        return env

    def complete(self) -> bool:
        return self.readnotes.is_file() and self.libxenguest.exists()


def cache_dir() -> Path:
    env = os.environ.get("NOTEFORGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "noteforge"


def candidates() -> list[Path]:
    env = os.environ.get("NOTEFORGE_XENTOOLS")
    if env:
        return [Path(env).expanduser()]
    return [cache_dir() / name for name in CACHE_SUBDIRS]


def find_xentools() -> XenTools | None:
    """The first complete tools folder, or None."""
    for root in candidates():
        tools = XenTools(root)
        if tools.complete():
            return tools
    return None
