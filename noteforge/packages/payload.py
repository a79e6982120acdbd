"""A package's payload (data.tar.*, an RPM's cpio, an Arch tarball) as a
file object for the archive libraries, decompressed as a stream by
noteforge.image.decompress (capped output, bounded decoder memory), never
written to disk."""

from __future__ import annotations

import io
from collections.abc import Iterator

from noteforge.errors import ImageError
from noteforge.image import decompress
from noteforge.packages import limits


def compression_of(head: bytes) -> str | None:
    """The compression of a payload by its magic (None: stored as is)."""
    return decompress.detect(head)


class PayloadReader(io.RawIOBase):
    """Decompressed bytes of Window `window`, read forward. Seeking back
    starts the decompression again (rpmfile seeks back to a member's data
    after walking the archive). One read returns at most MAX_KERNEL bytes:
    a size field in a hostile archive header cannot make a library ask for
    more memory than that."""

    def __init__(self, window: decompress.Window, method: str | None, name: str,
                 limit: int | None = None):
        super().__init__()
        self._window = window
        self._method = method
        self._name = name
        self._limit = limits.MAX_PAYLOAD if limit is None else limit
        self._start()

    def _start(self) -> None:
        if self._method is None:
            self._chunks: Iterator[bytes] = _raw_chunks(self._window, self._limit, self._name)
        else:
            # The cap is counted here (read()), with a message about packages;
            # the stream's own cap is only a backstop.
            self._chunks = decompress.stream(self._method, self._window,
                                             limit=self._limit + 2 * decompress.CHUNK,
                                             name=self._name, all_frames=True)
        self._total = 0
        self._buf = b""
        self._off = 0
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = limits.MAX_KERNEL + 1
        if size > limits.MAX_KERNEL:
            raise ImageError(
                f"{self._name} at offset {self._pos:#x}: the archive asks to read {size} bytes "
                f"at once, more than the limit of {limits.MAX_KERNEL}; corrupt or hostile "
                "archive"
            )
        # _buf[_off:] is what is decompressed but not yet read: tarfile reads
        # 10 KiB at a time out of 1 MiB chunks, so no copy of the rest per read.
        while len(self._buf) - self._off < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._total += len(chunk)
            if self._total > self._limit:
                raise ImageError(
                    f"{self._name}: decompresses to more than {self._limit} bytes, the cap for "
                    "a package's payload; refusing a likely decompression bomb")
            self._buf = self._buf[self._off:] + chunk if self._off < len(self._buf) else chunk
            self._off = 0
        out = self._buf[self._off : self._off + size]
        self._off += len(out)
        self._pos += len(out)
        return out

    def readinto(self, buf) -> int:  # type: ignore[override]
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise OSError(f"{self._name}: cannot seek from the end of a compressed stream")
        if offset < 0:
            raise OSError(f"{self._name}: seek to a negative offset")
        if offset < self._pos:
            self._close_chunks()
            self._start()
        while self._pos < offset:
            step = min(offset - self._pos, 1 << 20)
            if not self.read(step):
                break  # past the end: the next read returns nothing, as for a file
        return self._pos

    def _close_chunks(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close:
            close()

    def close(self) -> None:
        self._close_chunks()
        super().close()


def _raw_chunks(window: decompress.Window, limit: int, name: str) -> Iterator[bytes]:
    if window.length > limit:
        raise ImageError(f"{name}: {window.length} bytes, more than the limit of {limit}")
    yield from window.chunks()
