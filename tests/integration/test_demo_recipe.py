"""The demo recipe end to end (make demo) on the tiny synthetic preset: every stage of
recipes/pipeline.sh with trained models, ending with the table."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import slp_cli
from slp_cli.models import load_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_demo_recipe_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    slp = Path(sys.executable).parent / "slp"
    cmd = ["make", "-C", str(ROOT), "demo", f"DEMO_DIR={out}", "DEMO_PRESET=tiny", f"SLP={slp}",
           "DEMO_DEPS="]  # the venv running this test is the install
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    methods = ("a2v", "soke", "glos", "diffusion", "concat", "concat-glosser")
    for name in ("corpus.norm.h5", "dictionary.h5", "latents.h5", "t2g/model.pt", "t2g.test.jsonl", "scores/t2g.json",
                 *(f"{m}/model.pt" for m in ("vae", "vqvae", "vqvae4", "signvae", "aligner", "slt", *methods[:4])),
                 *(f"{m}.test.h5" for m in methods), "a2v.mp4", "table.md", "table.csv", "table.png"):
        assert (out / name).stat().st_size > 0, name
    assert [f"== stage {n}: done in" in log for n in range(1, 34)] == [True] * 33  # every stage ran

    # The multilingual tokenizer was trained on the three languages.
    assert json.loads((out / "vqvae" / "config.json").read_text())["options"]["langs"] == ["asl", "csl", "dgs"]
    # GLOS's tokenizer has the face stream.
    assert "tokens_face" in load_model(out / "vqvae4").array_names
    # Every method generated the whole test split, ids kept.
    test_ids = set(slp_cli.load(out / "corpus.norm.h5", split="test").ids)
    assert all(set(slp_cli.load(out / f"{m}.test.h5").ids) == test_ids for m in methods)
    # The table: ground truth first, then the methods, with the papers' metrics; printed at the end.
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["method"] for r in rows] == ["ground truth", "A2V-SLP", "SOKE", "GLOS", "Text2Sign Diffusion",
                                           "dictionary concatenation", "dictionary concatenation, glosser"]
    assert {"DTW-MJE", "BLEU-4", "chrF", "ROUGE-L", "gloss WER", "wrist jerk"} <= set(rows[0])
    assert "| ground truth | 0.0000 |" in run.stdout and "| A2V-SLP |" in run.stdout
    assert "| text to gloss | gloss WER |" in run.stdout

    # Running it again skips every finished stage and re-makes only the table.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "== stage 33: done in" in again.stderr
    assert not any(f"== stage {n}: done in" in again.stderr for n in range(1, 33))
