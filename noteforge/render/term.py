"""Output that reads the same on an 80-column terminal, in a pipe and in a CI
log: the width to lay out for, a console that never leaves trailing spaces,
legends wrapped between entries (never inside one), and label/value blocks
that stack when two columns do not fit.

Every renderer and command takes its console from `console()`; renderers that
lay text out themselves take the width from `console.width`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported when a console is made, not at import time
    from rich.console import Console
    from rich.text import Text

DEFAULT_WIDTH = 80  # a pipe, a file, a CI log: the width people paste and read
MIN_WIDTH = 40


def output_width(stream: IO[str] | None = None) -> int:
    """The width to lay out for: $COLUMNS when set (as the shell and the
    coreutils honour it), else the terminal's width when the stream is a
    terminal, else 80."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return max(MIN_WIDTH, int(columns))
    stream = sys.stdout if stream is None else stream
    try:
        if stream.isatty():
            return max(MIN_WIDTH, os.get_terminal_size(stream.fileno()).columns)
    except (AttributeError, OSError, ValueError):
        pass
    return DEFAULT_WIDTH


# Trailing blanks, possibly interleaved with colour codes (rich pads table
# cells inside their style).
_TRAILING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$")
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def strip_trailing(line: str) -> str:
    m = _TRAILING.search(line)
    if m is None:
        return line
    return line[: m.start()] + "".join(_SGR.findall(m.group(0)))


class RstripWriter:
    """A text stream that removes trailing blanks from every line before
    passing it on (a partial line waits for its newline or a flush)."""

    def __init__(self, target: IO[str]):
        self._target = target
        self._pending = ""

    def write(self, text: str) -> int:
        data = self._pending + text
        *lines, self._pending = data.split("\n")
        if lines:
            self._target.write("\n".join(strip_trailing(x) for x in lines) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._target.write(strip_trailing(self._pending))
            self._pending = ""
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._target, "encoding", "utf-8")


def console(*, stderr: bool = False, width: int | None = None,
            file: IO[str] | None = None) -> Console:
    """The console every command prints with: the width of `output_width()`,
    colour only on a terminal (rich's rule, which also honours NO_COLOR and
    FORCE_COLOR), no trailing spaces, no guessed highlighting, and no markup
    unless a print asks for it (`markup=True`, with the data escaped)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 here; the CLI ends as coreutils do instead
            # (noteforge.cli.app: killed by SIGPIPE, quietly).
            self.quiet = True
            raise BrokenPipeError

    target = file if file is not None else (sys.stderr if stderr else sys.stdout)
    return _Console(
        file=RstripWriter(target),  # type: ignore[arg-type]
        width=width or output_width(target),
        highlight=False,
        # Data (paths, notes, log text) may hold '[word]'; rich would take it
        # as a style tag and drop it. Markup is asked for per print instead.
        markup=False,
        soft_wrap=False,
    )


def wrap_items(items: Sequence[Text], width: int, *, sep: str = "  ",
               indent: str = "") -> list[Text]:
    """Lay out legend entries on as few lines as fit in `width`, breaking
    only between entries (an entry longer than a line gets a line of its
    own, and rich folds it at its spaces)."""
    from rich.text import Text

    lines: list[Text] = []
    line = Text(indent)
    used = len(indent)
    for item in items:
        n = item.cell_len
        if used > len(indent) and used + len(sep) + n > width:
            lines.append(line)
            line = Text(indent)
            used = len(indent)
        if used > len(indent):
            line.append(sep)
            used += len(sep)
        line.append_text(item)
        used += n
    if used > len(indent):
        lines.append(line)
    return lines


def pairs(rows: Iterable[tuple[str, Text | str]], width: int, *, label_style: str = "",
          indent: str = "", gap: int = 2, max_label: int | None = None) -> list[Text]:
    """Label/value rows as two columns when the labels leave room for the
    values (at least half the width), else stacked: the label on its line,
    the value indented under it. Values wrap at spaces within the width."""
    from rich.text import Text

    rows = [(label, value if isinstance(value, Text) else Text(value)) for label, value in rows]
    label_w = max((len(label) for label, _ in rows), default=0)
    if max_label is not None:
        label_w = min(label_w, max_label)
    side_by_side = len(indent) + label_w + gap <= width // 2
    out: list[Text] = []
    for label, value in rows:
        if side_by_side and len(label) <= label_w:
            lead = indent + label.ljust(label_w) + " " * gap
            body_w = width - len(lead)
            for i, piece in enumerate(wrap_text(value, body_w)):
                line = Text(lead if i == 0 else " " * len(lead))
                if i == 0 and label_style:
                    line.stylize(label_style, len(indent), len(indent) + len(label))
                line.append_text(piece)
                out.append(line)
        else:
            out.append(Text(indent + label, style=label_style))
            sub = indent + "    "
            for piece in wrap_text(value, width - len(sub)):
                out.append(Text(sub).append_text(piece))
    return out


def wrap_text(text: Text, width: int) -> list[Text]:
    """`text` cut into lines of at most `width` cells, at spaces when there
    are any (rich's word wrap), with the styles kept."""
    from rich.console import Console

    width = max(width, 8)
    if text.cell_len <= width and "\n" not in text.plain:
        return [text]
    measure = Console(width=width, file=open(os.devnull, "w"))  # noqa: SIM115
    try:
        lines = text.wrap(measure, width, overflow="fold")
    finally:
        measure.file.close()
    for line in lines:
        line.rstrip()
    return list(lines)


def say(console: Console, text: str | Text, *, first: str = "  - ",
        rest: str | None = None) -> None:
    """Print one item of a list, wrapped to the console's width, its
    continuation lines indented under its text (not back at column 0)."""
    from rich.text import Text

    rest = " " * len(first) if rest is None else rest
    body = text if isinstance(text, Text) else Text(text)
    for i, piece in enumerate(wrap_text(body, console.width - len(rest))):
        console.print(Text(first if i == 0 else rest) + piece)


def wrap_hex(data: bytes, width: int, *, group: int = 1) -> list[str]:
    """Bytes as hex pairs separated by spaces, cut into lines of whole bytes
    that fit in `width` columns."""
    per_line = max(1, (width + 1) // 3)
    if group > 1:
        per_line = max(group, per_line // group * group)
    return [data[i:i + per_line].hex(" ") for i in range(0, len(data), per_line)] or ["-"]


__all__ = [
    "DEFAULT_WIDTH",
    "RstripWriter",
    "console",
    "output_width",
    "pairs",
    "say",
    "strip_trailing",
    "wrap_hex",
    "wrap_items",
    "wrap_text",
]
