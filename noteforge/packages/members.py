"""What noteforge keeps of a package: its kernels and configuration files,
each read into memory within its cap, found by walking the archive once."""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass

from noteforge.errors import ImageError
from noteforge.packages import limits
from noteforge.packages.layout import is_kernel, member_name

_CONFIG = re.compile(r"(?:boot/config-[^/]+|(?:usr/)?lib/modules/[^/]+/config)")


@dataclass(frozen=True)
class Members:
    """Kernel images and configuration files of one package, by member path
    (without './'), in archive order."""

    kernels: dict[str, bytes]
    configs: dict[str, bytes]


class Collector:
    """Decides, member by member, what to keep, and enforces the caps."""

    def __init__(self, package: str):
        self.package = package
        self.kernels: dict[str, bytes] = {}
        self.configs: dict[str, bytes] = {}
        self.count = 0

    def wants(self, raw_name: str, size: int, regular: bool) -> str | None:
        """The member's name if its bytes are to be kept, else None."""
        self.count += 1
        if self.count > limits.MAX_MEMBERS:
            raise ImageError(f"{self.package}: more than {limits.MAX_MEMBERS} archive members; "
                             "refusing a likely hostile package")
        name = member_name(raw_name)
        if not regular:
            return None
        if is_kernel(name):
            cap, what = limits.MAX_KERNEL, "kernel"
        elif _CONFIG.fullmatch(name):
            cap, what = limits.MAX_CONFIG, "kernel config"
        else:
            return None
        if size > cap:
            raise ImageError(f"{self.package}: member {name} is {size} bytes, more than the "
                             f"limit of {cap} for a {what}")
        return name

    def keep(self, name: str, data: bytes, size: int) -> None:
        if len(data) != size:
            raise ImageError(f"{self.package}: member {name} is truncated ({len(data)} of "
                             f"{size} bytes)")
        (self.kernels if is_kernel(name) else self.configs)[name] = data

    def result(self) -> Members:
        return Members(dict(self.kernels), dict(self.configs))


class _CappedTarInfo(tarfile.TarInfo):
    """tarfile reads a pax extended header or a GNU long name whole into
    memory, sized by the header's own size field: refuse a large one first."""

    def _proc_member(self, tar):  # tarfile's hook for every header it reads
        meta = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
        if self.type in meta and self.size > limits.MAX_METADATA:
            raise ImageError(f"a tar header record of {self.size} bytes (more than "
                             f"{limits.MAX_METADATA}); corrupt or hostile archive")
        return super()._proc_member(tar)


def walk_tar(fileobj, package: str, what: str) -> Members:
    """Every kernel and configuration file of a tar stream (read forward
    once, as `tar t` would: tarfile's stream mode)."""
    collector = Collector(package)
    try:
        with tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_CappedTarInfo) as tar:
            for info in tar:
                name = collector.wants(info.name, info.size, info.isreg())
                if name is None:
                    continue
                src = tar.extractfile(info)
                data = src.read() if src is not None else b""
                collector.keep(name, data, info.size)
    except ImageError as err:
        raise ImageError(f"{package}: {what}: {err}" if package not in str(err) else str(err)
                         ) from None
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError) as err:
        raise ImageError(f"{package}: {what} is not a readable tar archive ({err})") from None
    return collector.result()
