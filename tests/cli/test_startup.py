"""What each command imports (start-up is most of what a user waits for: see
noteforge/cli/app.py and bench/bench_cli.py). Whole processes, as a user runs
them; no timing is asserted, only which modules end up loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ELF = SAMPLES / "synthetic-linux-6.1-amd64.elf"
MAP = SAMPLES / "asus-wrx80e-sage-threadripper-pro-xen.xen"

# Imported by a command that has no use for them: pydantic (typer's parameter
# conversion), LIEF (tests only), and the parts of noteforge another command needs.
NEVER = ("pydantic", "lief")


def loaded(*argv: str) -> tuple[int, set[str]]:
    """Run `noteforge argv` in a fresh interpreter; its exit status and the
    top-level and noteforge modules it imported."""
    code = (
        "import sys, json\n"
        "from noteforge.cli.app import main\n"
        "try:\n"
        f"    rc = main({list(argv)!r})\n"
        "except SystemExit as e:\n"
        "    rc = e.code\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return proc.returncode, set(json.loads(line[len("MODULES "):]))


def roots(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods}


def under(mods: set[str], prefix: str) -> set[str]:
    return {m for m in mods if m == prefix or m.startswith(prefix + ".")}


def test_notes_json_imports_only_the_image_reader():
    rc, mods = loaded("notes", "--json", str(ELF))
    assert rc == 0
    assert not roots(mods) & {*NEVER, "rich", "elftools"}
    for part in ("noteforge.xen", "noteforge.maps", "noteforge.fleet", "noteforge.write",
                 "noteforge.verify", "noteforge.designs", "noteforge.render"):
        assert not under(mods, part), part
    # the command modules of the other commands are not even imported
    assert under(mods, "noteforge.cli") == {"noteforge.cli", "noteforge.cli.app",
                                           "noteforge.cli.notes"}


def test_top_level_help_imports_no_command():
    rc, mods = loaded("--help")
    assert rc == 0
    assert not roots(mods) & set(NEVER)
    assert under(mods, "noteforge.cli") == {"noteforge.cli", "noteforge.cli.app"}
    assert not under(mods, "noteforge.image")


def test_verify_imports_neither_fleet_nor_writer():
    rc, mods = loaded("verify", str(ELF), "--e820", str(MAP), "--json")
    assert rc in (0, 1)
    assert not roots(mods) & set(NEVER)
    for part in ("noteforge.fleet", "noteforge.write", "noteforge.designs"):
        assert not under(mods, part), part
    assert "noteforge.xen.placement" in mods


def test_set_reloc_imports_no_placement(tmp_path):
    out = tmp_path / "out.elf"
    rc, mods = loaded("set-reloc", str(ELF), "--align", "2M", "--force", "-o", str(out))
    assert rc == 0 and out.exists()
    assert not roots(mods) & {*NEVER, "rich"}  # a pipe: the report is plain text
    for part in ("noteforge.fleet", "noteforge.maps", "noteforge.xen.placement",
                 "noteforge.designs"):
        assert not under(mods, part), part


@pytest.mark.parametrize("argv, message", [
    (["set-reloc", str(ELF), "--words", "abc", "--dry-run"], "'abc' is not a valid integer."),
    (["matrix", "--images", str(ELF), "--maps", str(MAP), "-j", "0"],
     "0 is not in the range x>=1."),
])
def test_int_parameters_are_checked_as_click_does(argv, message, capsys):
    from noteforge.cli.app import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_summaries_are_the_start_of_each_commands_help():
    # `noteforge --help` lists COMMANDS' summaries without importing the
    # commands; each must be how the command's own help begins.
    import typer.main

    from noteforge.cli.app import COMMANDS, app

    group = typer.main.get_command(app)
    assert list(group.list_commands(None)) == list(COMMANDS)
    for name, (_module, summary) in COMMANDS.items():
        cmd = group.load(name)
        assert cmd.name == name
        text = " ".join(cmd.help.split())
        assert text.startswith(summary.rstrip(".")), name


@pytest.mark.parametrize("text", [
    "method: [bold]new-segment[/bold]: a new PT_NOTE",
    "[bold red]WARNING: adding PHYS32_RELOC[/bold red]",
    r"escaped \[bold] stays, \\[bold]doubled[/bold] halves",
    "ranges [0x1000000, 0x1ffffff] and /tmp/x[1].elf are data",
])
def test_plain_report_is_what_rich_prints_in_a_pipe(text):
    # set-reloc's report in a pipe skips importing rich; asked for markup, the
    # text must be what rich itself prints there.
    import io

    from rich.console import Console

    from noteforge.cli.write import PlainConsole

    ours, theirs = io.StringIO(), io.StringIO()
    PlainConsole(ours).print(text, markup=True)
    Console(file=theirs, highlight=False, soft_wrap=True).print(text)
    assert ours.getvalue() == theirs.getvalue()
    assert "[bold" not in ours.getvalue() or "escaped" in text


@pytest.mark.parametrize("text", ["a path /tmp/k[bold]x.elf", "note [red] text [/red]"])
def test_data_is_printed_as_it_is(text):
    # Without markup=True, '[word]' in data (a path, a note, a log line) is
    # printed, not taken as a style tag, by the plain console and by rich's.
    import io

    from noteforge.cli.write import PlainConsole
    from noteforge.render.term import console

    ours, theirs = io.StringIO(), io.StringIO()
    PlainConsole(ours).print(text)
    console(file=theirs).print(text)
    assert ours.getvalue() == theirs.getvalue() == text + "\n"
