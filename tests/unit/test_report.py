import csv
import json

import pytest

from slp_cli import SlpError
from slp_cli.report import GROUND_TRUTH, run


def scores(mje, bleu4=None, gt_bleu4=None):
    blob = {"pose": {"dtw_mje": {p: {"value": mje} for p in ("all", "right_hand", "left_hand")},
                     "dtw_pa_jpe": {p: {"value": mje / 2} for p in ("body", "right_hand", "left_hand")}}}
    if bleu4 is not None:
        blob["text"] = {"bleu1": 50.0, "bleu2": 30.0, "bleu3": 20.0, "bleu4": bleu4, "chrf": 40.0, "rouge_l": 45.0}
    if gt_bleu4 is not None:
        # as `slp score --backtranslate` writes it (tests/unit/test_translate.py checks the writer)
        blob["backtranslation"] = {"model": "slt", "ground_truth": {"n": 3, "bleu1": 60.0, "bleu2": 40.0, "bleu3": 30.0,
                                                                    "bleu4": gt_bleu4, "chrf": 50.0, "rouge_l": 55.0}}
    return blob


def test_jerk_column_with_the_reference_jerk_on_the_ground_truth_row(tmp_path):
    blob = {**scores(0.2, bleu4=5.0, gt_bleu4=20.0),
            "smoothness": {"peak_velocity": 3.0, "peak_jerk": 900.0, "ref_peak_velocity": 2.0, "ref_peak_jerk": 400.0}}
    (tmp_path / "a.json").write_text(json.dumps(blob))
    columns, rows, _ = run([f"A={tmp_path / 'a.json'}"])
    assert columns[-1] == "wrist jerk"
    assert rows["A"]["wrist jerk"] == 900.0 and rows[GROUND_TRUTH]["wrist jerk"] == 400.0


def test_gloss_wer_column_from_the_back_translators_gloss_head(tmp_path):
    blob = scores(0.2, bleu4=5.0, gt_bleu4=20.0)
    blob["backtranslation"]["gloss_wer"] = {"hyp": {"wer": 55.0, "n": 3}, "ground_truth": {"wer": 12.0, "n": 3}}
    (tmp_path / "a.json").write_text(json.dumps(blob))
    columns, rows, _ = run([f"A={tmp_path / 'a.json'}"])
    assert "gloss WER" in columns
    assert rows["A"]["gloss WER"] == 55.0 and rows[GROUND_TRUTH]["gloss WER"] == 12.0


def test_rows_columns_and_files(tmp_path):
    (tmp_path / "concat").mkdir()
    (tmp_path / "concat" / "scores.json").write_text(json.dumps(scores(0.2, bleu4=5.0, gt_bleu4=20.0)))
    (tmp_path / "a2v.json").write_text(json.dumps(scores(0.1, bleu4=8.0)))
    columns, rows, _ = run([str(tmp_path / "concat"), f"A2V-SLP={tmp_path / 'a2v.json'}"], tmp_path / "out" / "table.md")
    assert list(rows) == [GROUND_TRUTH, "concat", "A2V-SLP"]  # ground truth first
    assert rows["A2V-SLP"]["DTW-MJE hands"] == pytest.approx(0.1) and rows["concat"]["BLEU-4"] == 5.0
    assert rows[GROUND_TRUTH]["BLEU-4"] == 20.0 and rows[GROUND_TRUTH]["DTW-MJE"] == 0.0
    assert "BLEU-4" in columns and "| A2V-SLP | 0.1000 |" in (tmp_path / "out" / "table.md").read_text()
    with open(tmp_path / "out" / "table.csv") as f:
        assert [r["method"] for r in csv.DictReader(f)] == [GROUND_TRUTH, "concat", "A2V-SLP"]
    assert (tmp_path / "out" / "table.png").stat().st_size > 1000


def test_pose_only_runs_have_no_text_columns(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps(scores(0.3)))
    columns, _, _ = run([str(tmp_path / "x.json")])
    assert columns == ["DTW-MJE", "DTW-MJE hands", "DTW-PA-JPE body", "DTW-PA-JPE hands"]


def test_bad_inputs(tmp_path):
    with pytest.raises(SlpError, match="no score JSON"):
        run([str(tmp_path / "missing.json")])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SlpError, match="not a JSON"):
        run([str(tmp_path / "bad.json")])
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(SlpError, match="not a score file"):
        run([str(tmp_path / "other.json")])
    (tmp_path / "x.json").write_text(json.dumps(scores(0.3)))
    with pytest.raises(SlpError, match="both named"):
        run([f"a={tmp_path / 'x.json'}", f"a={tmp_path / 'x.json'}"])


def test_a_glosser_table_under_the_methods(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(scores(0.2, bleu4=5.0)))
    (tmp_path / "t2g.json").write_text(json.dumps({"wer": 48.5, "bleu1": 40.0, "bleu4": 19.5, "rouge_l": 45.0}))
    _, _, text = run([f"A={tmp_path / 'a.json'}"], tmp_path / "table.md", glossers=[f"glosser={tmp_path / 't2g.json'}"])
    assert "| text to gloss | gloss WER | BLEU-1 | BLEU-4 | ROUGE-L |" in text
    assert "| glosser | 48.50 | 40.00 | 19.50 | 45.00 |" in text and text == (tmp_path / "table.md").read_text()
    (tmp_path / "bad.json").write_text(json.dumps(scores(0.2)))
    with pytest.raises(SlpError, match="score-glosses"):
        run([f"A={tmp_path / 'a.json'}"], glossers=[str(tmp_path / "bad.json")])
