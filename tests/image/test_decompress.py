"""The seven payload decompressors: round trips, the real `lzop` and
`lz4 -l` tools' output, size caps against decompression bombs, and clean
errors for truncated or corrupt streams."""

from __future__ import annotations

import functools
import lzma
import shutil
import struct
import subprocess
import zlib

import pytest

from noteforge.errors import DecompressError
from noteforge.image import synth
from noteforge.image.decompress import METHODS, Window, detect, stream

DATA = b"".join(struct.pack("<I", i * 2654435761 & 0xFFFFFFFF) for i in range(200_000)) + \
    b"\x7fELF" * 1000  # 804,000 bytes, compressible but not trivially


@functools.cache
def packed(method: str, zeros: int = 0) -> bytes:
    """synth.compress, once per test session (lzma/xz take a while)."""
    return synth.compress(bytes(zeros) if zeros else DATA, method)


def window(tmp_path, blob: bytes, name: str = "payload", strip: int = 0) -> Window:
    path = tmp_path / name
    path.write_bytes(blob)
    return Window(str(path), 0, len(blob) - strip)


def run(method, win, *, limit=1 << 30, expected=None) -> bytes:
    return b"".join(stream(method, win, limit=limit, name="p", expected=expected))


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_with_the_size_trailer(tmp_path, method):
    blob = packed(method)
    assert detect(blob) == method
    strip = 0 if method == "gzip" else 4
    assert struct.unpack("<I", blob[-4:])[0] == len(DATA)
    out = run(method, window(tmp_path, blob, strip=strip), expected=len(DATA))
    assert out == DATA


@pytest.mark.parametrize("method", METHODS)
def test_output_comes_in_bounded_chunks(tmp_path, method):
    blob = packed(method, 20 << 20)
    strip = 0 if method == "gzip" else 4
    sizes = [len(c) for c in stream(method, window(tmp_path, blob, strip=strip), limit=1 << 30,
                                    name="p")]
    assert sum(sizes) == 20 << 20
    assert max(sizes) <= 8 << 20  # lz4 legacy blocks are the largest unit


@pytest.mark.parametrize("method", METHODS)
def test_decompression_bomb_is_stopped_at_the_cap(tmp_path, method):
    blob = packed(method, 20 << 20)  # 20 MiB of zeros, a few KiB compressed
    strip = 0 if method == "gzip" else 4
    with pytest.raises(DecompressError) as err:
        run(method, window(tmp_path, blob, strip=strip), limit=1 << 20, expected=1 << 20)
    assert str(err.value) == (
        f"p: {method} payload decompresses to more than 1048576 bytes (the cap: the size the "
        "payload declares); refusing a likely decompression bomb")


def test_trailer_mismatch_is_an_error(tmp_path):
    blob = packed("zstd")
    with pytest.raises(DecompressError) as err:
        run("zstd", window(tmp_path, blob, strip=4), expected=len(DATA) + 8)
    assert str(err.value) == (f"p: zstd payload decompresses to {len(DATA)} bytes but its size "
                              f"trailer says {len(DATA) + 8}; truncated or corrupt payload")


