"""Readable anywhere (issue 19): the plain text every reporting command prints
in a pipe at COLUMNS=80, pinned for the samples; every line within 80
columns, none ending in a blank; help without type placeholders; a broken
pipe ends the process as it ends `yes | head -1`.

The expected texts live in tests/data/render80/; after a deliberate change of
the output, rewrite them with NOTEFORGE_UPDATE_RENDER80=1 and read the diff."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from noteforge.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
EXPECTED = ROOT / "tests" / "data" / "render80"
WRX80 = "samples/asus-wrx80e-sage-threadripper-pro-xen.xen"

CASES = {
    "verify-6.12-wrx80": ["verify", "samples/synthetic-linux-6.12-amd64.elf", "--e820", WRX80],
    "verify-6.1-wrx80": ["verify", "samples/synthetic-linux-6.1-amd64.elf", "--e820", WRX80,
                         "--dom0-mem", "8G"],
    "notes-6.12-bzimage": ["notes", "samples/synthetic-linux-6.12-amd64.bzImage"],
    "notes-freebsd": ["notes", "samples/synthetic-freebsd-amd64.elf"],
    "compare-linux-freebsd": ["compare", "samples/synthetic-linux-6.12-amd64.elf",
                              "samples/synthetic-freebsd-amd64.elf", "--e820", WRX80],
    "explain-686-pae": ["explain", "samples/synthetic-linux-6.1-686-pae.bzImage", "--e820",
                        "samples/intel-tgl-u-rvp-lkml.dmesg"],
    "e820-framework": ["e820", "samples/framework-laptop-tgl-insyde.dmesg"],
    "matrix-samples": ["matrix", "--images", "samples/synthetic-linux-6.12-amd64.elf",
                       "samples/synthetic-linux-6.1-amd64.elf",
                       "samples/synthetic-freebsd-amd64.elf", "--maps", WRX80,
                       "samples/intel-tgl-u-rvp-lkml.dmesg",
                       "samples/framework-laptop-tgl-insyde.dmesg", "--jobs", "1"],
}


def run_piped(args: list[str]) -> str:
    """The command as a user runs it into a pipe: a real process, COLUMNS=80,
    relative paths from the repository (as in the README)."""
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    p = subprocess.run([sys.executable, "-m", "noteforge", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode in (0, 1), p.stderr
    assert p.stderr == ""
    return p.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_plain_text_at_80_columns(name):
    out = run_piped(CASES[name])
    lines = out.splitlines()
    assert "\x1b" not in out  # no colour codes in a pipe
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert all(line == line.rstrip() for line in lines)
    path = EXPECTED / f"{name}.txt"
    if os.environ.get("NOTEFORGE_UPDATE_RENDER80"):
        path.write_text(out)
    assert out == path.read_text()


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.elf"))
                         + sorted(p.name for p in SAMPLES.glob("*.bzImage")))
def test_every_sample_fits_80_columns(sample):
    for args in (["notes", f"samples/{sample}"],
                 ["verify", f"samples/{sample}", "--e820", WRX80],
                 ["explain", f"samples/{sample}", "--e820", WRX80]):
        lines = run_piped(args).splitlines()
        assert all(len(line) <= 80 and line == line.rstrip() for line in lines), args


def test_the_map_picture_reads_without_colour():
    out = run_piped(CASES["verify-6.12-wrx80"])
    # Each type its own glyph in the legend; each mark its own labelled line.
    assert "█ usable 442 GiB  R reserved 436.25 MiB  A ACPI data 3.57 MiB" in out
    assert "N ACPI NVS 3.9 MiB  U unusable 6.24 GiB  · hole" in out
    lines = out.splitlines()
    bar = lines[lines.index("0G              1G              2G              3G              4G")
                + 1]
    assert bar[1] == "n"  # the 132 KiB of ACPI NVS at 64 MiB, inside RAM
    assert "▲▲ requested" in lines and " ▲ blocking" in lines


def test_help_has_no_type_placeholders(capsys):
    for command in ("notes", "extract", "e820", "verify", "set-reloc", "set-note",
                    "remove-note", "compare", "explain", "matrix"):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out and "<str>" not in out, command
        assert out.startswith(f"Usage: noteforge {command} [OPTIONS]"), command
        assert all(len(line) <= 80 and line == line.rstrip() for line in out.splitlines())
    main(["verify", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("Usage: noteforge verify [OPTIONS] {IMAGE}\n")
    assert "  --e820 MAP " in out and "  --json " in out and "  --dom0-mem SIZE " in out


def test_top_level_help_one_line_per_command_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    commands = out.split("Commands:\n")[1].splitlines()
    from noteforge.cli.app import COMMANDS

    # Each command one line: its name and the summary written for it (a new
    # command without one would show its docstring cut with '...').
    assert len(commands) >= 10
    for line in commands:
        name = line.split()[0]
        assert line == f"  {name.ljust(11)}  {COMMANDS[name][1]}"
    assert "  verify       Would IMAGE load as a PVH dom0 on MAP: where, and why not." in commands
    assert not any(c.endswith("...") for c in commands)
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"noteforge {version('noteforge')}\n"


@pytest.mark.parametrize("args", [
    ["verify", "samples/synthetic-linux-6.1-amd64.elf", "--e820", WRX80],  # a verdict of 1
    ["notes", "samples/synthetic-linux-6.12-amd64.elf"],
    ["notes", "--json", "samples/synthetic-linux-6.12-amd64.elf"],
])
def test_a_broken_pipe_ends_it_as_coreutils_do(args):
    """`yes | head -1`: the writer is killed by SIGPIPE, says nothing, and the
    shell shows 141. The reader here is gone before the first write, so the
    first write breaks, whatever the scheduling."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        p = subprocess.run([sys.executable, "-m", "noteforge", *args], cwd=ROOT,
                           stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert p.returncode == -signal.SIGPIPE
    assert p.stderr == b""


def test_readme_shows_the_pinned_verify_output():
    readme = (ROOT / "README.md").read_text()
    assert (EXPECTED / "verify-6.12-wrx80.txt").read_text() in readme
