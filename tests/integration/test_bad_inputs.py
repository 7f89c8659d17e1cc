"""Every stage against bad inputs (missing, empty, not HDF5, truncated, all-NaN, inf, wrong layout,
not normalized) and against an output that is one of its inputs: one `error:` line, a non-zero
exit, no traceback, and every file that existed before is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import slp_cli
from slp_cli.cli.main import run
from slp_cli.data.synth import synthesize
from slp_cli.normalize import normalize_samples


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    samples = synthesize(langs=["dgs"], preset="tiny", seed=5)
    raw = slp_cli.save(samples, d / "raw.h5", fps=25)
    good = slp_cli.save(normalize_samples(samples), d / "good.h5", fps=25, normalized=True,
                        normalization="neck-shoulder/frame")
    nan = [slp_cli.Sample(id=s.id, pose=np.full_like(s.pose, np.nan), text=s.text, glosses=s.glosses, lang=s.lang,
                          split=s.split, gloss_spans=s.gloss_spans) for s in slp_cli.load(good)]
    slp_cli.save(nan, d / "nan.h5", fps=25, normalized=True, normalization="neck-shoulder/frame")
    shutil.copy(good, d / "inf.h5")
    with h5py.File(d / "inf.h5", "a") as f:  # slp never writes inf: another tool did
        f["frames/pose"][5, 3] = [np.inf, 0, 0]
    shutil.copy(good, d / "layout.h5")
    with h5py.File(d / "layout.h5", "a") as f:
        f.attrs["layout"] = "openpose"
    (d / "empty.h5").write_bytes(b"")
    (d / "text.h5").write_text("not an artifact\n")
    (d / "truncated.h5").write_bytes(good.read_bytes()[:20000])
    assert run(["dict", "build", str(good), "-o", str(d / "dict.h5")]) == 0
    assert run(["train", "vae", "--data", str(good), "-o", str(d / "vae"), "--preset", "tiny", "--max-steps", "3"]) == 0
    assert run(["train", "slt", "--data", str(good), "-o", str(d / "slt"), "--preset", "tiny", "--stage", "all",
                "--max-steps", "2", "--eval-every", "2"]) == 0
    assert raw.exists()
    return d


BAD = ["missing", "empty", "text", "truncated", "nan", "inf", "layout", "raw"]
# what each stage makes of each input ("ok": the stage has nothing to refuse, e.g. `slp info`
# reads no poses, a text source for generate has texts)
OK = {("info", "nan"), ("info", "inf"), ("info", "raw"), ("generate", "nan"),
      ("generate", "raw"), ("merge", "nan"), ("normalize", "raw"),
      ("tokenize", "raw"), ("export-pose", "raw"), ("export-pose", "nan"), ("render", "raw"),
      ("dict", "raw"), ("score", "nan")}


def commands(d: Path, src: Path, outdir: Path) -> dict[str, list[str]]:
    good = str(d / "good.h5")
    out = outdir / "out.h5"
    return {
        "info": ["info", str(src)],
        "normalize": ["normalize", str(src), "-o", str(out)],
        "dict": ["dict", "build", str(src), "-o", str(out)],
        "generate": ["generate", "--dictionary", str(d / "dict.h5"), "--texts-from", str(src), "-o", str(out)],
        "score": ["score", "--hyp", str(src), "--ref", good],
        "render": ["render", str(src), "-o", str(out.with_suffix(".gif")), "--size", "128"],
        "train": ["train", "vae", "--data", str(src), "-o", str(out.with_suffix("")), "--preset", "tiny",
                  "--max-steps", "2"],
        "translate": ["translate", str(src), "--model", str(d / "slt"), "-o", str(out)],
        "tokenize": ["tokenize", str(src), "--model", str(d / "vae"), "-o", str(out)],
        "export-pose": ["export-pose", str(src), "-o", str(out.with_suffix(".pose")), "--id", "dgs-train-00000"],
        "merge": ["merge", str(src), good, "-o", str(out), "--skip-duplicates"],
    }


def snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def one_error_line(code: int, err: str, what) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, (what, code, err[-1500:])


@pytest.mark.parametrize("kind", BAD)
def test_every_stage_refuses_a_bad_input_in_one_line(files, kind, capsys):
    src = files / ("nope.h5" if kind == "missing" else f"{kind}.h5")
    before = snapshot(files)
    for stage, argv in commands(files, src, files / "out").items():
        code = run(argv)
        err = capsys.readouterr().err
        if (stage, kind) in OK:
            assert code == 0, (stage, kind, err[-1500:])
            continue
        one_error_line(code, err, (stage, kind))
    shutil.rmtree(files / "out", ignore_errors=True)
    after = snapshot(files)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))  # nothing that existed was touched


def test_an_output_that_is_an_input_is_refused_before_any_work(files, tmp_path, capsys):
    for name in ("good", "dict"):
        shutil.copy(files / f"{name}.h5", tmp_path / f"{name}.h5")
    g, dic = tmp_path / "good.h5", tmp_path / "dict.h5"
    (tmp_path / "link.h5").symlink_to(g)
    scores = tmp_path / "scores.h5"
    shutil.copy(g, scores)
    cases = [["dict", "build", str(g), "-o", str(g)],
             ["dict", "build", str(g), "-o", str(tmp_path / "link.h5")],  # the same file through a link
             ["generate", "--dictionary", str(dic), "--texts-from", str(g), "-o", str(g)],
             ["generate", "--dictionary", str(dic), "regen", "--lang", "dgs", "-o", str(dic)],
             ["score", "--hyp", str(scores), "--ref", str(g), "--json", str(scores)],
             ["export-pose", str(g), "-o", str(g), "--id", "dgs-train-00000"],
             ["normalize", str(g), "-o", str(g)],
             ["tokenize", str(g), "--model", str(files / "vae"), "-o", str(g)],
             ["translate", str(g), "--model", str(files / "slt"), "-o", str(g)],
             ["merge", str(g), str(dic), "-o", str(dic)],
             ["train", "vae", "--data", str(g), "-o", str(g)],
             ["eval-tokenizer", str(g), "--model", str(files / "vae"), "--json", str(g)]]
    before = snapshot(tmp_path)
    for argv in cases:
        code = run(argv)
        err = capsys.readouterr().err
        one_error_line(code, err, argv)
        assert "is also an input" in err or "is a file" in err, (argv, err)
    assert snapshot(tmp_path) == before


def test_scores_of_poses_in_different_units_are_refused(files, capsys):
    code = run(["score", "--hyp", str(files / "raw.h5"), "--ref", str(files / "good.h5")])
    err = capsys.readouterr().err
    one_error_line(code, err, "raw vs normalized")
    assert "not normalized" in err and "slp normalize" in err


def test_typed_literally_the_advertised_commands_explain_themselves(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = run(["train", "vqvae", "--langs", "asl,csl,dgs"])
    err = capsys.readouterr().err
    one_error_line(code, err, "train vqvae")
    assert "--data corpus.norm.h5" in err and "slp normalize" in err
    code = run(["generate", "am mittwoch regnet es", "--lang", "dgs"])
    err = capsys.readouterr().err
    one_error_line(code, err, "generate")
    assert "--model GEN_DIR" in err and "--dictionary dictionary.h5" in err
    code = run(["generate", "regen heute", "--lang", "dgs", "--dictionary", str(files / "dict.h5")])
    assert code == 0 and (tmp_path / "generated.h5").exists()  # the default output
    (tmp_path / "videos").mkdir()
    code = run(["extract", "videos"])
    err = capsys.readouterr().err
    one_error_line(code, err, "extract videos")
    assert "videos" in err and not (tmp_path / "videos.h5").exists()  # nothing to extract: nothing written
