"""Running noteforge as a whole process and reading its own peak memory
(no tests here). The peak is the process's VmHWM, read at its exit: the
children's ru_maxrss of wait4 also counts the forking parent's pages (Linux
carries the high-water mark across exec), so a test run from a large pytest
process would measure pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parents[1]
_RUN = """
import atexit, os, sys
def _peak():
    with open("/proc/self/status") as fh:
        hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
    with open(os.environ["NOTEFORGE_TEST_PEAK"], "w") as out:
        out.write(hwm)
atexit.register(_peak)
from noteforge.cli.app import main
sys.exit(main())
"""


def run_measured(tmp_path: Path, *args: str, env: dict | None = None
                 ) -> tuple[int, str, str, int]:
    """noteforge ARGS: status, stdout, stderr, and its peak RSS in bytes."""
    peak = tmp_path / "peak-kib"
    full_env = dict(os.environ if env is None else env,
                    PYTHONPATH=str(MAIN) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    NOTEFORGE_TEST_PEAK=str(peak))
    proc = subprocess.run([sys.executable, "-c", _RUN, *args], env=full_env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr, int(peak.read_text()) * 1024
