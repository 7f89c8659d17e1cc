"""The model contract: declared kinds the stages dispatch on, options made from configs, resume
rules, the one device helper, and dependencies that point downward."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import slp_cli
from tests.conftest import normalized_corpus
from slp_cli.cli.main import app
from slp_cli.cli.options import parse_value
from slp_cli.device import resolve_device
from slp_cli.errors import SlpError
from slp_cli.models import KINDS, PoseTokenizer, PoseToText, TextToPose, load_model, registered
from slp_cli.training import TrainOptions, train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return normalized_corpus(tmp_path_factory.mktemp("models") / "corpus.h5", seed=4)


@pytest.fixture(scope="module")
def vae(corpus):
    out = corpus.parent / "vae"
    train("vae", TrainOptions(output=out, data=[corpus]), preset="tiny", overrides={"max_steps": 20, "log_every": 5})
    return out


def test_every_registered_model_declares_one_kind():
    kinds = {name: cls.kind for name, cls in registered().items()}
    assert kinds["vae"] == kinds["vqvae"] == "pose tokenizer"
    assert kinds["a2v"] == "text-to-pose generator" and kinds["slt"] == "pose-to-text translator"
    for name, cls in registered().items():
        assert sum(issubclass(cls, k) for k in KINDS.values()) == 1, name
        assert {"default", "tiny"} <= set(cls.presets)


def test_stages_dispatch_on_the_kind(vae, corpus, tmp_path):
    from slp_cli.generate import make_generator
    from slp_cli.tokenize import tokenize
    from slp_cli.translate import load_translator

    with pytest.raises(SlpError, match=r"holds a 'vae' model \(pose tokenizer\), but a text-to-pose generator"):
        make_generator("model", model=vae)
    with pytest.raises(SlpError, match=r"but a pose-to-text translator is needed"):
        load_translator(vae)
    tokens = tokenize(vae, corpus, tmp_path / "t.h5")
    model = load_model(vae, expect=PoseTokenizer)
    assert tokens["arrays"] == model.array_names == ["mu", "logvar"]
    # the contract: encode gives the named arrays, decode reads them back to poses
    pose = torch.from_numpy(slp_cli.load(corpus)[0].pose)
    arrays = model.encode(pose)
    assert set(arrays) == set(model.array_names) and model.decode(arrays, num_frames=5).shape == (5, 178, 3)
    res = CliRunner().invoke(app, ["generate", "--model", str(vae), "regen", "--lang", "dgs", "-o", str(tmp_path / "g")])
    assert isinstance(res.exception, SlpError) and "does not generate poses from text" in str(res.exception)


def test_options_come_from_the_config(corpus, vae, tmp_path):
    cli = CliRunner()
    base = ["train", "vqvae", "--data", str(corpus), "--preset", "tiny", "--dry-run", "-o", str(tmp_path / "q")]
    res = cli.invoke(app, [*base, "--codes", "8,16,16", "--commit", "0.5"])
    assert res.exit_code == 0, res.output
    assert '"commit": 0.5' in res.stdout and '"left_hand": 16' in res.stdout and '"body": 8' in res.stdout
    res = cli.invoke(app, [*base, "--whole-body"])
    assert '"parts": "whole_body"' in res.stdout
    res = cli.invoke(app, [*base, "--whole-body", "--body-hands"])
    assert isinstance(res.exception, SlpError) and "both set parts" in str(res.exception)
    res = cli.invoke(app, [*base, "--quantizer", "kmeans"])
    assert isinstance(res.exception, SlpError) and "quantizer must be 'ema' or 'loss'" in str(res.exception)
    res = cli.invoke(app, [*base, "--nonsense", "1"])
    assert res.exit_code != 0 and "No such option" in res.output
    gen = ["train", "generator", "--arch", "a2v", "--data", str(corpus), "--tokenizer", str(vae), "--preset", "tiny",
           "--dry-run", "-o", str(tmp_path / "g")]
    res = cli.invoke(app, [*gen, "--no-dynamic-hands", "--weights", "body=2,face=1,right_hand=3,left_hand=4"])
    assert res.exit_code == 0, res.output
    config = json.loads(res.stdout)
    assert config["dynamic_hands"] is False and config["weights"]["left_hand"] == 4
    assert "text_tokenizer" not in config and "rest_latent" not in config  # learned data is not a hyperparameter
    assert cli.invoke(app, [*gen, "--fixed-hand-weights"]).exit_code == 0  # the model's shortcut
    listing = cli.invoke(app, ["models"], terminal_width=200)
    assert listing.exit_code == 0 and all(n in listing.stdout for n in ("vae", "vqvae", "a2v", "slt"))


def test_parse_value_by_field_type():
    assert parse_value(list, "q_proj,v_proj", "x") == ["q_proj", "v_proj"]
    assert parse_value(dict, "body=1,face=2.5", "x") == {"body": 1, "face": 2.5}
    assert parse_value(dict, "96,192,192", "x") == [96, 192, 192]  # a dict field may take its values in order
    assert parse_value(tuple, "0.5,0.9", "x") == (0.5, 0.9)
    assert parse_value(int, 3, "x") == 3


def test_resume_changes_only_loop_settings_and_records_them(corpus, tmp_path):
    out = tmp_path / "run"
    train("vae", TrainOptions(output=out, data=[corpus]), preset="tiny", overrides={"max_steps": 10, "beta": 1e-5})
    with pytest.raises(SlpError, match=r"--beta 0.001: the run in .* was trained with beta=1e-05"):
        train("vae", TrainOptions(output=out, data=[corpus], resume=True), overrides={"beta": 1e-3})
    with pytest.raises(SlpError, match="started with preset 'tiny'"):
        train("vae", TrainOptions(output=out, data=[corpus], resume=True), preset="default")
    summary = train("vae", TrainOptions(output=out, data=[corpus], resume=True),
                    overrides={"max_steps": 20, "beta": 1e-5, "lr": 1e-3})
    assert summary["steps"] == 20
    run = json.loads((out / "config.json").read_text())
    assert run["preset"] == "tiny" and run["config"]["max_steps"] == 20 and run["config"]["lr"] == 1e-3
    assert run["resumed"] == [{"step": 10, "changed": {"max_steps": 20, "lr": 1e-3}}]


def test_init_starts_from_a_finished_run(corpus, vae, tmp_path):
    train("vae", TrainOptions(output=tmp_path / "next", data=[corpus], init=vae), preset="tiny",
          overrides={"max_steps": 5, "lr": 1e-4})
    first, second = load_model(vae), load_model(tmp_path / "next")
    assert second.config.lr == 1e-4 and second.data["init_from"] == str(vae)
    with pytest.raises(SlpError, match=r"--capacity large: --init .* was trained with capacity='base'"):
        train("vae", TrainOptions(output=tmp_path / "other", data=[corpus], init=vae), preset="tiny",
              overrides={"capacity": "large"})
    with pytest.raises(SlpError, match="give one of them"):
        train("vae", TrainOptions(output=tmp_path / "next", data=[corpus], init=vae, resume=True), preset="tiny")
    assert first.config.capacity == second.config.capacity


@pytest.mark.parametrize("name, expected", [("auto", None), ("cpu", "cpu"), (" CPU ", "cpu")])
def test_device_names(name, expected):
    want = expected or ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(name).type == want


@pytest.mark.parametrize("name, message", [("gpu", "unknown device 'gpu'; use auto, cpu, cuda or cuda:N"),
                                           ("cuda:x", "unknown device 'cuda:x'")])
def test_bad_device_names(name, message):
    with pytest.raises(SlpError, match=message):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_one_line_everywhere(name, corpus, vae, tmp_path):
    message = f"--device {name} asked for, but PyTorch sees no CUDA GPU here; use --device cpu"
    with pytest.raises(SlpError, match=message):
        resolve_device(name)
    for args in (["train", "vae", "--data", str(corpus), "-o", str(tmp_path / "v"), "--device", name],
                 ["tokenize", str(corpus), "--model", str(vae), "-o", str(tmp_path / "t.h5"), "--device", name]):
        res = CliRunner().invoke(app, args)
        assert isinstance(res.exception, SlpError) and message in str(res.exception), args


def _imports(path: Path) -> set[str]:
    """Absolute names of the slp_cli modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.add(".".join(base + ([node.module] if node.module else [])))
            else:
                out.add(node.module or "")
    return {m for m in out if m.startswith("slp_cli")}


