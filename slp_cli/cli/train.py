"""`slp train NAME` for every registered model, and `slp train generator --arch NAME` for every
registered text-to-pose generator, all through the shared loop (slp_cli/training.py).

The commands are made from the models' declarations when they are asked for (so `slp --help`
imports no model): the run options below, the loop settings and the model's own hyperparameters
(its ``Config`` fields), its ``inputs`` (paths such as ``--tokenizer``) and its ``shortcuts``
(flags such as ``--whole-body``). Adding a model adds its command; nothing here changes.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from ..errors import SlpError
from .common import MODELS, RichProgress, console, print_json
from .options import collect, dataclass_params, make_command, peek

GENERATOR = "generator"
DEFAULT_ARCH = "a2v"
RUN, LOOP, MODEL = "Run", "Training loop", "Model"

RUN_OPTIONS = [
    ("data", Optional[List[Path]], typer.Option(None, "--data", help="Training artifact(s) (.h5), normalized; "
                                                "repeat for one artifact per language. Uses their train and dev "
                                                "splits. Text-only models (text2gloss) also read annotation JSON "
                                                "lines (.jsonl: id, text, glosses, lang, split).", rich_help_panel=RUN, show_default=False)),
    ("output", Optional[Path], typer.Option(None, "-o", "--output", help="Run directory: config.json, "
                                            "checkpoint.pt, metrics.csv, loss.png and, when done, model.pt "
                                            "(default: a folder named after the model).", rich_help_panel=RUN,
                                            show_default=False)),
    ("preset", Optional[str], typer.Option(None, help="Registered preset: 'default' follows the paper (the "
                                           "default for a new run); 'tiny' is for tests and smoke runs. A resumed "
                                           "run keeps its own.", rich_help_panel=RUN)),
    ("langs", Optional[str], typer.Option(None, help="Comma-separated languages to train on, e.g. asl,csl,dgs "
                                          "(default: every language in the data).", rich_help_panel=RUN)),
    ("device", str, typer.Option("auto", help="auto (CUDA if available), cpu, cuda or cuda:N. bf16 autocast on "
                                 "CUDA.", rich_help_panel=RUN)),
    ("seed", int, typer.Option(0, help="Seed of initialisation and data order.", rich_help_panel=RUN)),
    ("resume", bool, typer.Option(False, "--resume", help="Continue the run in --output exactly where its last "
                                  "checkpoint stopped (only loop settings may change).", rich_help_panel=RUN)),
    ("init", Optional[Path], typer.Option(None, help="Start from the weights, architecture and data state of a "
                                          "finished run of the same model (e.g. the next stage of a recipe).",
                                          rich_help_panel=RUN)),
    ("dry_run", bool, typer.Option(False, "--dry-run", help="Build the config and the model, print the parameter "
                                   "count and the hyperparameters, and exit.", rich_help_panel=RUN)),
    ("workers", Optional[int], typer.Option(None, help="Data-loading processes (default: 2 on CUDA, 0 on CPU).",
                                            rich_help_panel=RUN)),
]


def _params(cls) -> list[inspect.Parameter]:
    """Every option of `slp train` for the model class ``cls``."""
    from ..models import LOOP_FIELDS, TrainingConfig

    kw = inspect.Parameter.KEYWORD_ONLY
    preset = cls.presets.get("default", {})
    params = [inspect.Parameter(n, kw, default=d, annotation=t) for n, t, d in RUN_OPTIONS]
    params += [inspect.Parameter(f"in_{name}", kw, annotation=Optional[Path],
                                 default=typer.Option(None, f"--{name.replace('_', '-')}", help=help_text,
                                                      rich_help_panel=MODEL))
               for name, help_text in cls.inputs.items()]
    params += dataclass_params(TrainingConfig, "cfg_", LOOP, preset)
    params += dataclass_params(cls.Config, "cfg_", MODEL, preset, skip=LOOP_FIELDS)
    params += [inspect.Parameter(f"sc_{flag.replace('-', '_')}", kw, annotation=bool,
                                 default=typer.Option(False, f"--{flag}", rich_help_panel=MODEL, help="Shortcut: "
                                                      + ", ".join(f"{k}={v}" for k, v in values.items()) + "."))
                for flag, values in cls.shortcuts.items()]
    return params


def _overrides(cls, kwargs: dict) -> dict:
    """Config values given on the command line: the fields, then the shortcuts (one per field)."""
    overrides = collect(cls.Config, "cfg_", kwargs)
    set_by: dict[str, str] = {}
    for flag, values in cls.shortcuts.items():
        if kwargs.pop(f"sc_{flag.replace('-', '_')}", False):
            for k, v in values.items():
                if k in set_by:
                    raise SlpError(f"--{set_by[k]} and --{flag} both set {k}; choose one")
                set_by[k] = flag
                overrides[k] = v
    return overrides


def run_training(name: str, kwargs: dict) -> None:
    """Turn a train command's options into one run of the shared loop, and report it."""
    from ..models import TextToPose, get_model_class
    from ..training import TrainOptions, train

    cls = get_model_class(name)
    if not kwargs["data"]:
        command = f"slp train generator --arch {name}" if issubclass(cls, TextToPose) else f"slp train {name}"
        needs = " ".join(f"--{i.replace('_', '-')} {i.upper()}_DIR" for i in cls.inputs)
        raise SlpError(f"`{command}` needs --data: a normalized training artifact, e.g. `slp synth -o corpus.h5 && "
                       f"slp normalize corpus.h5 -o corpus.norm.h5 && {command} --data corpus.norm.h5 "
                       f"{needs + ' ' if needs else ''}-o {name}`")
    kwargs["output"] = kwargs["output"] or Path(name)
    overrides = _overrides(cls, kwargs)
    inputs = {k[3:]: v for k, v in list(kwargs.items()) if k.startswith("in_") and v is not None}
    for path in [*inputs.values(), *([kwargs["init"]] if kwargs["init"] else [])]:
        if not Path(path).exists():
            raise SlpError(f"{path}: not found")
    langs = [x.strip() for x in kwargs["langs"].split(",") if x.strip()] if kwargs["langs"] else None
    options = TrainOptions(output=kwargs["output"], data=kwargs["data"], langs=langs, device=kwargs["device"],
                           seed=kwargs["seed"], resume=kwargs["resume"], init=kwargs["init"],
                           dry_run=kwargs["dry_run"], workers=kwargs["workers"], inputs=inputs,
                           progress=RichProgress(), log=lambda line: console.print(line, highlight=False))
    summary = train(name, options, preset=kwargs["preset"], overrides=overrides)
    if kwargs["dry_run"]:
        console.print(f"{name} ({summary['preset']}): {summary['parameters']:,} parameters, "
                      f"{summary['train_samples']} train / {summary['dev_samples']} dev samples")
        print_json(summary["config"])
        return
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 speaks for all

    def dev(best):
        return (f"best dev {best['name']} {best['value']:.4g}" if abs(best["value"]) != float("inf")
                else "no dev split: the last weights are the model")

    field = summary.get("sequence")  # a sequence of runs (e.g. --stage all): a line per run it trained
    runs = [r for r in summary["runs"] if not r["done_before"]] if field else [summary]
    for run in runs:  # (the log has already named the runs done before)
        which = f" {field} {run[field]}" if field else ""
        console.print(f"trained {name}{which}: {run['steps']} steps in {run['seconds']:.0f} s, "
                      f"{dev(run['best_dev'])}; model in {run['output']}/model.pt", highlight=False)


