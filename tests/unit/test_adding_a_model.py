"""docs/adding-a-model.md, proven: a generator defined only in this file is registered, trained with
`slp train generator --arch toy`, used by `slp generate --model` and scored by `slp score`, with its
own options on every command line and no other file touched."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import slp_cli
from tests.conftest import normalized_corpus
from slp_cli.cli.main import app
from slp_cli.data.loader import SequenceDataset
from slp_cli.errors import SlpError
from slp_cli.models import REGISTRY, Signed, TextToPose, TrainingConfig, option, register
from slp_cli.tensors import pad


@dataclass
class ToyConfig(TrainingConfig):
    hidden: int = option(16, "Width of the word embeddings.")


@dataclass
class ToyOptions:
    scale: float = option(1.0, "Multiply the predicted length by this.")


class Toy(TextToPose):
    """A toy generator: one pose per sentence from its bag of words, held for the mean length."""

    Config = ToyConfig
    GenerateOptions = ToyOptions
    presets = {"default": {}, "tiny": dict(batch_size=4, max_steps=40, eval_every=20, lr=1e-2, patience=0)}

    def __init__(self, config: ToyConfig, data: dict | None = None):
        super().__init__(config, data)
        self.words = {w: i + 1 for i, w in enumerate(self.data["words"])}
        self.embed = nn.EmbeddingBag(len(self.words) + 1, config.hidden, padding_idx=0)
        self.head = nn.Linear(config.hidden, 178 * 3)

    @classmethod
    def from_data(cls, config, samples, **inputs):
        words = sorted({w for s in samples for w in s.text.split()})
        length = int(np.mean([s.num_frames for s in samples]))
        return cls(config, {"words": words, "langs": sorted({s.lang for s in samples}), "length": length})

    @property
    def max_frames(self) -> int:
        return 4 * self.data["length"]

    def ids(self, text: str) -> np.ndarray:
        return np.array([self.words.get(w, 0) for w in text.split()] or [0])

    def make_dataset(self, samples):
        items = [(self.ids(s.text), np.nan_to_num(s.pose.mean(0))) for s in samples]
        return SequenceDataset(items, np.array([s.num_frames for s in samples]))

    def collate(self, items):
        ids, _ = pad([i for i, _ in items], dtype=torch.long)
        return {"ids": ids, "pose": torch.as_tensor(np.stack([p for _, p in items])), "batch_size": len(items)}

    def training_step(self, batch):
        pred = self.head(self.embed(batch["ids"])).view(-1, 178, 3)
        return {"loss": (pred - batch["pose"]).abs().mean()}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.config.lr), None

    def prepare(self, text: str, lang: str):
        if lang not in self.langs:
            raise SlpError(f"language {lang!r} was not in this model's training data")
        return self.ids(text)

    @torch.no_grad()
    def sign_batch(self, prepared, options: ToyOptions, generator):
        ids, _ = pad(prepared, dtype=torch.long)
        poses = self.head(self.embed(ids)).view(-1, 178, 3).numpy()
        frames = max(1, round(self.data["length"] * options.scale))
        return [Signed(pose=np.repeat(p[None], frames, 0), report={"frames": frames}) for p in poses]


@pytest.fixture
def toy():
    register("toy")(Toy)
    yield
    REGISTRY.pop("toy", None)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return normalized_corpus(tmp_path_factory.mktemp("toy") / "corpus.h5", seed=2)


def test_a_generator_defined_here_trains_generates_and_scores(toy, corpus, tmp_path):
    cli = CliRunner()
    run = tmp_path / "toy"
    train = ["train", "generator", "--arch", "toy", "--data", str(corpus), "--preset", "tiny"]
    shown = cli.invoke(app, [*train, "--help"], terminal_width=200)
    assert shown.exit_code == 0 and "--hidden" in shown.output and "Width of the word embeddings" in shown.output
    res = cli.invoke(app, [*train, "-o", str(run), "--hidden", "8"])
    assert res.exit_code == 0, res.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "toy" and config["kind"] == "text-to-pose generator" and config["config"]["hidden"] == 8
    assert "words" not in json.dumps(config)  # learned data lives in the checkpoint, not in config.json

    listing = cli.invoke(app, ["models", "toy"], terminal_width=200)
    assert listing.exit_code == 0 and "--scale" in listing.stdout and "--hidden" in listing.stdout

    out = tmp_path / "gen.h5"
    help_gen = cli.invoke(app, ["generate", "--model", str(run), "--help"], terminal_width=200)
    assert "--scale" in help_gen.output and "Multiply the predicted length" in help_gen.output
    res = cli.invoke(app, ["generate", "--model", str(run), "--texts-from", str(corpus), "--split", "test",
                           "-o", str(out), "--scale", "0.5"])
    assert res.exit_code == 0, res.output
    gen, ref = slp_cli.load(out), slp_cli.load(corpus, split="test")
    assert gen.ids == ref.ids and gen.fps == 25 and gen.normalized
    frames = max(1, round(int(np.mean([s.num_frames for s in slp_cli.load(corpus, split="train")])) * 0.5))
    assert {s.num_frames for s in gen} == {frames} and gen[0].report == {"frames": frames}
    assert gen.provenance["args"]["architecture"] == "toy" and gen.provenance["args"]["scale"] == 0.5

    res = cli.invoke(app, ["score", "--hyp", str(out), "--ref", str(corpus), "--split", "test",
                           "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["samples"]["matched"] == len(ref) and np.isfinite(scores["pose"]["dtw_mje"]["all"]["value"])

    # an option of the model cannot change when the run is resumed; a loop setting can
    res = cli.invoke(app, [*train, "-o", str(run), "--resume", "--hidden", "16"])
    assert isinstance(res.exception, SlpError) and "--hidden 16" in str(res.exception)
    assert "trained with hidden=8" in str(res.exception)


def test_the_toy_is_a_generator_not_a_train_command(toy):
    res = CliRunner().invoke(app, ["train", "toy", "--help"])
    assert isinstance(res.exception, SlpError) and "slp train generator --arch toy" in str(res.exception)
