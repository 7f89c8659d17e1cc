"""The model registry: every module of this package registers its models by name
(``@register("vae")``); a checkpoint names its model, so it rebuilds alone (:func:`load_model`).

The contract of a model is in base.py (what the training loop needs) and kinds.py (what the
stages need); docs/adding-a-model.md puts both on one page.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import SlpError
from .base import CHECKPOINT_SCHEMA, LOOP_FIELDS, SlpModel, TrainingConfig, config_dict, option  # noqa: F401
from .kinds import KINDS, DecodingStep, NoOptions, PoseTokenizer, PoseToText, Signed, TextPoseAligner, TextToGloss, TextToPose  # noqa: F401

REGISTRY: dict[str, type[SlpModel]] = {}


def register(name: str):
    """Class decorator: make a model trainable (`slp train`) and loadable by name."""

    def deco(cls):
        if "tiny" not in cls.presets or "default" not in cls.presets:
            raise TypeError(f"model {name} must define a 'default' and a 'tiny' preset")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return deco


def _import_all() -> None:
    """Import every module of this package so that their @register decorators run."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def get_model_class(name: str) -> type[SlpModel]:
    _import_all()
    if name not in REGISTRY:
        raise SlpError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def registered(kind: type[SlpModel] | None = None) -> dict[str, type[SlpModel]]:
    """Every registered model (of ``kind``), by name."""
    _import_all()
    return {n: c for n, c in sorted(REGISTRY.items()) if kind is None or issubclass(c, kind)}


def _kind_names(expect) -> tuple[tuple, str]:
    """(names or kind classes, how to say it) of what a caller can use."""
    items = (expect,) if isinstance(expect, (str, type)) else tuple(expect)
    said = " or ".join(f"a {i if isinstance(i, str) else i.kind}" for i in items)
    return items, said


def _accepts(cls: type[SlpModel], items: tuple) -> bool:
    return any(cls.name == i if isinstance(i, str) else issubclass(cls, i) for i in items)


def model_file(path: str | Path) -> Path:
    """The checkpoint of a run directory (model.pt, else the latest checkpoint.pt) or the file itself."""
    path = Path(path)
    file = path / "model.pt" if path.is_dir() else path
    if path.is_dir() and not file.exists() and (path / "checkpoint.pt").exists():
        file = path / "checkpoint.pt"
    if not file.exists():
        raise SlpError(f"{path}: no trained model here (model.pt); train one with `slp train`")
    return file


def peek_model_name(path: str | Path) -> str | None:
    """The registered name of the model in a run directory, from its config.json (cheap: no weights
    read), or None when there is none."""
    run = Path(path) / "config.json"
    try:
        return json.loads(run.read_text()).get("model")
    except (OSError, ValueError):
        return None


def read_blob(path: str | Path, map_location="cpu") -> dict:
    file = model_file(path)
    try:
        blob = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise SlpError(f"{file}: not a readable slp checkpoint ({type(e).__name__})") from None
    if not isinstance(blob, dict) or not str(blob.get("schema", "")).startswith("slp.checkpoint/"):
        raise SlpError(f"{file}: not an slp checkpoint")
    if blob["schema"] != CHECKPOINT_SCHEMA:
        def version(schema: str) -> int:
            tail = schema.rsplit("/", 1)[-1]
            return int(tail) if tail.isdigit() else 0

        newer = version(blob["schema"]) > version(CHECKPOINT_SCHEMA)
        raise SlpError(f"{file}: written by a {'newer' if newer else 'older'} slp ({blob['schema']}; this one reads "
                       f"{CHECKPOINT_SCHEMA}): " + ("upgrade slp" if newer else "train the model again with this version"))
    return blob


def load_model(path: str | Path, expect=None, map_location="cpu") -> SlpModel:
    """Rebuild a trained model from its directory (model.pt) or a checkpoint file, alone, in eval mode.

    ``expect`` names what the caller can use -- a kind (e.g. ``TextToPose``), a registered name, or
    a tuple of them; anything else is refused with one line (a VQ-VAE where a VAE is needed).
    """
    blob = read_blob(path, map_location)
    cls = get_model_class(blob["model"])
    if expect is not None:
        items, said = _kind_names(expect)
        if not _accepts(cls, items):
            raise SlpError(f"{path}: holds a '{blob['model']}' model ({cls.kind}), but {said} is needed here")
    model = cls(cls.Config(**blob["config"]), blob.get("data"))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model


def load_discrete_tokenizer(path, user: str) -> PoseTokenizer:
    """The frozen VQ-VAE a token generator (SOKE, GLOS) is built on; one line when it is not given
    or gives continuous latents."""
    if path is None:
        raise SlpError(f"{user} needs its frozen discrete tokenizer: give --tokenizer VQ_DIR (from `slp train vqvae`)")
    tokenizer = load_model(path, expect=PoseTokenizer)
    if not tokenizer.codebooks:
        raise SlpError(f"{path}: holds a '{tokenizer.name}' tokenizer with continuous latents; {user} generates "
                       "discrete motion tokens: give a VQ-VAE (`slp train vqvae`) as --tokenizer")
    return tokenizer
