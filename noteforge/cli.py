"""The `noteforge` command. It only wires arguments to the library and hands
results to the renderers; each command lives in noteforge/commands/<name>.py
and registers itself here."""

from __future__ import annotations

import sys

import typer

from .errors import NoteforgeError

app = typer.Typer(
    name="noteforge",
    help="Read, write and verify the Xen PVH ELF notes of kernel images, and predict "
    "where Xen places a PVH dom0 kernel on a given memory map.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Import order is the order of `noteforge --help`.
_COMMANDS = (
    "notes",
    "extract",
    "e820",
    "verify",
    "writecmds",
    "compare",
    "matrix",
)


def _register() -> None:
    import importlib

    for name in _COMMANDS:
        importlib.import_module(f"noteforge.commands.{name}").register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: NoteforgeError becomes one line on stderr and status 2.

    The app runs in click's standalone mode, which prints usage errors itself
    and turns every outcome into SystemExit; only our own errors come out."""
    try:
        app(args=argv, prog_name="noteforge")
    except SystemExit as ex:
        code = ex.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except NoteforgeError as err:
        print(f"noteforge: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("noteforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


def run() -> None:
    sys.exit(main())
