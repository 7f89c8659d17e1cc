"""Dry runs of the real-corpus recipes: every stage planned, the papers' order, nothing written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(corpus, tmp_path, **env):
    (tmp_path / "data").mkdir(exist_ok=True)
    run = subprocess.run(["bash", f"recipes/{corpus}/run.sh"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "DRY_RUN": "1", "DATA": str(tmp_path / "data"), "RUN": str(tmp_path / "run"),
                              "SLP": str(Path(sys.executable).parent / "slp"), **env})
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("corpus, reader", [("phoenix", "prepare phoenix"), ("csl", "prepare csl"),
                                            ("how2sign", "prepare how2sign")])
def test_recipe_dry_run_plans_every_stage(tmp_path, corpus, reader):
    out = dry_run(corpus, tmp_path)
    stages = [int(n) for n in re.findall(r"^stage (\d+):", out, flags=re.M)]
    expected = [n for n in range(1, 17) if corpus != "how2sign" or n not in (3, 12, 14)]
    assert stages == expected
    assert reader in out and "train vae" in out and "train generator" in out and "--arch a2v" in out
    assert "--stage pretrain" in out and "--backtranslate" in out and "slp report" in out.replace(".venv/bin/", "")
    assert not (tmp_path / "run").exists()  # a dry run writes nothing
    if corpus != "how2sign":  # the table's rows have spaces: printed so that they can be pasted
        assert "dictionary\\ concatenation=" in out
    if corpus == "csl":
        assert "train vae" in out and "--preset csl" in out  # A2V-SLP's larger VAE on CSL-Daily


def test_stage_and_from_select_a_part(tmp_path):
    only = dry_run("phoenix", tmp_path, STAGE="7")
    assert re.findall(r"^stage (\d+):", only, flags=re.M) == ["7"]
    later = dry_run("phoenix", tmp_path, FROM="13")
    assert re.findall(r"^stage (\d+):", later, flags=re.M) == ["13", "14", "15", "16"]


def test_devices_launch_torchrun(tmp_path):
    out = dry_run("phoenix", tmp_path, DEVICES="4")
    assert "torch.distributed.run --nproc_per_node 4 -m slp_cli train vae" in out


def test_missing_data_is_one_clear_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATA"}
    run = subprocess.run(["bash", "recipes/phoenix/run.sh"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert run.returncode != 0 and "DATA=/path/to/PHOENIX-2014-T" in run.stderr


def test_data_that_is_not_there_stops_before_any_work(tmp_path):
    env = {**os.environ, "DATA": str(tmp_path / "nowhere"), "RUN": str(tmp_path / "run"),
           "SLP": str(Path(sys.executable).parent / "slp")}
    for dry in ("1", ""):
        run = subprocess.run(["bash", "recipes/phoenix/run.sh"], cwd=ROOT, capture_output=True, text=True,
                             env={**env, "DRY_RUN": dry})
        assert run.returncode != 0 and "nowhere: not found" in run.stderr
        assert not (tmp_path / "run").exists()
