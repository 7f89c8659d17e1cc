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
    for name in ("corpus.norm.h5", "dictionary.h5", "latents.h5", "vae/model.pt", "vqvae/model.pt", "a2v/model.pt",
                 "slt/model.pt", "a2v.test.h5", "concat.test.h5", "a2v.mp4", "table.md", "table.csv", "table.png"):
        assert (out / name).stat().st_size > 0, name
    assert [f"== stage {n}: done in" in log for n in range(1, 17)] == [True] * 16  # every stage ran

    # The multilingual tokenizer was trained on the three languages.
    assert json.loads((out / "vqvae" / "config.json").read_text())["options"]["langs"] == ["asl", "csl", "dgs"]
    # Both methods generated the whole test split, ids kept.
    test_ids = set(slp_cli.load(out / "corpus.norm.h5", split="test").ids)
    assert set(slp_cli.load(out / "a2v.test.h5").ids) == test_ids == set(slp_cli.load(out / "concat.test.h5").ids)
    # The table: ground truth first, then the methods, with the papers' metrics; printed at the end.
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["method"] for r in rows] == ["ground truth", "A2V-SLP", "dictionary concatenation"]
    assert {"DTW-MJE", "BLEU-4", "chrF", "ROUGE-L"} <= set(rows[0])
    assert "| ground truth | 0.0000 |" in run.stdout and "| A2V-SLP |" in run.stdout

    # Running it again skips every finished stage and re-makes only the table.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "== stage 16: done in" in again.stderr
    assert not any(f"== stage {n}: done in" in again.stderr for n in range(1, 16))
