"""Kernels inside distribution packages, read without unpacking anything to
disk: Debian .deb (an ar archive holding data.tar.*; read with arpy), RPM
(headers and cpio payload read with rpmfile) and Arch .pkg.tar.* (tarfile).
Every decompression goes through noteforge.image.decompress, so it is
streamed and capped like a bzImage payload, and every member kept in memory
is capped (limits.py).

find.py says which kernels a path holds (an image, a package, a directory);
config.py reads the kernel configuration that explains a kernel's notes."""
