"""Command-line options made from a model's declared dataclasses, so that a new model needs no
CLI code: every field of its ``Config`` becomes an option of `slp train NAME` (and of `slp train
generator --arch NAME`), every field of its ``GenerateOptions`` an option of `slp generate --model
DIR`, each with the one-line help of its :func:`~slp_cli.models.option` declaration and the
preset's value as the shown default.

Values arrive as typed options (int, float, str, ``--x/--no-x`` for booleans) or, for list,
tuple and dict fields, as one comma-separated string (``--lora-targets q,v``,
``--weights body=1,face=2``) parsed here by the field's type.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Callable, Optional

import typer

from ..errors import SlpError

_SCALARS = (int, float, str, bool)


def _base_type(tp) -> type:
    """int for ``int | None``, list for ``list[str]``...; str for anything else."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    if origin in (list, tuple, dict):
        return origin
    return tp if tp in _SCALARS + (list, tuple, dict) else str


def field_types(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: _base_type(hints.get(f.name, str)) for f in dataclasses.fields(cls)}


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag", f.name.replace("_", "-"))


def _literal(text: str):
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_value(kind: type, raw, flag: str):
    """A command-line value for a field of type ``kind``."""
    if raw is None or kind in _SCALARS:
        return raw
    parts = [p for p in str(raw).split(",") if p.strip()]
    if kind is dict and any("=" in p for p in parts):
        try:
            return {k.strip(): _literal(v) for k, v in (p.split("=", 1) for p in parts)}
        except ValueError:
            raise SlpError(f"--{flag} {raw!r}: expected key=value pairs separated by commas") from None
    values = [_literal(p) for p in parts]
    return tuple(values) if kind is tuple else values  # a dict field may take a list in its own order


def _default_shown(field: dataclasses.Field, preset: dict) -> str:
    if field.name in preset:
        value = preset[field.name]
    elif field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = field.default_factory()  # type: ignore[misc]
    else:
        return ""
    if isinstance(value, dict):
        value = ",".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    return f" [dim]\\[default: {value if value != '' else 'none'}][/]"


def dataclass_params(cls: type, prefix: str, panel: str, preset: dict | None = None,
                     skip: frozenset[str] = frozenset()) -> list[inspect.Parameter]:
    """One keyword parameter per field of ``cls`` (named ``prefix + field``), as typer options."""
    types = field_types(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind, flag = types[f.name], flag_of(f)
        help_text = (f.metadata.get("help") or "(undocumented)") + _default_shown(f, preset or {})
        if kind is bool:
            opt = typer.Option(None, f"--{flag}/--no-{flag}", help=help_text, rich_help_panel=panel,
                               show_default=False)
            annotation = Optional[bool]
        else:
            opt = typer.Option(None, f"--{flag}", help=help_text, rich_help_panel=panel, show_default=False)
            annotation = Optional[kind if kind in _SCALARS else str]
        out.append(inspect.Parameter(prefix + f.name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                                     annotation=annotation))
    return out


def collect(cls: type, prefix: str, kwargs: dict) -> dict:
    """The values given for ``cls``'s fields (popped from ``kwargs``), parsed; unset ones left out."""
    types = field_types(cls)
    out = {}
    for f in dataclasses.fields(cls):
        raw = kwargs.pop(prefix + f.name, None)
        if raw is not None:
            out[f.name] = parse_value(types[f.name], raw, flag_of(f))
    return out


def make_command(name: str, fn: Callable[..., None], params: list[inspect.Parameter], *, help: str,
                 epilog: str | None = None, panel: str | None = None):
    """A click command (built by typer) calling ``fn(**kwargs)`` with the options ``params``."""
    def command(**kwargs: Any) -> None:
        fn(**kwargs)

    flags = [d for p in params for d in getattr(p.default, "param_decls", None) or ()]
    seen = [f.split("/")[0] for f in flags]
    dup = sorted({f for f in seen if seen.count(f) > 1})
    if dup:
        raise TypeError(f"`slp {name}`: option(s) {', '.join(dup)} declared twice (a model field shadows a "
                        "command option: give the field another flag)")
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = help
    app = typer.Typer(add_completion=False, rich_markup_mode="rich", pretty_exceptions_enable=False)
    app.command(name, help=help, epilog=epilog, rich_help_panel=panel)(command)
    return typer.main.get_command(app)


def peek(args: list[str], flag: str) -> str | None:
    """The value of ``flag`` among not-yet-parsed arguments (``--flag V`` or ``--flag=V``)."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def params_of(fn: Callable) -> list[inspect.Parameter]:
    """A typer function's own parameters, with resolved annotations (to extend with generated ones)."""
    hints = typing.get_type_hints(fn)
    return [p.replace(annotation=hints.get(p.name, p.annotation)) for p in inspect.signature(fn).parameters.values()]
