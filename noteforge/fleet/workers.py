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
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor


class Terminated(BaseException):
    """SIGTERM arrived: stop, clean up (temporary output), exit 128 + 15."""

    exit_status = 128 + signal.SIGTERM


# Signals a worker must not act on before it has set its own handlers: a
# forked child inherits the parent's Python handlers, so a Ctrl-C reaching
# the process group while a worker boots printed a KeyboardInterrupt
# traceback from multiprocessing's bootstrap. Workers are forked with these
# blocked and unblock them once SIGINT is ignored.
_HELD = {signal.SIGINT, signal.SIGTERM}


def _die_with_parent(parent: int) -> None:
    """A kill -9 of the parent cannot stop its workers, which then wait on
    their queue for ever, holding its pipes open: ask Linux to send them
    SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG; the parent forked
    them from its main thread, whose exit is what the kernel watches)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask
        return
    if os.getppid() != parent:  # the parent died before the request
        os._exit(1)


def _start_worker(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    _die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def _nothing() -> None:
    return None


def _fork_context():
    """'fork', where there is one: every worker is then forked at the first
    submit (CPython starts workers on demand only for spawn and forkserver),
    which is when the parent holds the signals above."""
    import multiprocessing

    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


@contextlib.contextmanager
def worker_pool(jobs: int, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_fork_context(),
                               initializer=_start_worker,
                               initargs=(os.getpid(), initializer, initargs))
    try:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        try:
            pool.submit(_nothing)  # forks every worker now, signals held
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
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
    # Wait for the executor's manager thread too: it closes its wake-up pipe
    # as it ends, and if that races with the interpreter's exit hook
    # (concurrent.futures.process._python_exit, which writes to the same
    # pipe, on Python 3.11) the exit prints an EBADF traceback. Once the
    # thread has ended the pipe is marked closed and the hook does nothing.
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        with contextlib.suppress(Exception):
            manager.join(timeout=5)


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
