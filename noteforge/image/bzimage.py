"""The x86 boot protocol setup header of a bzImage (Linux
Documentation/arch/x86/boot.rst) and where its compressed payload sits, read
the way Xen's xen/arch/x86/bzimage.c reads it."""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass

from noteforge.errors import ImageError, at

HDR_MAGIC = b"HdrS"
HDR_MAGIC_AT = 0x202
# Xen's bzimage_check() wants the whole struct setup_header it declares,
# which ends with payload_length at 0x24c.
MIN_HEADER = 0x250
# The fields noteforge shows go up to init_size (0x260..0x263).
FULL_HEADER = 0x264
# Xen refuses anything older (bzimage_check: "at least v2.08 is required"),
# the first protocol with payload_offset/payload_length.
XEN_MIN_VERSION = 0x0208


@dataclass(frozen=True)
class SetupHeader:
    """The setup header fields (all from the file; offsets in comments)."""

    setup_sects: int  # u8 0x1f1
    version: int  # u16 0x206, e.g. 0x20f = protocol 2.15
    loadflags: int  # u8 0x211
    kernel_alignment: int | None  # u32 0x230 (protocol >= 2.05)
    relocatable_kernel: int | None  # u8 0x234 (>= 2.05)
    min_alignment: int | None  # u8 0x235, log2 (>= 2.10)
    xloadflags: int | None  # u16 0x236 (>= 2.12)
    payload_offset_field: int  # u32 0x248, relative to the protected-mode code
    payload_length: int  # u32 0x24c
    pref_address: int | None  # u64 0x258 (>= 2.10)
    init_size: int | None  # u32 0x260 (>= 2.10)
    payload_offset: int  # file offset of the payload: (setup_sects + 1) * 512 + field
    setup_size: int  # (setup_sects + 1) * 512: where the protected-mode code starts
    kernel_version: str | None  # string at 0x200 + u16 at 0x20e, if any
    file_size: int

    @property
    def protocol(self) -> str:
        return f"{self.version >> 8}.{self.version & 0xFF:02d}"

    @property
    def payload_end(self) -> int:
        return self.payload_offset + self.payload_length

    def to_dict(self) -> dict:
        d = asdict(self)
        d["protocol"] = self.protocol
        return d


def is_bzimage(head: bytes) -> bool:
    """Xen's test: the "HdrS" signature where the setup header has it."""
    return len(head) >= HDR_MAGIC_AT + 4 and head[HDR_MAGIC_AT : HDR_MAGIC_AT + 4] == HDR_MAGIC


def parse_setup_header(head: bytes, file_size: int, path: str) -> SetupHeader:
    """Parse the setup header from the first bytes of a bzImage (at least
    FULL_HEADER of them when the file has that many, plus the kernel version
    string if wanted). Raises ImageError for what Xen would refuse or what
    would make reading the payload go outside the file."""
    if len(head) < MIN_HEADER:
        raise ImageError(
            f"{at(path, len(head))}: bzImage setup header is truncated "
            f"(needs {MIN_HEADER:#x} bytes, the file has {file_size:#x})"
        )
    if not is_bzimage(head):
        raise ImageError(f"{at(path, HDR_MAGIC_AT)}: no 'HdrS' boot protocol signature")

    def u8(off: int) -> int:
        return head[off]

    def u16(off: int) -> int:
        return struct.unpack_from("<H", head, off)[0]

    def u32(off: int) -> int:
        return struct.unpack_from("<I", head, off)[0]

    version = u16(0x206)
    if version < XEN_MIN_VERSION:
        raise ImageError(
            f"{at(path, 0x206)}: bzImage boot protocol {version >> 8}.{version & 0xFF:02d}; "
            "Xen needs at least 2.08 (payload_offset/payload_length)"
        )
    has = len(head) >= FULL_HEADER
    setup_sects = u8(0x1F1)
    # Xen uses setup_sects as it is, even 0, which the boot protocol says
    # means 4 (bzimage.c: (hdr->setup_sects + 1) * 512 + hdr->payload_offset).
    setup_size = (setup_sects + 1) * 512
    payload_field = u32(0x248)
    payload_length = u32(0x24C)
    payload_offset = setup_size + payload_field
    if payload_length < 4 or payload_offset + payload_length > file_size:
        raise ImageError(
            f"{at(path, 0x248)}: bzImage payload at {payload_offset:#x}, {payload_length:#x} "
            f"bytes, does not fit in the file ({file_size:#x} bytes)"
        )
    return SetupHeader(
        setup_sects=setup_sects,
        version=version,
        loadflags=u8(0x211),
        kernel_alignment=u32(0x230) if version >= 0x0205 else None,
        relocatable_kernel=u8(0x234) if version >= 0x0205 else None,
        min_alignment=u8(0x235) if version >= 0x020A else None,
        xloadflags=u16(0x236) if version >= 0x020C else None,
        payload_offset_field=payload_field,
        payload_length=payload_length,
        pref_address=struct.unpack_from("<Q", head, 0x258)[0] if has and version >= 0x020A
        else None,
        init_size=u32(0x260) if has and version >= 0x020A else None,
        payload_offset=payload_offset,
        setup_size=setup_size,
        kernel_version=_kernel_version(head, u16(0x20E)),
        file_size=file_size,
    )


def _kernel_version(head: bytes, pointer: int) -> str | None:
    """The NUL-terminated version string at pointer + 0x200 (boot.rst:
    kernel_version), if it lies within the bytes read; None otherwise."""
    if pointer == 0:
        return None
    start = pointer + 0x200
    end = head.find(b"\0", start, start + 512)
    if start >= len(head) or end < 0:
        return None
    text = head[start:end].decode("latin-1")
    return text if text.isprintable() else None
