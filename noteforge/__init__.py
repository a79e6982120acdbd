"""noteforge: read, write and verify Xen PVH ELF notes and dom0 kernel placement.

The public API returns plain data (frozen dataclasses with .to_dict()).
"""

from .errors import (
    DecompressError,
    ImageError,
    MapError,
    NoteforgeError,
    UsageError,
    WriteError,
)

__version__ = "0.1.0"

__all__ = [
    "DecompressError",
    "ImageError",
    "MapError",
    "NoteforgeError",
    "UsageError",
    "WriteError",
    "__version__",
]
