"""The `slp` command: one sub-command per pipeline stage.

Every module in this package that defines ``register(app)`` adds its commands; the modules
hold no logic (they parse options and call the library). Heavy imports happen inside command
bodies so that `slp --help` stays instant.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from typer.core import TyperGroup

from ..errors import SlpError
from . import __path__ as _cli_path
from .common import DYNAMIC, console


class Commands(TyperGroup):
    """The stages; a command registered in DYNAMIC is rebuilt from its arguments (e.g. the model's
    own options of `slp generate --model DIR`)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # typer would exit 130 without a word
            console.print(f"[yellow]interrupted[/]: {e or 'outputs written so far are kept; re-run to resume'}",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    def resolve_command(self, ctx, args):
        if args and args[0] in DYNAMIC:
            cmd = DYNAMIC[args[0]](args[1:])
            if cmd is not None:
                return args[0], cmd, args[1:]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=Commands,
    name="slp",
    help="Sign language production: text to 3D signing poses. Each command is a pipeline stage "
    "that reads and writes HDF5 artifacts (see `slp info`).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

for _mod in sorted(m.name for m in pkgutil.iter_modules(_cli_path)):
    _module = importlib.import_module(f"{__package__}.{_mod}")
    if hasattr(_module, "register"):
        _module.register(app)


def run(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``: bad input is one line on stderr and exit code 1, Ctrl-C says
    what was kept and exits 130."""
    try:
        app(argv, prog_name="slp")
    except SlpError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 1
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def main() -> None:
    """Entry point of the `slp` command."""
    sys.exit(run())
