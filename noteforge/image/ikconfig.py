"""The kernel configuration a kernel built with CONFIG_IKCONFIG carries:
kernel/configs.c puts "IKCFG_ST", the gzip'd .config, then "IKCFG_ED" in
.rodata (Linux's scripts/extract-ikconfig looks for the same markers). The
ELF is read (decompressed, streamed and capped as for the notes) only until
the end marker."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

from noteforge.errors import ImageError
from noteforge.image import decompress

START = b"IKCFG_ST"
END = b"IKCFG_ED"
MAX_BLOB = 4 << 20  # the gzip'd config (Debian's .config gzips to 70 KB)
MAX_TEXT = 16 << 20


def _elf_chunks(path: str, data: bytes | None, max_decompressed: int | None) -> Iterator[bytes]:
    from noteforge.image.open import _locate

    ceiling = decompress.DEFAULT_CEILING if max_decompressed is None else max_decompressed
    loc = _locate(path, ceiling, data)
    if loc.compression is not None:
        yield from decompress.stream(loc.compression, loc.window, limit=loc.limit,
                                     name=loc.name, expected=loc.declared)
        return
    reader = loc.window.open()
    try:
        while chunk := reader.read(decompress.CHUNK):
            yield chunk
    finally:
        reader.close()


def embedded_config(path: str | os.PathLike, *, data: bytes | None = None,
                    max_decompressed: int | None = None) -> str | None:
    """The .config text embedded in the image, or None when there is none."""
    path = os.fspath(path)
    chunks = _elf_chunks(path, data, max_decompressed)
    tail = b""  # the end of the previous chunk: a marker may straddle two chunks
    consumed = 0  # ELF bytes before the current chunk
    blob: bytearray | None = None
    where = 0
    try:
        for chunk in chunks:
            if blob is None:
                buf = tail + chunk
                at = buf.find(START)
                if at < 0:
                    tail = buf[-(len(START) - 1):]
                    consumed += len(chunk)
                    continue
                where = consumed - len(tail) + at
                blob = bytearray(buf[at + len(START):])
            else:
                blob += chunk
            end = blob.find(END)
            if end >= 0:
                return _gunzip(bytes(blob[:end]), path, where)
            if len(blob) > MAX_BLOB:
                raise ImageError(f"{path}: IKCFG_ST at ELF offset {where:#x} is not followed "
                                 f"by IKCFG_ED within {MAX_BLOB} bytes")
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    if blob is not None:
        raise ImageError(f"{path}: IKCFG_ST at ELF offset {where:#x} has no IKCFG_ED after it")
    return None


def _gunzip(blob: bytes, path: str, where: int) -> str:
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = decoder.decompress(blob, MAX_TEXT + 1)
    except zlib.error as err:
        raise ImageError(f"{path}: the embedded config at ELF offset {where:#x} is not gzip "
                         f"data ({err})") from None
    if len(text) > MAX_TEXT:
        raise ImageError(f"{path}: the embedded config at ELF offset {where:#x} decompresses "
                         f"to more than {MAX_TEXT} bytes")
    return text.decode("utf-8", "replace")
