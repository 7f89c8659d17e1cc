"""Model registry and the contract every trainable model follows.

A model is an ``SlpModel`` subclass registered by name (``@register("vae")``) with a config
dataclass (``Config``) whose ``__post_init__`` validates values (and never does I/O) and named
size presets (``presets``, always including ``tiny`` for tests and smoke runs). The shared
training loop (slp_cli/training.py) only talks to this interface, so resume, DDP, bf16, logging
and checkpoints are written once:

* ``from_data(config, samples)`` builds the model, taking what it needs from the training data
  (vocabularies, statistics) into its config or buffers, so that a checkpoint rebuilds it alone;
* ``make_dataset(samples)`` turns artifact samples into a ``SequenceDataset`` (items + lengths
  for bucketing) and ``collate(items)`` pads a list of items into a batch dict of tensors;
* ``training_step(batch)`` returns a dict of scalar tensors with ``loss``; ``validation_step``
  defaults to the same without gradients;
* ``configure_optimizers()`` returns the optimizer and scheduler the paper states.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import SlpError

REGISTRY: dict[str, type["SlpModel"]] = {}
CHECKPOINT_SCHEMA = "slp.checkpoint/1"


def register(name: str):
    """Class decorator: make a model trainable as ``slp train <name>`` and loadable by name."""

    def deco(cls):
        if "tiny" not in cls.presets:
            raise TypeError(f"model {name} must define a 'tiny' preset")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return deco


def get_model_class(name: str) -> type["SlpModel"]:
    _import_all()
    if name not in REGISTRY:
        raise SlpError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _import_all() -> None:
    """Import every module of this package so that their @register decorators run."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


class SlpModel(nn.Module):
    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # How the loop steps the scheduler: after every "step", or on the dev loss after each "eval"
    # (ReduceLROnPlateau).
    scheduler_interval: ClassVar[str] = "step"

    def __init__(self, config):
        super().__init__()
        self.config = config

    # --- configuration -------------------------------------------------------------------
    @classmethod
    def make_config(cls, preset: str = "default", overrides: dict | None = None):
        """The config of a registered preset with overrides applied (None values ignored)."""
        if preset not in cls.presets:
            raise SlpError(f"model {cls.name} has no preset {preset!r}; presets: {', '.join(cls.presets)}")
        values = {**cls.presets[preset], **{k: v for k, v in (overrides or {}).items() if v is not None}}
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise SlpError(f"model {cls.name} has no option(s) {', '.join(unknown)}; options: {', '.join(sorted(fields))}")
        try:
            return cls.Config(**values)
        except (TypeError, ValueError) as e:
            raise SlpError(f"model {cls.name}: invalid configuration: {e}") from None

    @classmethod
    def from_data(cls, config, samples: list, **inputs) -> "SlpModel":
        """Build the model for training; ``inputs`` are extra paths a model needs (e.g. the
        tokenizer a generator reads), given as TrainOptions.extra."""
        return cls(config)

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

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def config_dict(config) -> dict:
    return dataclasses.asdict(config)


def load_model(path: str | Path, expect: str | tuple[str, ...] | None = None, map_location="cpu") -> SlpModel:
    """Rebuild a trained model from its directory (model.pt) or a checkpoint file, alone.

    ``expect`` names the model kind(s) the caller can use; anything else is refused with a clear
    error (e.g. a VQ-VAE given where a VAE is needed).
    """
    path = Path(path)
    file = path / "model.pt" if path.is_dir() else path
    if path.is_dir() and not file.exists() and (path / "checkpoint.pt").exists():
        file = path / "checkpoint.pt"
    if not file.exists():
        raise SlpError(f"{path}: no trained model here (model.pt); train one with `slp train`")
    try:
        blob = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise SlpError(f"{file}: not a readable slp checkpoint ({type(e).__name__})") from None
    if not isinstance(blob, dict) or blob.get("schema") != CHECKPOINT_SCHEMA:
        raise SlpError(f"{file}: not an slp checkpoint")
    kinds = (expect,) if isinstance(expect, str) else expect
    if kinds and blob["model"] not in kinds:
        raise SlpError(f"{path}: holds a '{blob['model']}' model, but a {' or '.join(kinds)} is needed here")
    cls = get_model_class(blob["model"])
    config = cls.Config(**blob["config"])
    model = cls(config)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model
