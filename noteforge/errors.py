"""One error family. Every failure a user can cause is a NoteforgeError whose
message is a single line naming the file, the offset or line, and what was
expected; the CLI prints it and exits with status 2."""

from __future__ import annotations


class NoteforgeError(Exception):
    """Base of every error noteforge raises on purpose."""

    def __init__(self, message: str):
        # Keep messages on one line: they are printed as-is after "noteforge: ".
        super().__init__(" ".join(str(message).split()))


class ImageError(NoteforgeError):
    """A kernel image that cannot be read (bad ELF, bad bzImage, bad payload)."""


class DecompressError(ImageError):
    """A compressed payload that is corrupt, truncated, or larger than allowed."""


class MapError(NoteforgeError):
    """A memory map that cannot be read."""


class WriteError(NoteforgeError):
    """A write that was refused or whose result failed the post-write proof."""


class UsageError(NoteforgeError):
    """Arguments that do not make sense together."""


def at(path: object, offset: int | None = None) -> str:
    """'FILE' or 'FILE at offset 0x..': the prefix of image error messages."""
    if offset is None:
        return f"{path}"
    return f"{path} at offset {offset:#x}"
