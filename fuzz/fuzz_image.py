#!/usr/bin/env python3
"""Fuzz harness: opening a kernel image (noteforge.image.open.open_image) from raw
file bytes: ELF32/64, bzImage (any payload), compressed ELF (vmlinux.gz ...).

Run through fuzz/run.py; by hand: python fuzz/fuzz_image.py CORPUS_DIR [libFuzzer flags].
"""

from __future__ import annotations

import common

with common.instrumented_imports():
    from noteforge.image.open import open_image

# A payload may declare up to this many decompressed bytes here (the library
# default is 1 GiB); bombs above it must be refused, not decompressed.
MAX_DECOMPRESSED = 64 << 20


def test_one(data: bytes) -> None:
    path = common.write_input(data, "image")
    image = common.read_or_error(
        lambda p: open_image(p, max_decompressed=MAX_DECOMPRESSED), path)
    if image is None:
        return
    common.check_plain(image.to_dict())
    if image.decompressed_bytes is not None and image.decompressed_bytes > MAX_DECOMPRESSED:
        raise common.ContractViolation(
            f"decompressed {image.decompressed_bytes} bytes, over the {MAX_DECOMPRESSED} cap")


if __name__ == "__main__":
    common.setup_and_fuzz(test_one)
