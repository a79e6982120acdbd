"""Caps on what a package may make noteforge read or hold. A real kernel
package is far below each of them: Debian's largest linux-image (rt, sid)
unpacks to about 500 MB, its vmlinuz is 12 MB, its config 300 KB."""

from __future__ import annotations

# Everything a package's payload decompresses to (the whole data.tar/cpio):
# reading stops with an error past it.
MAX_PAYLOAD = 4 << 30
# One kernel image held in memory (a bzImage is 10-15 MB; an uncompressed
# vmlinux with debug info can reach a few hundred MB).
MAX_KERNEL = 512 << 20
# One kernel configuration file (Debian's: 300 KB).
MAX_CONFIG = 16 << 20
# One archive header record a library would read whole into memory: a pax
# extended header, a GNU long name, a cpio file name.
MAX_METADATA = 1 << 20
# Archive members walked, at most.
MAX_MEMBERS = 1_000_000
