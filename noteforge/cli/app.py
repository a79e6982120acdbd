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
    "e820": ("e820", "Read a memory map, show Xen's clean-up and the map a PVH dom0 gets."),
    "verify": ("verify", "Would IMAGE load as a PVH dom0 on the machine whose memory map is "
                         "MAP: where, and why not."),
    "set-reloc": ("write", "Give IMAGE a PHYS32_RELOC note (Xen 4.19+: the kernel may be "
                           "loaded elsewhere)."),
    "set-note": ("write", "Set any Xen note of IMAGE, encoded the way Xen reads it."),
    "remove-note": ("write", "Remove a Xen note from IMAGE without moving anything."),
    "compare": ("compare", "Images side by side: notes, load range, and the alignment each "
                           "design takes."),
    "explain": ("compare", "One image, design by design: the alignment it yields and where "
                           "Xen puts the kernel."),
    "matrix": ("matrix", "Check many kernel images against many machines' e820 maps."),
    "check": ("check", "Check that each kernel in TARGET... can be a relocatable PVH dom0."),
}


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
            self._loaded.add(name)
        return self.commands[name]

    def resolve_command(self, ctx, args):
        if args:
            self.load(args[0])
        return super().resolve_command(ctx, args)


def _build(module: str, name: str) -> typer.core.TyperCommand:
    import importlib

    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
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
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
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
