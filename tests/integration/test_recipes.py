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
    # How2Sign has no glosses: no dictionary, glosser or GLOS stages
    no_glosses = (3, 4, 8, 16, 18, 19, 24, 25, 28, 29, 30, 31)
    expected = [n for n in range(1, 34) if corpus != "how2sign" or n not in no_glosses]
    assert stages == expected
    assert reader in out and "train vae" in out and "train generator" in out
    assert all(f"--arch {arch}" in out for arch in ("a2v", "soke", "diffusion"))
    assert ("--arch glos" in out) == ("train text2gloss" in out) == (corpus != "how2sign")
    assert ("--no-retrieval" in out) == (corpus == "how2sign")  # SOKE retrieves from the dictionary
    assert "--preset finetune-all" in out  # the back-translator's 200-epoch second stage
    assert "--stage pretrain" in out and "--backtranslate" in out and "slp report" in out.replace(".venv/bin/", "")
    assert not (tmp_path / "run").exists()  # a dry run writes nothing
    if corpus != "how2sign":  # the table's rows have spaces: printed so that they can be pasted
        assert "dictionary\\ concatenation=" in out
    if corpus == "csl":
        assert "train vae" in out and "--preset csl" in out  # A2V-SLP's larger VAE on CSL-Daily


def test_stage_and_from_select_a_part(tmp_path):
    only = dry_run("phoenix", tmp_path, STAGE="7")
    assert re.findall(r"^stage (\d+):", only, flags=re.M) == ["7"]
    later = dry_run("phoenix", tmp_path, FROM="30")
    assert re.findall(r"^stage (\d+):", later, flags=re.M) == ["30", "31", "32", "33"]
    some = dry_run("phoenix", tmp_path, METHODS="soke")  # one generator: only what it needs
    planned = [int(n) for n in re.findall(r"^stage (\d+):", some, flags=re.M)]
    assert 7 in planned and 15 in planned and not {5, 8, 9, 14, 16, 17, 20, 24, 26} & set(planned)


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


def test_alongside_runs_stages_at_once_with_a_share_of_the_cores_and_stops_on_a_failure(tmp_path):
    # the first job can only succeed if the second runs while it waits (JOBS=2): no timing involved
    script = """source recipes/common.sh
JOBS=2
alongside bash -c 'for i in $(seq 300); do [ -e "$0/b" ] && echo "threads $OMP_NUM_THREADS" > "$0/a" && exit 0; sleep 0.1; done; exit 1' "$1"
alongside touch "$1/b"
together
echo "after the first group"
alongside false
alongside true
together
echo "not reached"
"""
    run = subprocess.run(["bash", "-c", script, "bash", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert (tmp_path / "a").read_text().split() == ["threads", str(max(os.cpu_count() // 2, 1))]
    assert "after the first group" in run.stdout and "not reached" not in run.stdout
    assert run.returncode == 1 and "1 of the stages run alongside others failed" in run.stderr
