"""The CLI contract: bad input gives one clear line on stderr and a non-zero exit, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import slp_cli

SLP = [sys.executable, "-m", "slp_cli"]


def slp(*args, cwd=None):
    return subprocess.run(SLP + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_one_line_error(run, *words):
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert "Traceback" not in run.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_help_lists_the_stages():
    run = slp("--help")
    assert run.returncode == 0
    for command in ("synth", "info", "normalize", "dict", "generate", "render", "score", "import-pose", "export-pose"):
        assert command in run.stdout, command


def test_missing_and_foreign_files(tmp_path):
    assert_one_line_error(slp("info", tmp_path / "nope.h5"), "nope.h5", "not found")
    (tmp_path / "text.h5").write_text("not hdf5")
    assert_one_line_error(slp("normalize", tmp_path / "text.h5", "-o", tmp_path / "out.h5"), "text.h5", "HDF5")
    assert not (tmp_path / "out.h5").exists()


def test_info_json(tmp_path, samples):
    path = slp_cli.save(samples, tmp_path / "a.h5", fps=25)
    run = slp("info", path, "--json")
    assert run.returncode == 0
    facts = json.loads(run.stdout)
    assert facts["samples"] == len(samples) and facts["layout"] == "mp178"
    assert {(c["split"], c["samples"]) for c in facts["counts"]} == {("train", 2), ("dev", 2), ("test", 2)}


def test_failed_stage_keeps_previous_output(tmp_path, samples):
    good = slp_cli.save(samples, tmp_path / "a.h5", fps=25)
    out = tmp_path / "norm.h5"
    assert slp("normalize", good, "-o", out).returncode == 0
    before = out.read_bytes()
    bad = [slp_cli.Sample(id="x", pose=samples[0].pose.copy())]
    bad[0].pose[:, 0] = float("nan")  # no right shoulder anywhere: cannot be normalized
    bad_path = slp_cli.save(bad, tmp_path / "bad.h5", fps=25)
    assert_one_line_error(slp("normalize", bad_path, "-o", out), "no sample could be normalized")
    assert out.read_bytes() == before
