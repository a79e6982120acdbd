"""The fleet's inputs: paths, directories and globs expanded to image and map
files; each image opened once (only its KernelParams kept), each map read and
cleaned once."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from noteforge.errors import NoteforgeError
from noteforge.maps.model import E820Entry

# Names a directory listing may hold next to the inputs that are never inputs
# (the shared folders carry INDEX.md and PROVENANCE.md; /boot carries
# config-*, System.map-*, initrd.img-*). A file named on the command line is
# always taken.
_SKIP_SUFFIXES = (".md", ".rst", ".json", ".jsonl", ".csv", ".html", ".sha256", ".sig", ".asc")
_SKIP_IMAGE_PREFIXES = ("config-", "system.map", "initrd", "initramfs", "readme")



# --------------------------------------------------------------------------- inputs


def expand_paths(
    specs: Sequence[str], *, images: bool = False, warn: Callable[[str], None] | None = None
) -> list[str]:
    """Files, directories (their regular files, sorted, not recursive) and
    globs, in the order given, each path once. A literal path that does not
    exist is kept: reading it fails and it shows up as a bad-input row. A glob
    that matches nothing is reported through `warn`."""
    out: dict[str, None] = {}
    for spec in specs:
        if glob.has_magic(spec) and not os.path.exists(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches and warn:
                warn(f"{spec}: matches no file")
            for m in matches:
                if os.path.isdir(m):
                    for f in _dir_files(m, images):
                        out.setdefault(f, None)
                elif not _skipped(os.path.basename(m), images):
                    out.setdefault(m, None)
        elif os.path.isdir(spec) and not images and _is_memmap_dir(spec):
            out.setdefault(spec, None)  # read_map reads a /sys/firmware/memmap dump whole
        elif os.path.isdir(spec):
            files = _dir_files(spec, images)
            if not files and warn:
                warn(f"{spec}: directory holds no input file")
            for f in files:
                out.setdefault(f, None)
        else:
            out.setdefault(spec, None)
    return list(out)


def _is_memmap_dir(folder: str) -> bool:
    """A copy of /sys/firmware/memmap: numbered folders holding start/end/type."""
    return os.path.isfile(os.path.join(folder, "0", "start"))


def _skipped(name: str, images: bool) -> bool:
    low = name.lower()
    if low.startswith(".") or low.endswith(_SKIP_SUFFIXES):
        return True
    return images and low.startswith(_SKIP_IMAGE_PREFIXES)


def _dir_files(folder: str, images: bool) -> list[str]:
    return [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if os.path.isfile(os.path.join(folder, name)) and not _skipped(name, images)
    ]


@dataclass(frozen=True)
class ImageInfo:
    """What the matrix keeps of an image: placement's inputs, nothing else.
    Small and picklable, so worker processes can hand it back."""

    path: str
    params: object | None  # placement.KernelParams; None when the image is unreadable
    dom0_capable: bool = True
    broken: str | None = None  # why Xen's note parse gives up (verify warns about it)
    # The file's size: Xen counts the kernel it was handed as a boot module when
    # it sizes dom0 (verify's XenEstimate.boot_modules).
    file_size: int = 0
    error: str | None = None


@dataclass(frozen=True)
class MapInfo:
    """A host map after Xen's clean-up, what its Xen log says about dom0, or
    the reason it could not be read."""

    path: str
    entries: tuple[E820Entry, ...] = ()
    log_nr_pages: int | None = None  # from a "Dom0 memory map:" Xen printed
    log_dom0_mem: str | None = None  # the last dom0_mem= on the logged Xen command line
    xen_version: str | None = None  # as verify reads it from the log's banner
    error: str | None = None


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def load_image(path: str) -> ImageInfo:
    """Open one image (decompressing a bzImage payload once) and keep its
    KernelParams. A NoteforgeError becomes ImageInfo.error, never an exception."""
    return _load(path)[0]


def _load(path: str) -> list[ImageInfo]:
    """ImageInfo of the image at `path`, or of every kernel of the package at
    `path` (named PACKAGE:MEMBER)."""
    from noteforge.image.open import open_image
    from noteforge.packages.find import find_kernels, open_found, package_format
    from noteforge.verify import kernel_params

    try:
        if package_format(path) is None:
            images = [open_image(path)]
        else:
            images = [open_found(k) for k in find_kernels(path)]
        return [
            ImageInfo(
                path=image.path,
                params=kernel_params(image),
                dom0_capable=image.effective.dom0_capable is not False,
                broken=image.effective.broken,
                file_size=image.file_size if image.file_size is not None else _file_size(path),
            )
            for image in images
        ]
    except NoteforgeError as err:
        return [ImageInfo(path=path, params=None, error=str(err))]
    except OSError as err:
        return [ImageInfo(path=path, params=None, error=f"{path}: {err.strerror or err}")]


def load_images(
    paths: Sequence[str], jobs: int = 1, progress: Callable[[ImageInfo], None] | None = None
) -> list[ImageInfo]:
    """load_image for every path, in `jobs` processes, results in input order;
    a package stands for every kernel it holds."""
    results: list[ImageInfo] = []
    if jobs <= 1 or len(paths) <= 1:
        for p in paths:
            infos = _load(p)
            results += infos
            if progress:
                progress(infos[-1])
        return results
    from noteforge.fleet.workers import worker_pool

    with worker_pool(min(jobs, len(paths))) as pool:
        for infos in pool.map(_load, paths):
            results += infos
            if progress:
                progress(infos[-1])
    return results


def load_map(path: str) -> MapInfo:
    """Read one map, run Xen's clean-up on it and keep what verify takes from a
    Xen log (dom0's exact size, dom0_mem=, the Xen version); errors become
    MapInfo.error."""
    from noteforge.maps.read import read_map

    try:
        return map_info(path, read_map(path))
    except NoteforgeError as err:
        return MapInfo(path=path, error=str(err))
    except OSError as err:
        return MapInfo(path=path, error=f"{path}: {err.strerror or err}")


def map_info(path: str, host) -> MapInfo:
    """A HostMap after Xen's clean-up, with what verify takes from a Xen log,
    named `path`."""
    from noteforge.verify import last_dom0_mem
    from noteforge.xen.dom0_mem import nr_pages_from_dom0_log_map
    from noteforge.xen.e820 import clean_map

    log_nr = None
    if host.dom0_log_map is not None:
        log_nr = nr_pages_from_dom0_log_map(host.dom0_log_map, host.entries)
    return MapInfo(
        path=path,
        entries=tuple(clean_map(host).entries),  # a map Xen printed stays as it is
        log_nr_pages=log_nr,
        log_dom0_mem=last_dom0_mem(host.xen_command_line)
        if host.xen_command_line else None,
        xen_version=host.xen_version,  # the banner; read by releases.choose_release
    )
