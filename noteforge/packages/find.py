"""Which kernels a path holds: an image file (one kernel), a package (every
kernel inside), or a directory (every image and package in it). Packages
are told apart from images by content: an ar archive whose first member is
debian-binary, an RPM lead, or a (compressed) tar archive."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from noteforge.errors import ImageError, UsageError
from noteforge.packages import limits
from noteforge.packages.layout import config_for, short_name
from noteforge.packages.members import Members


@dataclass(frozen=True)
class FoundKernel:
    """One kernel and, when there is one, the configuration it was built
    with, as found beside it (in its package or its directory)."""

    name: str  # how reports name it: the image's path, or PACKAGE:MEMBER
    package: str | None  # the package path, or None for an image on disk
    package_format: str | None  # "deb" | "rpm" | "tar"
    member: str | None  # the kernel's path inside the package
    data: bytes | None  # the image's bytes (read out of a package), or None: read `name`
    config_name: str | None = None  # where the configuration came from
    config_text: str | None = None

    @property
    def path(self) -> str:
        return self.name


def package_format(path: str) -> str | None:
    """"deb", "rpm", "tar" (Arch and other tarball packages) or None (not a
    package: an image, or something else for the image reader to judge)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    from noteforge.packages.deb import AR_MAGIC
    from noteforge.packages.rpm import RPM_MAGIC

    if head.startswith(AR_MAGIC):
        return "deb"
    if head.startswith(RPM_MAGIC):
        return "rpm"
    if head.startswith(b"\x7fELF"):
        return None
    from noteforge.packages.arch import is_compressed_tar

    return "tar" if is_compressed_tar(path, head) else None


def read_members(path: str, fmt: str) -> Members:
    if fmt == "deb":
        from noteforge.packages.deb import read_deb

        return read_deb(path)
    if fmt == "rpm":
        from noteforge.packages.rpm import read_rpm

        return read_rpm(path)
    from noteforge.packages.arch import read_arch

    return read_arch(path)


@dataclass(frozen=True)
class Scanned:
    """What one target holds: its kernels, and every configuration file of its
    packages by member path (a kernel in another package given beside it may
    use one: Debian 7.x ships the image in linux-binary-*, the config in
    linux-base-*)."""

    target: str
    kernels: tuple[FoundKernel, ...]
    configs: dict[str, tuple[str, str]]  # member -> (PACKAGE:MEMBER, text)


def scan_package(path: str, fmt: str) -> Scanned:
    members = read_members(path, fmt)
    configs = {m: (f"{path}:{m}", data.decode("utf-8", "replace"))
               for m, data in members.configs.items()}
    found = []
    for member, data in members.kernels.items():
        name, text = configs.get(config_for(member), (None, None))
        found.append(FoundKernel(
            name=f"{path}:{member}", package=path, package_format=fmt, member=member,
            data=data, config_name=name, config_text=text,
        ))
    return Scanned(path, tuple(found), configs)


def kernels_in_package(path: str, fmt: str) -> list[FoundKernel]:
    return list(scan_package(path, fmt).kernels)


def with_configs_from(kernels: list[FoundKernel],
                      configs: dict[str, tuple[str, str]]) -> list[FoundKernel]:
    """Each packaged kernel without a configuration of its own gets the one at
    its configuration path in `configs` (from the other packages given)."""
    out = []
    for k in kernels:
        if k.config_text is None and k.member is not None:
            hit = configs.get(config_for(k.member))
            if hit is not None:
                k = dataclasses.replace(k, config_name=hit[0], config_text=hit[1])
        out.append(k)
    return out


def config_beside(path: str) -> tuple[str | None, str | None]:
    """The configuration shipped beside an image on disk: /boot/config-V for
    /boot/vmlinuz-V, lib/modules/V/config for lib/modules/V/vmlinuz."""
    folder, base = os.path.split(path)
    if base.startswith(("vmlinuz-", "vmlinux-")):
        candidate = os.path.join(folder, "config-" + base[len("vmlinuz-"):])
    elif base in ("vmlinuz", "vmlinux"):
        candidate = os.path.join(folder, "config")
    else:
        return None, None
    try:
        with open(candidate, "rb") as f:
            data = f.read(limits.MAX_CONFIG + 1)
    except OSError:
        return None, None
    if len(data) > limits.MAX_CONFIG:
        raise ImageError(f"{candidate}: more than {limits.MAX_CONFIG} bytes; not a kernel "
                         "config")
    return candidate, data.decode("utf-8", "replace")


