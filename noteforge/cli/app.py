"""The `noteforge` command. It only wires arguments to the library and hands
results to the renderers; each command lives in noteforge/cli/<module>.py and
registers itself there.

Start-up is most of what a user waits for (`noteforge notes` reads its notes in
under a millisecond), so nothing is imported before a command needs it:

- commands are registered lazily (LazyGroup): `noteforge notes` imports
  noteforge.cli.notes and nothing of verify, matrix or the writer, and
  `noteforge --help` imports no command module at all (the one-line summaries
  are in COMMANDS below);
- typer >= 0.25 converts every parameter value through a pydantic TypeAdapter,
  which costs ~80 ms of imports (pydantic, pydantic-core, annotated-types) for
  values that are plain strings and integers here; lean_coercion() gives those
  parameters a converter of their own (click's messages), and anything else
  keeps typer's.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from noteforge.errors import NoteforgeError

# name -> (module in noteforge.cli, one-line summary for `noteforge --help`), in
# the order of `noteforge --help`. The command's own help (its docstring) is
# shown by `noteforge NAME --help`; tests/cli/test_startup.py checks the summary
# against it.
COMMANDS: dict[str, tuple[str, str]] = {
    "notes": ("notes", "Show every Xen ELF note of IMAGE as Xen reads it."),
    "extract": ("extract", "Decompress the kernel ELF out of IMAGE into OUTPUT, atomically."),
    "e820": ("e820", "Read a memory map: Xen's clean-up and dom0's map."),
    "verify": ("verify", "Would IMAGE load as a PVH dom0 on MAP: where, and why not."),
    "set-reloc": ("write", "Give IMAGE a PHYS32_RELOC note."),
    "set-note": ("write", "Set any Xen note of IMAGE, encoded the way Xen reads it."),
    "remove-note": ("write", "Remove a Xen note from IMAGE without moving anything."),
    "compare": ("compare", "Images side by side: notes, load range, alignment designs."),
    "explain": ("compare", "One image, design by design."),
    "matrix": ("matrix", "Check many kernel images against many machines' e820 maps."),
    "check": ("check", "Check each kernel in TARGET... as a relocatable PVH dom0."),
}

# The value an option takes, in capitals as in the usage line ({IMAGE}, MAP,
# SIZE); flags take none (typer would show '<bool>', '<str>').
METAVARS = {
    "e820": "MAP", "dom0_mem": "SIZE", "initrd": "FILE", "initrd_size": "SIZE",
    "initrd_cmdline": "TEXT", "cmdline": "TEXT", "max_decompressed": "SIZE", "svg": "FILE",
    "html": "FILE", "html_out": "FILE", "out": "FILE", "output": "FILE", "xen_version": "VERSION",
    "align_from": "SOURCE", "which": "N|NAME", "jobs": "N", "dom0_vcpus": "N", "vcpus": "N",
    "align": "SIZE", "min": "ADDR", "max": "ADDR", "words": "N", "value": "VALUE",
    "type": "TYPE", "note_type": "TYPE", "format": "FORMAT", "map_format": "FORMAT",
    "policy": "POLICY",
}


def tidy_help(command, summary: str | None = None) -> None:
    """Consistent help across commands: arguments and option values in
    capitals, no placeholder on flags, the one-line summary of COMMANDS."""
    if summary is not None:
        command.short_help = summary
    for param in command.params:
        if param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = (param.name or "").upper()
            elif param.nargs != 1:  # click adds the '...' of a list itself
                param.metavar = param.metavar.removesuffix("...")
            # The name says what it is ('IMAGE <str>' says it twice).
            param.display_type_rich = lambda ctx: None
        elif getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.metavar is None:
            meta = METAVARS.get(param.name or "", (param.name or "value").upper())
            param.metavar = meta + ("..." if getattr(param, "multiple", False) else "")


class _Summary(typer.core.TyperCommand):
    """What `noteforge --help` lists for a command not loaded yet: its name
    and summary. Never invoked: LazyGroup swaps in the real command first."""


class LazyGroup(TyperGroup):
    """A typer group whose commands are imported when they are used."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loaded: set[str] = set()
        for name, (_module, summary) in COMMANDS.items():
            self.commands.setdefault(name, _Summary(name=name, help=summary,
                                                    short_help=summary))

    def load(self, name: str) -> typer.core.TyperCommand | None:
        """The real click command for `name`, built from its module (only
        that command: a module may register several)."""
        if name not in COMMANDS:
            return None
        if name not in self._loaded:
            self.commands[name] = _build(COMMANDS[name][0], name)
            tidy_help(self.commands[name], COMMANDS[name][1])
            self._loaded.add(name)
        return self.commands[name]

    def resolve_command(self, ctx, args):
        if args:
            self.load(args[0])
        return super().resolve_command(ctx, args)


def _build(module: str, name: str) -> typer.core.TyperCommand:
    import importlib

    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                      rich_markup_mode=None)
    importlib.import_module(f"noteforge.cli.{module}").register(sub)
    (info,) = [i for i in sub.registered_commands if i.name == name]
    return typer.main.get_command_from_info(
        info, pretty_exceptions_short=sub.pretty_exceptions_short,
        rich_markup_mode=sub.rich_markup_mode,
    )


