"""Re-capture the serial logs kept as test data in tests/data/xenlogs/.

    python tests/realxen/capture_logs.py [NAME ...]

Boots the named scenarios of tests/realxen/scenarios.py (default: the set the
xenlog tests use) and writes each log as captured, up to where the harness
stops QEMU, minus Xen's "order N allocations" statistics (30 lines of noise).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realxen import harness
from realxen.scenarios import CRASHES, SCENARIOS

OUT = Path(__file__).resolve().parents[1] / "data" / "xenlogs"
DEFAULT = (
    "base-512M",
    "hole32",
    "hole32-64M",
    "linux61-hole32",
    "reloc-align3M-hole32",
    "metadata-none",
    "cloud-not-dom0",
    "m1024-dom0mem-1G",
    "default-1G",
    "default-6G",
    "quiet-hole32",
    "quiet-linux61-hole32",
    "timestamps-hole32",
    "low60-crash",
    "writer-612-align4M-hole32",
    "writer-61-reloc-empty-hole32",
    "freebsd-15.1",
    "freebsd-15.1-hole16",
)
_NOISE = re.compile(r"^\(XEN\) order +\d+ allocations: \d+$")


def main(names: list[str]) -> int:
    table = {s.name: s for s, _ in SCENARIOS + CRASHES}
    chosen = [table[n] for n in (names or DEFAULT)]
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, result in harness.boot_many(chosen, Path(tmp)).items():
            kept = [ln for ln in result.log.splitlines() if not _NOISE.match(ln)]
            (OUT / f"{name}.log").write_text("\n".join(kept) + "\n")
            print(f"{name}: {len(kept)} lines, {result.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