def scan_target(target: str) -> Scanned:
    """Every kernel `target` holds, in order (a package's kernels in archive
    order, a directory's files sorted by name, not recursive), and the
    configuration files of its packages."""
    if os.path.isdir(target):
        from noteforge.fleet.inputs import expand_paths

        kernels: list[FoundKernel] = []
        configs: dict[str, tuple[str, str]] = {}
        for path in expand_paths([target], images=True):
            sub = scan_target(path)
            kernels += sub.kernels
            configs.update(sub.configs)
        return Scanned(target, tuple(with_configs_from(kernels, configs)), configs)
    if not os.path.exists(target):
        raise ImageError(f"{target}: cannot open (No such file or directory)")
    fmt = package_format(target)
    if fmt is not None:
        scanned = scan_package(target, fmt)
        if not scanned.kernels and not scanned.configs:
            raise ImageError(f"{target}: a {fmt} package holding no kernel (looked for "
                             "boot/vmlinuz-*, lib/modules/*/vmlinuz, usr/lib/modules/*/vmlinuz)")
        return scanned
    cfg_name, cfg_text = config_beside(target)
    return Scanned(target, (FoundKernel(target, None, None, None, None, cfg_name, cfg_text),),
                   {})


def find_kernels(target: str) -> list[FoundKernel]:
    """The kernels of one target; a target holding none is an error."""
    scanned = scan_target(target)
    if not scanned.kernels:
        raise ImageError(f"{target}: holds no kernel, only configuration files "
                         f"({', '.join(scanned.configs)})")
    return list(scanned.kernels)


def choose(found: list[FoundKernel], target: str, kernel: str | None) -> FoundKernel:
    """The one kernel a command that takes one image works on: the only one,
    or the one --kernel names (its member path, its file name, or its
    modules folder: VERSION)."""
    if kernel is not None:
        hits = [k for k in found if kernel in (k.member, k.name, short_name(k.member or k.name),
                                               os.path.basename(k.member or k.name))]
        if len(hits) == 1:
            return hits[0]
        names = ", ".join(short_name(k.member or k.name) for k in found)
        raise UsageError(f"--kernel {kernel}: {target} holds no kernel of that name "
                         f"(it holds: {names})" if not hits else
                         f"--kernel {kernel}: several kernels in {target} match")
    if len(found) == 1:
        return found[0]
    names = ", ".join(short_name(k.member or k.name) for k in found)
    raise UsageError(f"{target} holds {len(found)} kernels ({names}): choose one with "
                     "--kernel NAME")


def open_found(kernel: FoundKernel, *, max_decompressed: int | None = None):
    from noteforge.image.open import open_image

    return open_image(kernel.name, max_decompressed=max_decompressed, data=kernel.data)


def open_one(target: str, kernel: str | None = None, *, max_decompressed: int | None = None):
    """The KernelImage a one-image command (notes, verify, explain) works
    on: `target` itself, or the kernel of a package (see choose())."""
    if kernel is None and package_format(target) is None:
        from noteforge.image.open import open_image

        return open_image(target, max_decompressed=max_decompressed)
    found = find_kernels(target)
    return open_found(choose(found, target, kernel), max_decompressed=max_decompressed)


def config_of(kernel: FoundKernel, *, embedded: bool = True,
              max_decompressed: int | None = None):
    """The KernelConfig of a found kernel: the file beside it or in its
    package, else (when `embedded`) the one CONFIG_IKCONFIG put inside the
    image; None when there is none."""
    from noteforge.packages.config import parse_config

    if kernel.config_text is not None and kernel.config_name is not None:
        return parse_config(kernel.config_text, kernel.config_name)
    if not embedded:
        return None
    from noteforge.image.ikconfig import embedded_config

    text = embedded_config(kernel.name, data=kernel.data, max_decompressed=max_decompressed)
    if text is None:
        return None
    return parse_config(text, f"{kernel.name} [IKCONFIG]")
