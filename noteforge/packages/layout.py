"""Where kernels and their configuration live in a package's file tree, the
same rules for every package format and for a directory on disk:

* Debian (linux-image-*): boot/vmlinuz-VERSION beside boot/config-VERSION
  (boot/vmlinux-VERSION on architectures that ship an ELF);
* RPM (kernel-core): lib/modules/VERSION/vmlinuz beside .../config (older
  and SUSE packages: boot/vmlinuz-VERSION, boot/config-VERSION);
* Arch (linux): usr/lib/modules/VERSION/vmlinuz (Arch builds with
  CONFIG_IKCONFIG, so the configuration is inside the image)."""

from __future__ import annotations

import posixpath
import re

_KERNEL = re.compile(r"(?:boot/vmlinu[xz]-[^/]+|(?:usr/)?lib/modules/[^/]+/vmlinu[xz])")


def member_name(name: str) -> str:
    """An archive member's path without its leading './' or '/'."""
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def is_kernel(name: str) -> bool:
    return _KERNEL.fullmatch(name) is not None


def config_for(kernel: str) -> str:
    """The configuration file's path for a kernel's path (either layout)."""
    folder, base = posixpath.split(kernel)
    if base.startswith(("vmlinuz-", "vmlinux-")):
        return posixpath.join(folder, "config-" + base[len("vmlinuz-"):])
    return posixpath.join(folder, "config")


def short_name(kernel: str) -> str:
    """What --kernel matches besides the full member path: 'vmlinuz-6.1.0-57-amd64'
    for boot/vmlinuz-6.1.0-57-amd64, the VERSION folder for .../modules/VERSION/vmlinuz."""
    folder, base = posixpath.split(kernel)
    if base.startswith(("vmlinuz-", "vmlinux-")):
        return base
    return posixpath.basename(folder)
