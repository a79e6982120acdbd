"""Worker processes that stop when the run stops.

A ProcessPoolExecutor left by an exception waits for every submitted chunk
(shutdown(wait=True)), and Ctrl-C reaches the whole process group, so each
worker printed its own KeyboardInterrupt traceback. Here workers ignore
SIGINT (the parent alone decides), and leaving the pool by any exception
(Ctrl-C, SIGTERM turned into Terminated, an error) cancels what is queued and
terminates the workers at once; a normal exit waits for them as usual.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor


class Terminated(BaseException):
    """SIGTERM arrived: stop, clean up (temporary output), exit 128 + 15."""

    exit_status = 128 + signal.SIGTERM


def _start_worker(initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_pool(jobs: int, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker,
                               initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        stop(pool)
        raise
    pool.shutdown(wait=True)


def stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the queue and terminate the workers without waiting for them."""
    # The executor's own process table: ProcessPoolExecutor has no public
    # terminate before Python 3.14 (terminate_workers).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated in the main thread (so
    `with` blocks clean up); the previous handler comes back after."""

    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
