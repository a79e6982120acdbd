"""What every harness shares: the input file in a tmpfs, the contract every
failure must meet, and atheris set-up.

The contract (issue 8): for ANY input bytes, noteforge either returns a result
or raises a NoteforgeError whose message is one non-empty line naming the
input (file, offset or line, what was expected). Anything else -- another
exception, a multi-line message, a message that does not say which file --
is a finding: the harness raises, libFuzzer saves the input as a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))



class ContractViolation(AssertionError):
    """A failure that is not a clean one-line NoteforgeError."""


def scratch(name: str) -> Path:
    """A per-process scratch path under $NOTEFORGE_FUZZ_TMP (default: /dev/shm,
    a tmpfs, when there is one)."""
    base = os.environ.get("NOTEFORGE_FUZZ_TMP") or (
        "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp")
    d = Path(base) / f"noteforge-fuzz-{os.getpid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def write_input(data: bytes, name: str = "input") -> Path:
    path = scratch(name)
    path.write_bytes(data)
    return path


def check_error(err: Exception, *names: str) -> None:
    """A NoteforgeError's message is one non-empty line that names one of `names`."""
    from noteforge.errors import NoteforgeError

    if not isinstance(err, NoteforgeError):
        raise err  # not a NoteforgeError: re-raised with its own traceback (a crash)
    msg = str(err)
    if not msg.strip():
        raise ContractViolation(f"empty message from {type(err).__name__}") from err
    if "\n" in msg or "\r" in msg:
        raise ContractViolation(f"multi-line message: {msg!r}") from err
    if len(msg) > int(os.environ.get("NOTEFORGE_FUZZ_MAX_MESSAGE", "1000")):
        raise ContractViolation(f"message of {len(msg)} characters: {msg[:200]!r}...") from err
    if names and not any(n in msg for n in names):
        raise ContractViolation(f"message names none of {names}: {msg!r}") from err


def read_or_error(read, path: Path):
    """read(path), or None after checking that the NoteforgeError it raised is
    a clean one-line message naming the input; any other exception is a
    crash and propagates with its traceback."""
    from noteforge.errors import NoteforgeError

    try:
        return read(path)
    except NoteforgeError as err:
        check_error(err, str(path))
        return None


def check_plain(obj: object) -> None:
    """to_dict() output must be JSON-ready plain data (what --json prints)."""
    json.dumps(obj, allow_nan=False)


def where(err: BaseException) -> str:
    """'file.py:LINE' of the innermost noteforge frame of an exception."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/noteforge/" in f.filename]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "harness"


def tolerate_known(test_one):
    """With NOTEFORGE_FUZZ_KNOWN="writer.py:1079,elf.py:300" a long run goes on
    past crashes already found (and reported) at those places."""
    known = {k.strip() for k in os.environ.get("NOTEFORGE_FUZZ_KNOWN", "").split(",") if k}
    if not known:
        return test_one

    def guarded(data: bytes) -> None:
        try:
            test_one(data)
        except Exception as err:
            if where(err) in known:
                return
            raise

    return guarded


def setup_and_fuzz(test_one) -> None:
    import atheris

    atheris.Setup(sys.argv, tolerate_known(test_one))
    atheris.Fuzz()


def instrumented_imports():
    """Instrument noteforge (and pyelftools, if noteforge uses it) for coverage.
    Without atheris (the test suite replaying saved inputs), nothing is done."""
    try:
        import atheris
    except ImportError:
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["noteforge", "elftools"])
