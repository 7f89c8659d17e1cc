"""Corpus readers on tiny fake corpora laid out exactly like the real ones (made here)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.data.corpora import prepare, read_csl_daily, read_how2sign, read_phoenix
from tests.conftest import random_pose

PHOENIX_HEADER = "name|video|start|end|speaker|orth|translation"
PHOENIX_ROWS = {
    "train": ["01April_2010_Thursday_heute-6694|01April_2010_Thursday_heute-6694/1/*.png|-1|-1|Signer04|"
              "__ON__ JETZT WETTER MORGEN loc-REGION REGEN-PLUSPLUS __OFF__|und nun die wettervorhersage für morgen .",
              "01April_2010_Thursday_heute-6695|01April_2010_Thursday_heute-6695/1/*.png|-1|-1|Signer01|"
              "SONNE SCHEINEN|die sonne scheint ."],
    "dev": ["27January_2013_Sunday_tagesschau-8836|27January_2013_Sunday_tagesschau-8836/1/*.png|-1|-1|Signer05|"
            "NORD WIND|im norden weht wind ."],
    "test": ["25October_2010_Monday_tagesschau-17|25October_2010_Monday_tagesschau-17/1/*.png|-1|-1|Signer01|"
             "REGEN|es regnet ."],
}


def fake_phoenix(root, frames=3):
    import cv2
    from skimage.data import astronaut

    img = cv2.cvtColor(cv2.resize(astronaut(), (210, 260)), cv2.COLOR_RGB2BGR)
    (root / "annotations" / "manual").mkdir(parents=True)
    for split, rows in PHOENIX_ROWS.items():
        (root / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv").write_text(
            "\n".join([PHOENIX_HEADER, *rows]) + "\n")
        for row in rows:
            folder = root / "features" / "fullFrame-210x260px" / split / row.split("|")[0]
            folder.mkdir(parents=True)
            for i in range(frames):
                cv2.imwrite(str(folder / f"images{i + 1:04d}.png"), img)
    return root


def poses_for(ids, tmp_path):
    samples = [Sample(id=i, pose=random_pose(6, n)) for n, i in enumerate(ids)]
    return slp_cli.save(samples, tmp_path / "release.h5", fps=25)


def test_phoenix_reader(tmp_path):
    records = read_phoenix(fake_phoenix(tmp_path / "P", frames=1))
    assert [r.split for r in records] == ["train", "train", "dev", "test"]
    first = records[0]
    assert first.id == "01April_2010_Thursday_heute-6694" and first.signer == "Signer04" and first.lang == "dgs"
    assert first.glosses[:3] == ["__ON__", "JETZT", "WETTER"] and first.text.startswith("und nun")
    assert first.media.name == first.id and first.media.parent.name == "train" and first.media.is_dir()


def test_phoenix_with_a_pose_release_keeps_ids_and_reports_missing(tmp_path):
    root = fake_phoenix(tmp_path / "P", frames=1)
    ids = [r.split("|")[0] for rows in PHOENIX_ROWS.values() for r in rows][:-1]  # the test sample has no pose
    result = prepare("phoenix", root, tmp_path / "corpus.h5", poses=poses_for(ids, tmp_path))
    art = slp_cli.load(tmp_path / "corpus.h5")
    assert art.ids == ids and result["splits"] == {"train": 2, "dev": 1, "test": 0}
    assert art[ids[1]].text == "die sonne scheint ." and art[ids[1]].signer == "Signer01"
    assert any("25October_2010_Monday_tagesschau-17" in s["reason"] for s in art.skipped)


def test_phoenix_extracts_poses_from_frames(tmp_path):
    pytest.importorskip("mediapipe")
    root = fake_phoenix(tmp_path / "P", frames=2)
    out = tmp_path / "corpus.h5"
    run = subprocess.run([sys.executable, "-m", "slp_cli", "prepare", "phoenix", str(root), "-o", str(out),
                          "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    art = slp_cli.load(out)
    assert len(art) == 4 and art.fps == 25 and all(s.num_frames == 2 for s in art)
    assert np.isfinite(art[0].pose[:, :8]).any() and art[0].glosses[-1] == "__OFF__"
    # re-running finds the extraction done and rewrites nothing of it
    extracted = tmp_path / "corpus.poses.h5"
    before = extracted.stat().st_mtime_ns
    assert prepare("phoenix", root, tmp_path / "again.h5")["samples"] == 4
    assert extracted.stat().st_mtime_ns == before


def test_csl_daily_reader(tmp_path):
    root = tmp_path / "CSL"
    (root / "sentence_label").mkdir(parents=True)
    info = [{"name": "S000000_P0000_T00", "length": 3, "label_gloss": ["他", "谁"], "label_char": ["他", "是", "谁", "？"],
             "label_word": ["他", "是", "谁", "？"], "signer": 3},
            {"name": "S000001_P0000_T00", "length": 3, "label_gloss": ["我", "去"], "label_char": list("我去学校"),
             "label_word": ["我", "去", "学校"], "signer": 0}]
    with open(root / "sentence_label" / "csl2020ct_v2.pkl", "wb") as f:
        pickle.dump({"info": info, "gloss_map": [], "char_map": []}, f)
    (root / "sentence_label" / "split_1.txt").write_text("name|split\nS000000_P0000_T00|train\nS000001_P0000_T00|test\n")
    for e in info:
        (root / "sentence" / "frames_512x512" / e["name"]).mkdir(parents=True)
    records = read_csl_daily(root)
    assert [(r.id, r.split, r.text, r.glosses, r.lang, r.signer) for r in records] == [
        ("S000000_P0000_T00", "train", "他是谁？", ["他", "谁"], "csl", "3"),
        ("S000001_P0000_T00", "test", "我去学校", ["我", "去"], "csl", "0")]
    prepare("csl", root, tmp_path / "csl.h5", poses=poses_for([e["name"] for e in info], tmp_path))
    assert slp_cli.load(tmp_path / "csl.h5")["S000000_P0000_T00"].text == "他是谁？"


def test_how2sign_reader(tmp_path):
    root = tmp_path / "H2S"
    header = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"
    row = "-d5dN54tH2E\t-d5dN54tH2E-1-rgb_front\t-d5dN54tH2E_0\t-d5dN54tH2E_0-1-rgb_front\t12.97\t19.52\tI call it painting the wall."
    root.mkdir()
    (root / "how2sign_realigned_val.csv").write_text(header + "\n" + row + "\n")
    (root / "val_rgb_front_clips" / "raw_videos").mkdir(parents=True)
    records = read_how2sign(root)
    assert len(records) == 1 and records[0].split == "dev" and records[0].lang == "asl"
    assert records[0].media.name == "-d5dN54tH2E_0-1-rgb_front.mp4" and records[0].glosses == []


@pytest.mark.parametrize("reader, message", [(read_phoenix, "fullFrame-210x260px"),
                                             (read_csl_daily, "csl2020ct_v2.pkl"),
                                             (read_how2sign, "how2sign_realigned")])
def test_readers_say_what_is_missing(tmp_path, reader, message):
    with pytest.raises(SlpError, match=message):
        reader(tmp_path)


def test_unknown_corpus(tmp_path):
    with pytest.raises(SlpError, match="unknown corpus"):
        prepare("bobsl", tmp_path, tmp_path / "x.h5")