def test_dependencies_point_downward():
    files = [p for p in (ROOT / "slp_cli").rglob("*.py")]
    for path in files:
        rel = path.relative_to(ROOT / "slp_cli")
        imports = _imports(path)
        if rel.parts[0] not in ("cli", "__main__.py"):
            assert not any(m.startswith("slp_cli.cli") for m in imports), f"{rel} imports the CLI layer"
        if rel.parts[0] == "models":
            assert "slp_cli.training" not in imports, f"{rel} imports the training loop"
        if rel.parts[0] == "text":
            assert not any(m.startswith("slp_cli.data") for m in imports), f"{rel} imports the data layer"


def test_the_training_loop_is_made_of_small_pieces():
    tree = ast.parse((ROOT / "slp_cli" / "training.py").read_text())
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 60]
    assert not long, long


def test_checkpoints_keep_learned_data_apart(vae):
    blob = torch.load(vae / "model.pt", weights_only=False)
    assert set(blob) >= {"config", "data", "state_dict"} and blob["data"]["fps"] == 25.0
    run = json.loads((vae / "config.json").read_text())
    assert run["kind"] == "pose tokenizer" and "fps" not in run["config"]
    assert np.isfinite(load_model(vae).reconstruct(np.zeros((3, 178, 3), np.float32))).all()


def test_same_seed_same_machine_same_weights(corpus, vae, tmp_path):
    """What the README promises for the demo: on one machine with one thread count, a run repeated
    with its seed gives the same weights bit for bit (other CPUs may differ in the last digits)."""
    again = tmp_path / "again"
    train("vae", TrainOptions(output=again, data=[corpus]), preset="tiny", overrides={"max_steps": 20, "log_every": 5})
    first, second = (torch.load(d / "model.pt", map_location="cpu", weights_only=False)["state_dict"]
                     for d in (vae, again))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_training_on_raw_poses_says_to_normalize(tmp_path):
    from slp_cli.data.synth import synthesize

    raw = slp_cli.save(synthesize(langs=["dgs"], preset="tiny", seed=1), tmp_path / "raw.h5", fps=25)
    with pytest.raises(SlpError, match=r"raw.h5: not normalized.*slp normalize"):
        train("vae", TrainOptions(output=tmp_path / "vae", data=[raw]), preset="tiny", overrides={"max_steps": 2})
    assert not (tmp_path / "vae").exists()