@pytest.mark.parametrize("method,message", [
    ("gzip", "p: gzip stream is truncated (no end of stream)"),
    ("bzip2", "p: bzip2 stream ends before its end marker (truncated payload)"),
    ("lzma", "p: lzma stream ends before its end marker (truncated payload)"),
    ("xz", "p: xz stream ends before its end marker (truncated payload)"),
    ("lzo", "p: truncated lzop block: needed "),
    ("lz4", "p: truncated lz4 block: needed "),
])
def test_truncated_streams(tmp_path, method, message):
    blob = packed(method)
    cut = blob[: len(blob) // 2]
    with pytest.raises(DecompressError) as err:
        run(method, window(tmp_path, cut))
    assert str(err.value).startswith(message)


def test_truncated_zstd_is_caught_by_the_size_check(tmp_path):
    blob = packed("zstd")
    with pytest.raises(DecompressError, match=r"^p: (corrupt zstd stream|zstd payload "
                       r"decompresses to \d+ bytes but its size trailer says 804000)"):
        run("zstd", window(tmp_path, blob[: len(blob) // 2]), expected=len(DATA))


@pytest.mark.parametrize("method", ["gzip", "bzip2", "xz"])
def test_corrupt_checksummed_streams(tmp_path, method):
    blob = bytearray(packed(method))
    mid = len(blob) // 2
    blob[mid : mid + 16] = bytes(16)
    with pytest.raises(DecompressError, match=rf"^p: corrupt {method} stream \("):
        run(method, window(tmp_path, bytes(blob), strip=0 if method == "gzip" else 4))


def test_xz_with_the_x86_bcj_filter_linux_uses(tmp_path):
    blob = lzma.compress(DATA, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                         filters=[{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2}])
    assert run("xz", window(tmp_path, blob)) == DATA


def test_lzma_header_asking_for_a_huge_dictionary_is_refused(tmp_path):
    header = bytes([0x5D]) + struct.pack("<I", 0xFFFFFFFF) + struct.pack("<q", -1)
    with pytest.raises(DecompressError, match=r"^p: corrupt lzma stream \("):
        run("lzma", window(tmp_path, header + bytes(64)))


def test_lz4_impossible_block_size(tmp_path):
    blob = struct.pack("<II", 0x184C2102, 0x7FFFFFFF) + bytes(16)
    with pytest.raises(DecompressError) as err:
        run("lz4", window(tmp_path, blob))
    assert str(err.value) == "p: lz4 block of 2147483647 bytes is impossible (at most 8421520)"


def test_lz4_concatenated_streams_and_a_leftover_size_trailer(tmp_path):
    one = synth.compress(DATA[:1000], "lz4")[:-4]
    two = synth.compress(DATA[1000:], "lz4")[:-4]
    blob = one + two + struct.pack("<I", len(DATA))
    assert run("lz4", window(tmp_path, blob)) == DATA


def _lzop_header(flags: int) -> bytes:
    hdr = struct.pack(">HHHBB", 0x1030, 0x2080, 0x0940, 1, 5) + struct.pack(">I", flags)
    hdr += struct.pack(">III", 0o100644, 0, 0) + b"\x00"
    return b"\x89LZO\x00\r\n\x1a\n" + hdr + struct.pack(">I", zlib.adler32(hdr))


def test_lzop_block_checksum_is_verified(tmp_path):
    import lzallright

    chunk = b"\x7fELF" * 1024
    packed = lzallright.LZOCompressor().compress(chunk)
    good = struct.pack(">III", len(chunk), len(packed), zlib.adler32(chunk)) + packed
    blob = _lzop_header(0x1) + good + struct.pack(">I", 0)
    assert run("lzo", window(tmp_path, blob, "ok")) == chunk
    bad = struct.pack(">III", len(chunk), len(packed), zlib.adler32(chunk) ^ 1) + packed
    with pytest.raises(DecompressError) as err:
        run("lzo", window(tmp_path, _lzop_header(0x1) + bad + struct.pack(">I", 0), "bad"))
    assert str(err.value) == "p: lzop block checksum mismatch (corrupt payload)"


def test_lzop_header_checksum_and_block_limits(tmp_path):
    blob = bytearray(_lzop_header(0))
    blob[-1] ^= 0xFF
    with pytest.raises(DecompressError, match=r"^p: lzop header checksum 0x[0-9a-f]+ does not "
                       r"match 0x[0-9a-f]+$"):
        run("lzo", window(tmp_path, bytes(blob), "h"))
    big = _lzop_header(0) + struct.pack(">II", 512 * 1024, 100) + bytes(100)
    with pytest.raises(DecompressError) as err:
        run("lzo", window(tmp_path, big, "b"))
    assert str(err.value) == ("p: lzop block of 524288 bytes is larger than 262144 (Linux's "
                              "unlzo limit)")


@pytest.mark.parametrize("tool,args,method", [
    ("lzop", ["-9", "-c"], "lzo"),
    ("lzop", ["-1", "-c"], "lzo"),
    ("lzop", ["-c"], "lzo"),
    ("lz4", ["-l", "-9", "-c"], "lz4"),
    ("lz4", ["-l", "-c"], "lz4"),
])
def test_output_of_the_real_tools(tmp_path, tool, args, method):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (apt-get install {tool})")
    src = tmp_path / "data.bin"
    src.write_bytes(DATA * 3)  # > 2 MiB: several lzop blocks
    blob = subprocess.run([tool, *args, str(src)], check=True, capture_output=True).stdout
    assert detect(blob) == method
    assert run(method, window(tmp_path, blob)) == DATA * 3


def test_zstd_a_kernel_payload_is_its_first_frame_a_package_every_frame(tmp_path):
    """Xen's unzstd.c returns when the first frame is complete: what follows
    it in a kernel payload is never read. A package (all_frames) is read as
    the zstd tool reads a file: frame after frame."""
    import zstandard

    first, second = bytes(range(256)) * 8192, b"second frame" * 100000  # 2 MiB, 1.2 MB
    data = (zstandard.ZstdCompressor(level=1).compress(first)
            + zstandard.ZstdCompressor(level=1).compress(second))
    path = tmp_path / "two.zst"
    path.write_bytes(data)
    window = Window(str(path), 0, len(data))
    assert b"".join(stream("zstd", window, limit=1 << 30, name="k")) == first
    assert b"".join(stream("zstd", window, limit=1 << 30, name="p", all_frames=True)) == \
        first + second
