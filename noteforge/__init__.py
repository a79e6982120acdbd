"""noteforge: read, write and verify Xen PVH ELF notes and dom0 kernel placement.

The public API returns plain data (frozen dataclasses with .to_dict()):

    import noteforge
    image = noteforge.open_image("vmlinuz")          # notes, load range, setup header
    host = noteforge.read_map("xl-dmesg.log")        # any e820 format
    verdict = noteforge.verify(image, host, dom0_mem="512M")

Names are imported on first use, so `noteforge notes` does not pay for the
placement or writer modules (and never for LIEF).
"""

from importlib import import_module

from noteforge.errors import (
    DecompressError,
    ImageError,
    MapError,
    NoteforgeError,
    UsageError,
    WriteError,
)

__version__ = "0.1.0"

_LAZY = {
    "Dom0Map": "xen.dom0_build",
    "HostMap": "maps.model",
    "clean_map": "xen.e820",
    "dom0_map": "xen.dom0_build",
    "parse_map_text": "maps.read",
    "read_map": "maps.read",
    "KernelImage": "image.open",
    "extract_vmlinux": "image.open",
    "open_image": "image.open",
    "KernelParams": "xen.placement",
    "Placement": "xen.placement",
    "place": "xen.placement",
    "set_note": "write.apply",
    "set_reloc": "write.apply",
    "remove_note": "write.apply",
    "write_note_change": "write.apply",
    "KernelCheck": "check",
    "check_kernel": "check",
    "find_kernels": "packages.find",
    "open_found": "packages.find",
    "config_of": "packages.find",
    "Verdict": "verify",
    "kernel_params": "verify",
    "verify": "verify",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'noteforge' has no attribute {name!r}")


__all__ = [
    "DecompressError",
    "Dom0Map",
    "HostMap",
    "ImageError",
    "KernelCheck",
    "KernelImage",
    "KernelParams",
    "MapError",
    "NoteforgeError",
    "Placement",
    "UsageError",
    "Verdict",
    "WriteError",
    "__version__",
    "check_kernel",
    "clean_map",
    "config_of",
    "dom0_map",
    "extract_vmlinux",
    "find_kernels",
    "kernel_params",
    "open_found",
    "open_image",
    "parse_map_text",
    "place",
    "read_map",
    "remove_note",
    "set_note",
    "set_reloc",
    "verify",
    "write_note_change",
]
