"""noteforge.render.term: the width honoured, no trailing blanks, legends
broken only between entries, hex wrapped by whole bytes."""

import io

from rich.text import Text

from noteforge.render.term import (
    RstripWriter,
    console,
    output_width,
    pairs,
    strip_trailing,
    wrap_hex,
    wrap_items,
)


def test_columns_wins_and_a_pipe_is_80(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert output_width(io.StringIO()) == 100
    monkeypatch.delenv("COLUMNS")
    assert output_width(io.StringIO()) == 80  # not a terminal
    monkeypatch.setenv("COLUMNS", "12")
    assert output_width(io.StringIO()) == 40  # a floor that keeps tables drawable


def test_trailing_blanks_go_colour_codes_stay():
    assert strip_trailing("a b   ") == "a b"
    assert strip_trailing("\x1b[1mx\x1b[0m  \x1b[2m \x1b[0m") == "\x1b[1mx\x1b[0m\x1b[2m\x1b[0m"
    out = io.StringIO()
    w = RstripWriter(out)
    w.write("one  \ntw")
    w.write("o \n  ")
    w.flush()
    assert out.getvalue() == "one\ntwo\n"


def test_console_pads_no_line():
    out = io.StringIO()
    c = console(file=out, width=30)
    from rich.table import Table

    t = Table("a", "b")
    t.add_row("x", "y")
    c.print(t)
    lines = out.getvalue().splitlines()
    assert lines and all(line == line.rstrip() for line in lines)
    assert max(len(line) for line in lines) <= 30


def test_legend_breaks_between_entries():
    items = [Text("█ usable 442 GiB"), Text("R reserved 436.25 MiB"), Text("A ACPI data 3.57 MiB")]
    lines = [t.plain for t in wrap_items(items, 40)]
    assert lines == ["█ usable 442 GiB  R reserved 436.25 MiB", "A ACPI data 3.57 MiB"]


def test_pairs_side_by_side_then_stacked():
    rows = [("size", "0x3200000 (50 MiB)"), ("entry", "0x1000b20")]
    assert [t.plain for t in pairs(rows, 40)] == ["size   0x3200000 (50 MiB)",
                                                  "entry  0x1000b20"]
    long = [("a label longer than half of it", "value")]
    assert [t.plain for t in pairs(long, 40)] == ["a label longer than half of it",
                                                  "    value"]


def test_hex_wraps_by_whole_groups():
    data = bytes(range(21))
    assert wrap_hex(data, 40, group=4) == [
        "00 01 02 03 04 05 06 07 08 09 0a 0b",
        "0c 0d 0e 0f 10 11 12 13 14",
    ]
