"""What every trainable model is: an ``SlpModel`` with a config of hyperparameters, named presets,
learned data state, and the few methods the shared training loop calls.

* ``Config`` -- a dataclass of hyperparameters only (it inherits the loop settings of
  :class:`TrainingConfig`); each field is declared with :func:`option`, whose one-line help is
  what `slp models NAME` and `slp train ... --help` print; ``__post_init__`` validates values and
  never does I/O. ``presets`` are named overrides, always with a ``tiny`` one for tests.
* ``data`` -- what the model learnt from its training data that is not a weight: vocabularies,
  statistics, the frame rate of its poses... A JSON-able dict passed to ``__init__`` next to the
  config and stored in the checkpoint beside the weights, so a checkpoint rebuilds its model
  alone and ``config.json`` stays a readable list of hyperparameters.
* ``from_data(config, samples, **inputs)`` builds a model for training: it computes ``data`` from
  the training samples and from ``inputs`` (paths the model declares in ``inputs``, e.g. the
  tokenizer a generator reads).
* ``make_dataset(samples)`` / ``collate(items)`` / ``training_step(batch)`` /
  ``validation_step(batch)`` / ``configure_optimizers()``: what the loop calls.

The kinds of model (pose tokenizer, text-to-pose generator, pose-to-text translator) that the
stages use are declared in slp_cli/models/kinds.py; docs/adding-a-model.md is the contract in
one page.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import SlpError

CHECKPOINT_SCHEMA = "slp.checkpoint/2"


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None,
           factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its one-line help (and the command-line flag, when it is not the field's
    name with dashes)."""
    metadata = {"help": help, **({"flag": flag} if flag else {})}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class TrainingConfig:
    """Loop settings every model config inherits; presets and papers set the values. They may
    change when a run is resumed (e.g. a larger ``max_steps``)."""

    batch_size: int = option(32, "Global batch size (sentences; windows for the VQ-VAE).")
    max_steps: int = option(10000, "Optimizer steps.")
    lr: float = option(2e-4, "Learning rate.")
    grad_clip: float = option(1.0, "Clip the gradient norm to this (0: no clipping).")
    eval_every: int = option(500, "Evaluate on the dev split every N steps.")
    checkpoint_every: int = option(1000, "Write checkpoint.pt every N steps.")
    patience: int = option(20, "Stop after this many evaluations without a better dev loss (0: never).")
    log_every: int = option(10, "Log the training losses every N steps.")


LOOP_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainingConfig))


def config_dict(config) -> dict:
    return dataclasses.asdict(config)


def field_help(cls: type) -> dict[str, str]:
    """Field name -> one-line help of a config dataclass."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def build_dataclass(cls: type, values: dict, what: str):
    """``cls(**values)`` with unknown names and invalid values as one SlpError line."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise SlpError(f"{what} has no option(s) {', '.join(unknown)}; options: {', '.join(sorted(fields))}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise SlpError(f"{what}: invalid configuration: {e}") from None


class SlpModel(nn.Module):
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "model"  # set by the kinds in slp_cli/models/kinds.py
    Config: ClassVar[type] = TrainingConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # Paths from_data takes (given as `slp train NAME --<input> PATH`): name -> one-line help.
    inputs: ClassVar[dict[str, str]] = {}
    # Shortcut flags of `slp train NAME`: flag -> the config values it sets (e.g. --whole-body).
    shortcuts: ClassVar[dict[str, dict[str, Any]]] = {}
    # Config fields besides the loop's that describe a run rather than the architecture: they may
    # differ between a run and the run it starts from (e.g. the stage of a multi-stage recipe).
    run_fields: ClassVar[frozenset[str]] = frozenset()
    # Named sequences of runs, by the value of one field, e.g. {"stage": {"all": [{"stage":
    # "pretrain"}, {"stage": "finetune-head"}, ...]}}: `--stage all` trains them one after the
    # other, each from the previous one's weights (--init), resumable (slp_cli.training.train).
    run_sequences: ClassVar[dict[str, dict[str, list[dict]]]] = {}
    # Pose models train on normalized poses (`slp normalize`): the loop refuses raw ones.
    needs_normalized_poses: ClassVar[bool] = True
    # A model that reads only text and glosses (a text-to-gloss translator) may also train on a
    # JSON lines file of annotations (`slp train NAME --data FILE.jsonl`), which has no poses.
    reads_poses: ClassVar[bool] = True
    # How the loop steps the scheduler: after every "step", or on the selection value after each "eval".
    scheduler_interval: ClassVar[str] = "step"
    # The dev value that picks the best weights, drives early stopping and a plateau scheduler,
    # and whether lower ("min") or higher ("max") is better.
    selection: ClassVar[tuple[str, str]] = ("loss", "min")

    def __init__(self, config, data: dict | None = None):
        super().__init__()
        self.config = config
        self.data = dict(data or {})

    # --- configuration -------------------------------------------------------------------
    @classmethod
    def make_config(cls, preset: str = "default", overrides: dict | None = None):
        """The config of a registered preset with overrides applied (None values ignored)."""
        if preset not in cls.presets:
            raise SlpError(f"model {cls.name} has no preset {preset!r}; presets: {', '.join(cls.presets)}")
        values = {**cls.presets[preset], **{k: v for k, v in (overrides or {}).items() if v is not None}}
        return build_dataclass(cls.Config, values, f"model {cls.name}")

    @classmethod
    def from_data(cls, config, samples: list, **inputs) -> "SlpModel":
        """Build the model for training from its training samples and declared ``inputs``."""
        cls.check_inputs(inputs)
        return cls(config)

    @classmethod
    def check_inputs(cls, inputs: dict) -> None:
        unknown = sorted(set(inputs) - set(cls.inputs))
        if unknown:
            takes = f"it takes {', '.join('--' + i.replace('_', '-') for i in cls.inputs)}" if cls.inputs \
                else "it takes none"
            raise SlpError(f"{cls.name}: unknown input(s) {', '.join(unknown)}; {takes}")

    # --- data ----------------------------------------------------------------------------
    def make_dataset(self, samples: list):
        raise NotImplementedError

    def collate(self, items: list) -> dict:
        raise NotImplementedError

    # --- steps ---------------------------------------------------------------------------
    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def validation_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.training_step(batch)

    def configure_optimizers(self):
        raise NotImplementedError

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        # The loop calls the (possibly DDP-wrapped) module, so DDP's gradient hooks see the step.
        return self.training_step(batch)

    def on_step_start(self, step: int) -> None:
        """Hook for schedules that depend on the global step (e.g. a KL phase)."""

    def finish_evaluation(self, values: dict[str, float]) -> dict[str, float]:
        """Hook: corpus-level dev metrics from the batch-size-weighted means of every
        ``validation_step`` value over the whole dev set (all processes), e.g. BLEU from mean
        n-gram statistics. Returns the values to log and select by."""
        return values

    def on_evaluate(self, values: dict[str, float]) -> None:
        """Hook: called after every evaluation with its values, on every process (e.g. a schedule
        that advances per evaluation)."""

    def on_init(self, samples: list, init) -> None:
        """Hook: check the training samples of a run that starts from the finished run ``init``
        (`slp train NAME --init RUN`), whose architecture, data state and weights this model has."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- checkpoints ---------------------------------------------------------------------
    def blob(self) -> dict:
        """What a checkpoint holds of the model: name, hyperparameters, data state, weights."""
        from .. import __version__

        return {"schema": CHECKPOINT_SCHEMA, "model": self.name, "kind": self.kind, "config": config_dict(self.config),
                "data": self.data, "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
                "slp_version": __version__}