def lean_coercion() -> None:
    """Give str, bool, int, Path and list-of-str parameters a converter that
    does not go through pydantic: typer >= 0.25 builds a pydantic TypeAdapter
    per parameter on first use (the help flag included), ~80 ms of imports for
    values that are plain strings and integers here. Older typer uses click's
    types and needs nothing; any other annotation keeps typer's conversion."""
    try:
        from typer._coercion import RuntimeParam
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - typer < 0.25
        return
    original = _TyperParameter.get_runtime_param
    if getattr(original, "noteforge_lean", False):
        return
    plain = _plain_class(RuntimeParam)

    def get_runtime_param(self):
        if getattr(self, "_runtime_param", None) is None:
            desc = self.type_descriptor
            convert = _converter(desc)
            if convert is not None:
                self._runtime_param = plain(parameter_info=desc.parameter_info,
                                            annotation=desc.annotation, convert=convert)
        return original(self)

    get_runtime_param.noteforge_lean = True
    _TyperParameter.get_runtime_param = get_runtime_param


def _plain_class(base):
    from dataclasses import dataclass
    from typing import Any

    @dataclass(frozen=True)
    class Plain(base):
        convert: Any

        def _coerce_value(self, value, param, ctx):
            if isinstance(value, (list, tuple)):
                return [self.convert(v, param, ctx) for v in value]
            return self.convert(value, param, ctx)

    return Plain


def _converter(desc):
    from pathlib import Path
    from typing import get_args, get_origin

    info = desc.parameter_info
    annotation = desc.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (None,)
    if desc.is_file or desc.is_choice or getattr(info, "parser", None) is not None:
        return None
    if annotation is str:
        return _as_str
    if annotation is bool:
        return _as_bool
    if annotation is int:
        return lambda v, p, c: _as_int(v, p, c, info.min, info.max)
    if annotation is Path and not (
        getattr(info, "exists", False) or getattr(info, "resolve_path", False)
        or getattr(info, "writable", False) or getattr(info, "file_okay", True) is not True
        or getattr(info, "dir_okay", True) is not True
    ):
        return lambda v, p, c: v if isinstance(v, Path) else Path(v)
    return None


def _as_str(value, param, ctx):
    return value if isinstance(value, str) else str(value)


def _as_bool(value, param, ctx):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise typer.BadParameter(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)


def _as_int(value, param, ctx, low, high):
    # click's IntParamType and IntRange messages.
    try:
        n = value if isinstance(value, int) else int(str(value).strip(), 10)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a valid integer.", ctx=ctx,
                                 param=param) from None
    if (low is not None and n < low) or (high is not None and n > high):
        if low is not None and high is not None:
            rng = f"{low}<=x<={high}"
        else:
            rng = f"x>={low}" if low is not None else f"x<={high}"
        raise typer.BadParameter(f"{n} is not in the range {rng}.", ctx=ctx, param=param)
    return n


lean_coercion()

app = typer.Typer(
    name="noteforge",
    cls=LazyGroup,
    help="Read, write and verify the Xen PVH ELF notes of kernel images, and predict "
    "where Xen places a PVH dom0 kernel on a given memory map.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: no boxes, no padding, reads the same in a pipe and
    # at 80 columns (rich's panels pad every line and draw flags as '<bool>').
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"noteforge {version('noteforge')}")
        except PackageNotFoundError:  # pragma: no cover - run from a bare checkout
            print("noteforge (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", help="Print noteforge's version and exit.", is_eager=True,
        callback=_version,
    ),
) -> None:
    # A callback makes `app` a group even though no command is registered on it
    # (LazyGroup supplies them); its docstring would be the help, `help=` above is.
    pass


def _usage_error_type() -> type[Exception]:
    # typer 0.29 vendors click as typer._click; older typer depends on click.
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - older typer
        from click.exceptions import ClickException
    return ClickException


def _die_of_sigpipe() -> None:
    """End as a coreutils tool ends when its reader goes away (`yes | head -1`):
    killed by SIGPIPE, silently, so the shell sees status 141 (128 + 13) and
    `set -o pipefail` scripts can tell a cut-short run from a verdict. Python
    ignores SIGPIPE and raises BrokenPipeError instead; undo that, then take
    the signal."""
    import os
    import signal

    try:  # nothing more may reach the broken pipe (the interpreter flushes at exit)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(141)  # no SIGPIPE on this platform: the status a shell would show


def main(argv: list[str] | None = None) -> int:
    """Console entry point; see _main. Output is flushed here, inside the
    broken-pipe handling, not by the interpreter at exit."""
    try:
        rc = _main(argv)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        _die_of_sigpipe()
    except SystemExit:
        # click turns EPIPE into a quiet exit 1 behind a PacifyFlushWrapper.
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _die_of_sigpipe()
        raise
    return 141  # pragma: no cover - _die_of_sigpipe does not return


def _main(argv: list[str] | None = None) -> int:
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
    return rc if isinstance(rc, int) else 0


def run() -> None:
    sys.exit(main())
