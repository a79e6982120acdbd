"""The decompressed part of a kernel, kept as it grows.

Reading notes pulls a compressed ELF only as far as its reads need; when they
need all of it (Xen falls back to SHT_NOTE sections at the end of the ELF, or
BSD_SYMTAB), that is up to the 1 GiB cap. The first SPILL_AT bytes stay in
memory (a real vmlinux's notes sit in its first megabytes); past that, the
whole prefix moves to an unnamed temporary file in $TMPDIR (O_TMPFILE where
the filesystem has it: gone with the process, even after kill -9), so memory
stays at SPILL_AT however large the payload.
"""

from __future__ import annotations

import os
import tempfile

from noteforge.errors import ImageError

SPILL_AT = 64 << 20
_SCAN = 1 << 20


class Prefix:
    """Bytes [0, len) of a decompressed stream, appended in order."""

    def __init__(self, name: str, spill_at: int = SPILL_AT):
        self.name = name
        self._spill_at = spill_at
        self._mem = bytearray()
        self._file = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def append(self, chunk: bytes) -> None:
        if self._file is None and self._len + len(chunk) > self._spill_at:
            self._spill()
        if self._file is None:
            self._mem += chunk
        else:
            self._write(chunk)
        self._len += len(chunk)

    def _spill(self) -> None:
        try:
            # Held for the life of the source; close() releases it.
            self._file = tempfile.TemporaryFile(prefix="noteforge-", buffering=0)  # noqa: SIM115
        except OSError as err:
            raise ImageError(f"{self.name}: cannot create a temporary file in "
                             f"{tempfile.gettempdir()} for the decompressed kernel: "
                             f"{err.strerror or err}") from None
        self._write(self._mem)
        self._mem = bytearray()

    def _write(self, data) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[self._file.write(view):]
        except OSError as err:
            raise ImageError(f"{self.name}: cannot keep the decompressed kernel in a "
                             f"temporary file in {tempfile.gettempdir()}: "
                             f"{err.strerror or err}") from None

    def read(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) clipped to what is there."""
        end = min(offset + length, self._len)
        if end <= offset:
            return b""
        if self._file is None:
            return bytes(self._mem[offset:end])
        parts = []
        fd = self._file.fileno()
        while offset < end:
            got = os.pread(fd, end - offset, offset)
            if not got:
                break
            parts.append(got)
            offset += len(got)
        return b"".join(parts)

    def find(self, byte: bytes, start: int, end: int) -> int:
        """The first offset of the one-byte `byte` in [start, end), or -1."""
        end = min(end, self._len)
        if self._file is None:
            return self._mem.find(byte, start, end)
        for pos in range(start, end, _SCAN):
            hit = self.read(pos, min(_SCAN, end - pos)).find(byte)
            if hit >= 0:
                return pos + hit
        return -1

    def close(self) -> None:
        self._mem = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None
        self._len = 0
