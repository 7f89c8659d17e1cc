"""`slp report`: the score JSONs of several runs (written by `slp score --json`) as one table.

Rows are methods, ground truth first as in the papers' tables; columns are the papers' metrics:
DTW-MJE (all joints and hands), DTW-PA-JPE (body and hands), back-translation BLEU-1..4, chrF,
ROUGE-L and gloss WER (recognised by the back-translator), and the wrists' peak jerk (GLOS's smoothness figure) where the runs have them. Written as markdown, CSV and a bar chart PNG.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .atomic import atomic_write, refuse_overwriting, write_text
from .errors import SlpError

GROUND_TRUTH = "ground truth"
# column -> how to read it from a score JSON (mean of several entries where more than one)
COLUMNS: dict[str, list[tuple[str, ...]]] = {
    "DTW-MJE": [("pose", "dtw_mje", "all")],
    "DTW-MJE hands": [("pose", "dtw_mje", "right_hand"), ("pose", "dtw_mje", "left_hand")],
    "DTW-PA-JPE body": [("pose", "dtw_pa_jpe", "body")],
    "DTW-PA-JPE hands": [("pose", "dtw_pa_jpe", "right_hand"), ("pose", "dtw_pa_jpe", "left_hand")],
    "BLEU-1": [("text", "bleu1")], "BLEU-2": [("text", "bleu2")], "BLEU-3": [("text", "bleu3")],
    "BLEU-4": [("text", "bleu4")], "chrF": [("text", "chrf")], "ROUGE-L": [("text", "rouge_l")],
    # gloss WER of the back-translator's recognised glosses (its CTC head), GLOS's main metric
    "gloss WER": [("backtranslation", "gloss_wer", "hyp", "wer")],
    # smoothness as GLOS reports it (slp score: peak jerk of the wrists, shoulder widths / s^3)
    "wrist jerk": [("smoothness", "peak_jerk")],
}


def _get(blob: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(blob, dict) or key not in blob:
            return None
        blob = blob[key]
    if isinstance(blob, dict):
        blob = blob.get("value")
    return float(blob) if isinstance(blob, (int, float)) and blob is not None and math.isfinite(blob) else None


def row_of(scores: dict) -> dict[str, float | None]:
    row = {}
    for column, paths in COLUMNS.items():
        values = [_get(scores, p) for p in paths]
        row[column] = sum(values) / len(values) if values and all(v is not None for v in values) else None
    return row


def _resolve(spec: str) -> tuple[str | None, Path]:
    """'NAME=PATH' or 'PATH'; PATH is a scores JSON or a run folder holding scores.json."""
    name, _, path = spec.rpartition("=") if "=" in spec else (None, "", spec)
    p = Path(path)
    if p.is_dir():
        p = p / "scores.json"
    if not p.exists():
        raise SlpError(f"{spec}: no score JSON there (write one with `slp score --json FILE`)")
    return name or None, p


def _read(spec: str) -> tuple[str | None, Path, dict]:
    """(row name or None, path, the JSON) of a 'NAME=PATH' or 'PATH' spec."""
    name, path = _resolve(spec)
    try:
        return name, path, json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SlpError(f"{path}: not a JSON file ({e.msg} at line {e.lineno})") from None


def _default_name(path: Path, scores: dict) -> str:
    if scores.get("method"):
        return str(scores["method"])
    if path.stem != "scores":
        return path.stem.removeprefix("scores_").removeprefix("scores-")
    return path.parent.name


def gather(specs: list[str]) -> tuple[list[str], dict[str, dict[str, float | None]]]:
    """Rows by method name (ground truth first, when any run carries a back-translation of the
    reference), in the order given."""
    rows: dict[str, dict] = {}
    for spec in specs:
        name, path, scores = _read(spec)
        if "pose" not in scores and "text" not in scores:
            raise SlpError(f"{path}: not a score file of `slp score` (no 'pose' or 'text' scores)")
        # `slp score --backtranslate` also back-translates the reference poses: the upper bound
        gt = (scores.get("backtranslation") or {}).get("ground_truth")
        if gt and GROUND_TRUTH not in rows:
            bt = scores["backtranslation"]
            rows[GROUND_TRUTH] = {**row_of({"text": gt, "smoothness": {
                "peak_jerk": (scores.get("smoothness") or {}).get("ref_peak_jerk")},
                "backtranslation": {"gloss_wer": {"hyp": (bt.get("gloss_wer") or {}).get("ground_truth")}}}),
                **{c: 0.0 for c in COLUMNS if c.startswith("DTW")}}
        name = name or _default_name(path, scores)
        if name in rows:
            raise SlpError(f"{spec}: two runs are both named '{name}'; name them with NAME=PATH")
        rows[name] = row_of(scores)
    columns = [c for c in COLUMNS if any(r[c] is not None for r in rows.values())]
    ordered = dict(sorted(rows.items(), key=lambda kv: kv[0] != GROUND_TRUTH))
    return columns, ordered


def _cell(v: float | None, column: str) -> str:
    if v is None:
        return "-"
    if column == "wrist jerk":
        return f"{v:.0f}"
    return f"{v:.4f}" if column.startswith("DTW") else f"{v:.2f}"


def markdown(columns: list[str], rows: dict) -> str:
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(_cell(r[c], c) for c in columns) + " |" for name, r in rows.items()]
    return "\n".join(lines) + "\n"


def csv_text(columns: list[str], rows: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", *columns])
    for name, r in rows.items():
        w.writerow([name, *("" if r[c] is None else f"{r[c]:.6g}" for c in columns)])
    return buf.getvalue()


def bar_chart(columns: list[str], rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in ("DTW-MJE", "DTW-MJE hands", "BLEU-4", "chrF") if c in columns]
    # one shared method axis: the names are written once, on the left, and every panel keeps its width
    fig, axes = plt.subplots(1, len(shown), figsize=(2 + 3.5 * len(shown), 0.8 + 0.35 * len(rows)), squeeze=False,
                             sharey=True)
    names = list(rows)
    for ax, column in zip(axes[0], shown):
        values = [rows[n][column] if rows[n][column] is not None else 0.0 for n in names]
        ax.barh(names, values, color=["#888888" if n == GROUND_TRUTH else "#2b6cb0" for n in names])
        ax.set_title(column + (" (lower is better)" if column.startswith("DTW") else " (higher is better)"),
                     fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # ground truth on top (shared: once)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


GLOSS_COLUMNS = {"gloss WER": "wer", "BLEU-1": "bleu1", "BLEU-4": "bleu4", "ROUGE-L": "rouge_l"}


def glosser_table(specs: list[str]) -> str:
    """Markdown table of text-to-gloss translators from `slp score-glosses --json` files."""
    lines = ["| text to gloss | " + " | ".join(GLOSS_COLUMNS) + " |", "|---|" + "---:|" * len(GLOSS_COLUMNS)]
    for spec in specs:
        name, path, scores = _read(spec)
        if "wer" not in scores:
            raise SlpError(f"{path}: not a score file of `slp score-glosses` (no 'wer')")
        cells = [_cell(_get(scores, (key,)), column) for column, key in GLOSS_COLUMNS.items()]
        lines.append(f"| {name or path.stem} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(specs: list[str], output: Path | None = None, glossers: list[str] = ()) -> tuple[list[str], dict, str]:
    """Gather the runs (and the ``glossers``' gloss scores, a second table); with ``output``
    (e.g. table.md) also write table.csv and table.png beside it. Returns the columns, the rows
    and the markdown."""
    if not specs:
        raise SlpError("no runs given: pass score JSONs or run folders holding scores.json")
    if output:
        inputs = [Path(spec.rpartition("=")[2]) for spec in [*specs, *glossers]]
        inputs += [p / "scores.json" for p in inputs if p.is_dir()]
        refuse_overwriting([Path(output).with_suffix(x) for x in (".md", ".csv", ".png")], inputs)
    columns, rows = gather(specs)
    text = markdown(columns, rows) + ("\n" + glosser_table(list(glossers)) if glossers else "")
    if output:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        for suffix, content in ((".md", text), (".csv", csv_text(columns, rows))):
            write_text(output.with_suffix(suffix), content)
        bar_chart(columns, rows, output.with_suffix(".png"))
    return columns, rows, text
