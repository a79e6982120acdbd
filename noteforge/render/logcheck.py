"""People's view of a prediction checked against a Xen boot log."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from noteforge.logcheck import LogCheck
from noteforge.render.term import say

STATUS_STYLE = {"agree": "bold green", "disagree": "bold red", "inconclusive": "bold yellow"}
STATUS_TEXT = {
    "agree": "Xen did what noteforge predicts (exit status 0)",
    "disagree": "Xen did NOT do what noteforge predicts (exit status 1)",
    "inconclusive": "the log does not say enough to compare (exit status 2)",
}


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_check(check: LogCheck, console: Console) -> None:
    console.print()
    console.print(Text(STATUS_TEXT[check.status], style=STATUS_STYLE[check.status]))
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("")
    table.add_column("Xen's log")
    table.add_column("noteforge")
    for row in check.rows:
        style = None if row.same else "bold red"
        table.add_row(row.what, _cell(row.xen), _cell(row.noteforge), style=style)
    if check.rows:
        console.print(table)
    for note in check.notes:
        say(console, note)