def _doc(cls) -> str:
    return (cls.__doc__ or cls.name).strip().splitlines()[0]


def model_command(name: str):
    """`slp train NAME` for the registered model ``name``."""
    from ..models import get_model_class

    cls = get_model_class(name)

    def fn(**kwargs) -> None:
        run_training(name, kwargs)

    return make_command(name, fn, _params(cls), help=_doc(cls), epilog=f"Presets: {', '.join(cls.presets)}.")


def generator_command(arch: str):
    """`slp train generator --arch ARCH`: the options of that architecture."""
    from ..models import TextToPose, get_model_class, registered

    archs = registered(TextToPose)
    if arch not in archs:
        raise SlpError(f"unknown --arch {arch!r}; choose one of {', '.join(archs)}")
    cls = get_model_class(arch)
    listing = "; ".join(f"{n}: {_doc(c)}" for n, c in archs.items())
    arch_param = inspect.Parameter("arch", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        DEFAULT_ARCH, help=f"Generator architecture ({listing}). `slp train generator --arch NAME --help` lists "
        "that architecture's options.", rich_help_panel=RUN))

    def fn(arch: str, **kwargs) -> None:
        run_training(arch, kwargs)

    return make_command(GENERATOR, fn, [arch_param, *_params(cls)],
                        help=f"Text-to-pose generator over a frozen pose tokenizer; options shown for --arch {arch} "
                             f"({_doc(cls)}).", epilog=f"Presets of {arch}: {', '.join(cls.presets)}.")


class ModelCommands(TyperGroup):
    """The train sub-commands, one per registered model, built when asked for."""

    def list_commands(self, ctx) -> list[str]:
        from ..models import TextToPose, registered

        return [GENERATOR] + [n for n, c in registered().items() if not issubclass(c, TextToPose)]

    def get_command(self, ctx, name: str):
        from ..models import REGISTRY, TextToPose, registered

        if name == GENERATOR:
            return generator_command(DEFAULT_ARCH)
        registered()
        if name in REGISTRY and not issubclass(REGISTRY[name], TextToPose):
            return model_command(name)
        if name in REGISTRY:
            raise SlpError(f"{name} is a text-to-pose generator: train it with `slp train generator --arch {name}`")
        return None

    def resolve_command(self, ctx, args):
        if args and args[0] == GENERATOR:
            return GENERATOR, generator_command(peek(args[1:], "--arch") or DEFAULT_ARCH), args[1:]
        return super().resolve_command(ctx, args)


train_app = typer.Typer(cls=ModelCommands, no_args_is_help=True, add_completion=False,
                        help="Train a model (tokenizers, generators, back-translator) with the shared loop: CPU, "
                             "CUDA (bf16) or several GPUs with torchrun. `slp models` lists the models.")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train", rich_help_panel=MODELS)
