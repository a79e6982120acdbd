"""The command line's contract: every failure a user can cause is one line
on stderr with status 2, usage errors included."""

from __future__ import annotations

from pathlib import Path

import pytest

from noteforge.cli.app import main

SAMPLE = str(Path(__file__).resolve().parents[2] / "samples" / "synthetic-linux-6.12-amd64.elf")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["set-note", SAMPLE, "-o", "/nonexistent/out"],
         "noteforge: error: noteforge set-note: Missing option '--type'. (see --help)"),
        (["verify", SAMPLE],
         "noteforge: error: noteforge verify: Missing option '--e820'. (see --help)"),
        (["notes", "--bogus", SAMPLE],
         "noteforge: error: noteforge notes: No such option: --bogus (see --help)"),
        (["no-such-command"],
         "noteforge: error: noteforge: No such command 'no-such-command'. (see --help)"),
    ],
)
def test_usage_errors_are_one_line_and_status_2(argv, expected, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == expected + "\n"
    assert captured.out == ""


def test_help_is_status_0(capsys):
    assert main(["verify", "--help"]) == 0
    assert "--e820" in capsys.readouterr().out


def test_verdict_exit_codes(capsys, tmp_path):
    table = tmp_path / "map.txt"
    table.write_text("0x0 0x9fc00 1\n0x100000 0x1000000 1\n0x1000000 0x2000000 2\n"
                     "0x2000000 0x80000000 1\n")
    six_one = SAMPLE.replace("6.12", "6.1")
    # 6.12 relocates past the reserved block at 16 MiB: 0; 6.1 cannot move: 1.
    assert main(["verify", SAMPLE, "--e820", str(table), "--dom0-mem", "all"]) == 0
    assert main(["verify", six_one, "--e820", str(table), "--dom0-mem", "all"]) == 1
