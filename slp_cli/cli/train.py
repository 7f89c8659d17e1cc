"""`slp train <model>`: one sub-command per registered model, all through the shared loop.

Every training command takes the same loop options (added by ``train_command``) plus the
options of its own model; a model's command function only turns its options into config
overrides (and extra inputs), and returns them.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Callable, List, Optional

import typer

from .common import MODELS, console, print_json

train_app = typer.Typer(help="Train a model (tokenizers, generators, back-translator) with the shared loop: "
                        "CPU, CUDA (bf16) or several GPUs with torchrun.", no_args_is_help=True)

LOOP_OPTIONS = [
    ("data", List[Path], typer.Option(..., "--data", help="Training artifact(s) (.h5), normalized; repeat for "
                                      "one artifact per language. Uses their train and dev splits.")),
    ("output", Path, typer.Option(..., "-o", "--output", help="Run directory: config.json, checkpoint.pt, "
                                  "metrics.csv, loss.png and, when done, model.pt.")),
    ("preset", str, typer.Option("default", help="Registered size preset: 'default' follows the paper; "
                                 "'tiny' is for tests and smoke runs.")),
    ("max_steps", Optional[int], typer.Option(None, help="Optimizer steps (default: the preset's).")),
    ("batch_size", Optional[int], typer.Option(None, help="Global batch size: sentences, or windows for the "
                                               "VQ-VAE (default: the preset's).")),
    ("lr", Optional[float], typer.Option(None, help="Learning rate (default: the paper's).")),
    ("device", str, typer.Option("auto", help="auto (CUDA if available), cpu or cuda. bf16 autocast on CUDA.")),
    ("seed", int, typer.Option(0, help="Seed of initialisation and data order.")),
    ("resume", bool, typer.Option(False, "--resume", help="Continue the run in --output exactly where its "
                                  "last checkpoint stopped.")),
    ("dry_run", bool, typer.Option(False, "--dry-run", help="Build the config and the model, print the "
                                   "parameter count, and exit.")),
    ("workers", Optional[int], typer.Option(None, help="Data-loading processes (default: 2 on CUDA, 0 on CPU).")),
    ("eval_every", Optional[int], typer.Option(None, help="Evaluate on the dev split every N steps.")),
    ("checkpoint_every", Optional[int], typer.Option(None, help="Write checkpoint.pt every N steps.")),
    ("patience", Optional[int], typer.Option(None, help="Stop after this many evaluations without a better "
                                             "dev loss (0: never).")),
]
_LOOP_NAMES = [name for name, _, _ in LOOP_OPTIONS]
_CONFIG_KEYS = ("max_steps", "batch_size", "lr", "eval_every", "checkpoint_every", "patience")


def train_command(name: str, help: str | None = None) -> Callable:
    """Register ``fn`` as `slp train <name>`, adding the loop options to its own.

    ``fn(**its own options)`` returns ``(overrides, extra)``: config values to override and
    extra inputs for the model's ``from_data`` (e.g. a tokenizer directory), or ``(overrides,
    extra, model)`` to train the registered ``model`` it picked (e.g. `slp train generator --arch`).
    """

    def deco(fn):
        own = list(inspect.signature(fn).parameters.values())
        loop = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=t)
                for n, t, d in LOOP_OPTIONS]

        def command(**kwargs):
            loop_args = {n: kwargs.pop(n) for n in _LOOP_NAMES}
            overrides, extra, *model = fn(**kwargs)
            langs = overrides.pop("langs", None)
            run_training(model[0] if model else name, loop_args, overrides, extra, langs)

        command.__signature__ = inspect.Signature(own + loop)
        command.__annotations__ = {p.name: p.annotation for p in own + loop}
        command.__doc__ = help or fn.__doc__
        command.__name__ = fn.__name__
        train_app.command(name)(command)
        return fn

    return deco


def run_training(name: str, loop_args: dict, overrides: dict, extra: dict, langs) -> None:
    from ..training import TrainOptions, train

    overrides = {**overrides, **{k: loop_args[k] for k in _CONFIG_KEYS}}
    options = TrainOptions(output=loop_args["output"], data=loop_args["data"], langs=langs,
                           device=loop_args["device"], seed=loop_args["seed"], resume=loop_args["resume"],
                           dry_run=loop_args["dry_run"], workers=loop_args["workers"], extra=extra,
                           log=lambda line: console.print(line, highlight=False))
    summary = train(name, options, preset=loop_args["preset"], overrides=overrides)
    if loop_args["dry_run"]:
        console.print(f"{name} ({loop_args['preset']}): {summary['parameters']:,} parameters, "
                      f"{summary['train_samples']} train / {summary['dev_samples']} dev samples")
        print_json(summary["config"])
        return
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 speaks for all
    console.print(f"trained {name}: {summary['steps']} steps in {summary['seconds']:.0f} s, best dev loss "
                  f"{summary['best_dev_loss']:.4g}; model in {summary['output']}/model.pt", highlight=False)


def split_langs(langs: Optional[str]) -> list[str] | None:
    return [x.strip() for x in langs.split(",") if x.strip()] if langs else None


@train_command("vae")
def vae(
    beta: Optional[float] = typer.Option(None, help="KL weight (paper: 1e-6 PHOENIX-2014T, 1e-7 CSL-Daily)."),
    capacity: Optional[str] = typer.Option(None, help="'base' (2-layer branches) or 'large' (3-layer hands "
                                           "and face, as on CSL-Daily)."),
    entangled: bool = typer.Option(False, "--entangled", help="Single-branch ablation (table 1 of A2V-SLP)."),
    langs: Optional[str] = typer.Option(None, help="Comma-separated languages to train on (default: all)."),
):
    """Articulator-disentangled VAE of A2V-SLP: per-frame 80-dim Gaussian latents (body 8, hands 28+28, face 16)."""
    return {"beta": beta, "capacity": capacity, "entangled": entangled or None, "langs": split_langs(langs)}, {}


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train", rich_help_panel=MODELS)
