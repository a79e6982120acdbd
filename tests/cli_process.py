"""noteforge run as a user runs it, for the safety tests (no tests here): the
command line of a whole process, its environment, a refusal's one-line
contract, and a folder's listing to show what was left behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from noteforge.cli.app import main

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
NOTEFORGE = [sys.executable, "-c",
             "import sys; from noteforge.cli.app import main; sys.exit(main())"]


def refused(capsys, *args: str) -> str:
    """noteforge ARGS in-process must refuse: status 2, nothing on stdout,
    exactly one line on stderr and no traceback; returns that line."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


def listing(folder: Path) -> list[str]:
    """The names in `folder`, sorted: what a run left there."""
    return sorted(p.name for p in folder.iterdir())
