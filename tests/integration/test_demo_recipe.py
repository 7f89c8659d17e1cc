"""The demo recipe end to end (make demo) on the tiny synthetic preset."""

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
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("corpus.h5", "corpus.norm.h5", "dictionary.h5", "concat.h5", "concat.mp4", "scores.json"):
        assert (out / name).stat().st_size > 0, name
    assert "DTW-MJE" in run.stderr + run.stdout  # the score table was printed
    generated = slp_cli.load(out / "concat.h5")
    reference = slp_cli.load(out / "corpus.norm.h5", split="test")
    assert set(generated.ids) == set(reference.ids)
    scores = json.loads((out / "scores.json").read_text())
    assert scores  # detailed checks of the numbers live in the unit tests of score

    # Re-running skips every finished stage (make's own rules): nothing is rebuilt.
    again = subprocess.run(cmd + ["-n"], capture_output=True, text=True)
    assert "synth" not in again.stdout and "normalize" not in again.stdout
