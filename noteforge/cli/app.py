"""The `noteforge` command. It only wires arguments to the library and hands
results to the renderers; each command lives in noteforge/cli/<name>.py
and registers itself here."""

from __future__ import annotations

import sys

import typer

from noteforge.errors import NoteforgeError

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
    "write",
    "compare",
    "matrix",
    "check",
)


def _register() -> None:
    import importlib

    for name in _COMMANDS:
        importlib.import_module(f"noteforge.cli.{name}").register(app)


_register()


def _usage_error_type() -> type[Exception]:
    # typer 0.29 vendors click as typer._click; older typer depends on click.
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - older typer
        from click.exceptions import ClickException
    return ClickException


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Every failure the user can cause is one line on
    stderr and status 2: NoteforgeError from the library, and usage errors
    (a missing option, a bad value), which click would otherwise draw as a
    multi-line box."""
    usage_error = _usage_error_type()
    try:
        rc = app(args=argv, prog_name="noteforge", standalone_mode=False)
    except NoteforgeError as err:
        print(f"noteforge: error: {err}", file=sys.stderr)
        return 2
    except usage_error as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            err.show()  # `noteforge` or `noteforge CMD` alone: the help, as asked for
            return 2
        ctx = getattr(err, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        message = " ".join(err.format_message().split())
        print(f"noteforge: error: {where}{message} (see --help)", file=sys.stderr)
        return 2
    except typer.Abort:
        print("noteforge: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("noteforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return rc if isinstance(rc, int) else 0


def run() -> None:
    sys.exit(main())
