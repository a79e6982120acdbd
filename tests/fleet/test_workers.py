"""worker_pool's signal discipline: each worker ignores SIGINT (the parent
alone decides on Ctrl-C) and is forked with SIGINT and SIGTERM held until it
has said so, so a Ctrl-C during a worker's start cannot print a traceback;
the parent's own signal mask is left as it was."""

from __future__ import annotations

import os
import signal

from noteforge.fleet.workers import worker_pool


def signal_sets(pid: int | str = "self") -> dict[str, set[int]]:
    """SigBlk and SigIgn of a process (its main thread) as signal numbers."""
    found = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("SigBlk", "SigIgn"):
                bits = int(value.strip(), 16)
                found[key] = {n for n in range(1, 65) if bits >> (n - 1) & 1}
    return found


def worker_signals() -> tuple[int, dict[str, set[int]]]:
    return os.getpid(), signal_sets()


def test_workers_ignore_sigint_and_hold_nothing_parent_mask_unchanged():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with worker_pool(2) as pool:
        assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
        pid, sets = pool.submit(worker_signals).result()
    assert pid != os.getpid()
    assert signal.SIGINT in sets["SigIgn"]
    assert signal.SIGTERM not in sets["SigIgn"]  # SIGTERM ends a worker
    assert signal.SIGINT not in sets["SigBlk"] and signal.SIGTERM not in sets["SigBlk"]
