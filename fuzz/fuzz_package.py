#!/usr/bin/env python3
"""Fuzz harness: a file as a kernel package (noteforge.packages.find.scan_target):
Debian .deb (ar + data.tar.*), RPM, Arch .pkg.tar.*, told apart by content, then
every kernel found opened in memory. Caps are lowered so a bomb is refused
quickly; anything but a one-line NoteforgeError is a crash.

Run through fuzz/run.py; by hand: python fuzz/fuzz_package.py CORPUS_DIR [libFuzzer flags].
"""

from __future__ import annotations

import common

with common.instrumented_imports():
    # The readers are imported lazily by find.py: import them here so they
    # are instrumented too.
    import noteforge.packages.arch
    import noteforge.packages.deb
    import noteforge.packages.members
    import noteforge.packages.payload
    import noteforge.packages.rpm  # noqa: F401
    from noteforge.errors import NoteforgeError
    from noteforge.packages import limits
    from noteforge.packages.find import open_found, scan_target

limits.MAX_PAYLOAD = 64 << 20
limits.MAX_KERNEL = 16 << 20
limits.MAX_CONFIG = 1 << 20
limits.MAX_METADATA = 64 << 10


def test_one(data: bytes) -> None:
    path = common.write_input(data, "package")
    try:
        scanned = scan_target(str(path))
        for kernel in scanned.kernels:
            try:
                common.check_plain(open_found(kernel, max_decompressed=64 << 20).to_dict())
            except NoteforgeError as err:
                common.check_error(err, str(path))
    except NoteforgeError as err:
        common.check_error(err, str(path))
    except Exception as err:
        common.check_error(err)
        raise


if __name__ == "__main__":
    common.setup_and_fuzz(test_one)
