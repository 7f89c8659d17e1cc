"""`slp generate [TEXT] --lang dgs --method concat --dictionary dictionary.h5 -o out.h5` and
`slp generate [TEXT] --lang dgs --model GEN_DIR -o out.h5` (a trained generator)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from ..errors import SlpError
from .common import MODELS, RichProgress, console, existing, print_json, print_skipped
from .options import collect, dataclass_params, make_command, params_of, peek


def _method_options(method: str, dictionary: Optional[Path], transition_frames: Optional[int],
                    rest_frames: Optional[int], model: Optional[Path] = None, pause_frames: Optional[int] = None,
                    fingerspell: bool = True, glosser: Optional[Path] = None, beam: int = 1,
                    model_options: dict | None = None, **run_options) -> dict:
    """The options each registered method takes from the command line."""
    if method == "model":
        if model is None:
            raise SlpError("--method model needs --model GEN_DIR (train one with `slp train generator`)")
        if (dictionary is not None or transition_frames is not None or rest_frames is not None
                or pause_frames is not None or not fingerspell or glosser is not None):
            raise SlpError("--dictionary, --glosser, --transition-frames, --rest-frames, --pause-frames and "
                           "--no-fingerspell are for --method concat; a --model predicts the whole sequence")
        return {"model": existing(model, "model directory"), **run_options, **(model_options or {})}
    if glosser is None and beam != 1:
        raise SlpError("--beam is the beam size of --glosser T2G_DIR; give a glosser or drop --beam")
    if method == "concat":
        if dictionary is None:
            raise SlpError("--method concat needs --dictionary DICT.h5 (build one with `slp dict build`)")
        out = {"dictionary": existing(dictionary, "dictionary"), "transition_frames": transition_frames,
               "rest_frames": rest_frames, "pause_frames": pause_frames, "fingerspell": fingerspell}
        if glosser is not None:
            out.update(glosser=existing(glosser, "glosser directory"), beam=beam,
                       device=run_options.get("device", "cpu"))
        return out
    return {}


def generate(
    text: Optional[str] = typer.Argument(None, help="Sentence to sign (or use --texts-from)."),
    output: Path = typer.Option(Path("generated.h5"), "-o", "--output", help="Pose artifact to write (one sample "
                                "per sentence)."),
    lang: Optional[str] = typer.Option(None, help="Sign language, e.g. dgs, csl, asl. Required with TEXT or a "
                                       "text file; with an artifact it keeps only that language's samples."),
    method: str = typer.Option("concat", help="Generation method: 'concat' joins dictionary clips word by word; "
                               "'model' (implied by --model) runs a trained generator."),
    model: Optional[Path] = typer.Option(None, help="Trained generator directory from `slp train generator` "
                                         "(selects --method model). Its own options are listed by `slp generate "
                                         "--model DIR --help`."),
    device: str = typer.Option("auto", help="With --model: auto (CUDA if available), cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(32, min=1, help="With --model: sentences per forward pass."),
    seed: int = typer.Option(0, help="With --model: seed of any sampling."),
    dictionary: Optional[Path] = typer.Option(None, help="Sign dictionary from `slp dict build` (for concat)."),
    glosser: Optional[Path] = typer.Option(None, help="Concat: a text-to-gloss model (`slp train text2gloss`) "
                                           "translates the text into glosses, which are then looked up (glosses "
                                           "the dictionary lacks are reported as unknown); default: each word is "
                                           "matched by its form, the learnt table and its lemma."),
    beam: int = typer.Option(1, min=1, help="With --glosser: its beam size (1: greedy)."),
    texts_from: Optional[Path] = typer.Option(None, help="Batch: a UTF-8 text file, one sentence a line (ids "
                                              "line-0001, ...), or an slp artifact (its ids, texts, languages)."),
    split: Optional[str] = typer.Option(None, help="With an artifact for --texts-from: sign only this split."),
    strict: bool = typer.Option(False, help="Fail on any word with no sign instead of skipping it and reporting it."),
    transition_frames: Optional[int] = typer.Option(None, min=0, help="Frames of eased interpolation between two "
                                                    "signs (default 0.12 s at the dictionary's frame rate)."),
    rest_frames: Optional[int] = typer.Option(None, min=0, help="Hold the dictionary's rest pose this many frames "
                                              "at the start and end of each sentence (default 0.16 s at the "
                                              "dictionary's frame rate; 0: start and end on the signs)."),
    pause_frames: Optional[int] = typer.Option(None, min=0, help="Concat: hold the last frame this many frames at "
                                               "punctuation (default 0.2 s at the dictionary's frame rate)."),
    fingerspell: bool = typer.Option(True, "--fingerspell/--no-fingerspell", help="Concat: fingerspell words with "
                                     "no sign where the dictionary has a manual alphabet (`slp dict build "
                                     "--alphabet`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout (with every unknown "
                                 "word and its count)."),
) -> None:
    """Sign sentences: text to a pose artifact, with a report of words that have no sign."""
    _generate(**locals())


def _generate(text, output, lang, method, model, device, batch_size, seed, dictionary, glosser, beam, texts_from,
              split, strict, transition_frames, rest_frames, pause_frames, fingerspell, as_json,
              model_options: dict | None = None) -> None:
    from ..generate import run

    if model is not None:
        method = "model"
    elif method == "concat" and dictionary is None:
        said = f'"{text}"' if text else "--texts-from FILE"
        raise SlpError(f"slp generate signs with a trained generator or a sign dictionary: `slp generate {said} "
                       f"--lang dgs --model GEN_DIR` (from `slp train generator`) or `slp generate {said} --lang dgs "
                       "--dictionary dictionary.h5` (from `slp dict build`)")
    options = _method_options(method, dictionary, transition_frames, rest_frames, model, pause_frames, fingerspell,
                              glosser, beam, model_options, device=device, batch_size=batch_size, seed=seed)
    batch = texts_from is not None
    result = run(output, text=text, lang=lang, texts_from=existing(texts_from, "--texts-from file") if batch else None,
                 split=split, method=method, strict=strict, progress=RichProgress(hide_below=2), **options)
    if as_json:
        print_json(result)
    signs = "" if method == "model" else (f"{result['signed']} signs, {result['function_words']} function "
                                          "words skipped, ")
    console.print(f"wrote {result['written']} of {result['sentences']} sentences ({result['frames']} frames) to "
                  f"{output}: {signs}{result['unknown_words']} unknown words in {result['sentences_with_unknown']} "
                  "sentences")
    if result["most_frequent_unknown"]:
        more = len(result["unknown"]) - len(result["most_frequent_unknown"])
        console.print("most frequent unknown words: " + ", ".join(
            f"{w} ({n})" for w, n in result["most_frequent_unknown"])
            + (f" and {more} more (all in --json and in each sentence's report)" if more > 0 else ""), highlight=False)
    if result["fingerspelled"]:
        console.print(f"fingerspelled {sum(result['fingerspelled'].values())} words: " + ", ".join(
            f"{w} ({n})" for w, n in list(result["fingerspelled"].items())[:10])
            + (" ..." if len(result["fingerspelled"]) > 10 else ""), highlight=False)
    print_skipped(result["skipped_inputs"], "listed in the artifact, see `slp info`", shown=5)


def command_for(args: list[str]):
    """`slp generate` with the options of the generator named by ``--model DIR`` among ``args``
    (None: the plain command)."""
    from ..models import TextToPose, get_model_class, model_file, peek_model_name, read_blob

    path = peek(args, "--model")
    if path is None or not Path(path).exists():
        return None
    name = peek_model_name(path)
    if name is None:
        model_file(path)  # no model here: one clear line
        name = read_blob(path)["model"]
    cls = get_model_class(name)
    if not issubclass(cls, TextToPose):
        raise SlpError(f"{path}: holds a '{name}' model ({cls.kind}), which does not generate poses from text; "
                       "give a directory from `slp train generator`")
    extra = dataclass_params(cls.GenerateOptions, "gen_", f"Options of {name}")
    # a generator's own option of the same name (e.g. GLOS's --glosser) replaces the concat one
    own = {f.name for f in dataclasses.fields(cls.GenerateOptions)}
    base = [p for p in params_of(generate) if p.name not in own]
    replaced = {p.name: p.default.default for p in params_of(generate) if p.name in own}

    def fn(**kwargs) -> None:
        options = collect(cls.GenerateOptions, "gen_", kwargs)
        _generate(**kwargs, **replaced, model_options=options)

    return make_command("generate", fn, base + extra, help=generate.__doc__, panel=MODELS)


def register(app: typer.Typer) -> None:
    from .common import DYNAMIC

    app.command("generate", rich_help_panel=MODELS)(generate)
    DYNAMIC["generate"] = command_for
