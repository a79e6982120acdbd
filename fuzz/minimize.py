#!/usr/bin/env python3
"""Shrink a crashing fuzz input while it still fails the same way, in-process
(libFuzzer's -minimize_crash re-executes argv[0], which a Python harness is
not). "The same way" is the exception type and the innermost noteforge frame
(file and line), or, for a contract violation, the same message up to its
first digit.

    python fuzz/minimize.py HARNESS CRASH_FILE [-o OUT]

Prints the signature and writes the minimized input (default CRASH_FILE.min).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def signature(test_one, data: bytes) -> str | None:
    try:
        test_one(data)
    except Exception as err:
        frames = [f for f in traceback.extract_tb(err.__traceback__) if "/noteforge/" in f.filename]
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "harness"
        text = str(err)
        if type(err).__name__ == "ContractViolation":
            where = re.split(r"[0-9]", text, maxsplit=1)[0][:60]
        return f"{type(err).__name__} at {where}"
    return None


def minimize(test_one, data: bytes, sig: str, budget: int = 20000) -> bytes:
    """Delta debugging: drop chunks, then zero bytes, halving the chunk size."""
    runs = 0
    best = data
    chunk = max(1, len(best) // 2)
    while chunk >= 1 and runs < budget:
        changed = False
        pos = 0
        while pos < len(best) and runs < budget:
            trial = best[:pos] + best[pos + chunk :]
            runs += 1
            if trial and signature(test_one, trial) == sig:
                best = trial
                changed = True
                continue
            pos += chunk
        if not changed:
            chunk //= 2
    # Zero out what is not needed (keeps offsets, makes the file readable).
    for i in range(len(best)):
        if runs >= budget:
            break
        if best[i]:
            trial = best[:i] + b"\0" + best[i + 1 :]
            runs += 1
            if signature(test_one, trial) == sig:
                best = trial
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("harness")
    ap.add_argument("crash", type=Path)
    ap.add_argument("-o", "--out", type=Path)
    ap.add_argument("--budget", type=int, default=20000)
    args = ap.parse_args(argv)
    mod = importlib.import_module(f"fuzz_{args.harness}")
    data = args.crash.read_bytes()
    sig = signature(mod.test_one, data)
    if sig is None:
        print(f"{args.crash}: does not fail", file=sys.stderr)
        return 1
    small = minimize(mod.test_one, data, sig, args.budget)
    out = args.out or args.crash.with_suffix(".min")
    out.write_bytes(small)
    print(f"{sig}: {len(data)} -> {len(small)} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
