"""The SLT back-translator (HFA-SLT, adapted to poses): losses, stages, quality on the synthetic corpus,
checkpoint selection by dev BLEU-4, the CTC gloss head, DDP and autocast behaviour, the
pretrained-LM path with LoRA, and bad input."""

import csv
import math
import os
import shutil
import types

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.artifacts import load
from slp_cli.cli.main import app
from slp_cli.data.synth import synthesize
from slp_cli.models import get_model_class, load_model
from slp_cli.data.loader import BucketBatchSampler
from slp_cli.metrics.text import wer
from slp_cli.models.slt import (IGNORE, SLT, attention_mask, contrastive_loss, ctc_gloss_loss, ctc_greedy,
                                downsample, gather_with_grad, pseudo_gloss_scores, warmup_cosine)
from slp_cli.normalize import normalize_samples
from slp_cli.score import text_scores
from slp_cli.text.pseudo_gloss import keys as pg_keys
from slp_cli.training import TrainOptions, train
from slp_cli.translate import back_translate, translate_samples


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("slt") / "dgs.norm.h5"
    slp_cli.save(normalize_samples(synthesize(["dgs"], preset="tiny", sentences=300, seed=1)), path, fps=25,
                 normalized=True)
    return path


def options(corpus, out, **kw):
    return TrainOptions(output=out, data=[corpus], **kw)


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    """The paper's recipe at tiny scale: pre-training, then the two fine-tuning stages."""
    root = tmp_path_factory.mktemp("runs")
    train("slt", options(corpus, root / "pre"), preset="tiny", overrides={"stage": "pretrain", "max_steps": 100})
    train("slt", options(corpus, root / "head", init=root / "pre"), preset="tiny",
          overrides={"stage": "finetune-head", "max_steps": 60})
    train("slt", options(corpus, root / "all", init=root / "head"), preset="tiny",
          overrides={"stage": "finetune-all", "max_steps": 120})
    return {name: root / name for name in ("pre", "head", "all")}


def metric(run_dir, name, split="train"):
    with open(run_dir / "metrics.csv") as f:
        return [float(r["value"]) for r in csv.DictReader(f) if r["split"] == split and r["name"] == name]


def test_losses_fall_in_every_stage(runs):
    for run, names in (("pre", ("loss", "align", "pseudo_gloss")), ("head", ("loss",)), ("all", ("loss",))):
        for name in names:
            values = metric(runs[run], name)
            assert np.mean(values[-3:]) < 0.7 * np.mean(values[:3]), (run, name, values)
    # fine-tuning everything goes further than the head alone
    assert metric(runs["all"], "loss", "dev")[-1] < metric(runs["head"], "loss", "dev")[-1]
    assert metric(runs["all"], "accuracy", "dev")[-1] > 0.6


def test_stages_train_what_the_paper_trains(runs):
    pre, head, full = (load_model(runs[n], expect="slt") for n in ("pre", "head", "all"))
    assert (pre.config.stage, head.config.stage, full.config.stage) == ("pretrain", "finetune-head", "finetune-all")
    # --init carries the architecture and everything taken from the data
    assert head.data["tokenizer"] == pre.data["tokenizer"] and head.pseudo_glosses == pre.pseudo_glosses
    assert head.data["init_from"] == str(runs["pre"]) and "init_from" not in pre.data
    pre_sd, head_sd, full_sd = pre.state_dict(), head.state_dict(), full.state_dict()

    def same(a, b, prefix):
        return all(torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))

    # first fine-tuning stage: only the mapper and the decoder move
    for frozen in ("frame.", "temporal.", "seq_encoder.", "text_encoder.", "prototypes"):
        assert same(pre_sd, head_sd, frozen), frozen
    for trained in ("mapper.", "decoder."):
        assert not same(pre_sd, head_sd, trained), trained
    trainable = {n.split(".")[0] for n, p in head.named_parameters() if p.requires_grad}
    assert trainable == {"mapper", "decoder", "gloss_head"}  # (the corpus has glosses: a CTC head)
    # second stage: the visual and sequence encoders train too
    for trained in ("frame.", "temporal.", "seq_encoder.", "mapper.", "decoder.", "gloss_head."):
        assert not same(head_sd, full_sd, trained), trained
    # pre-training leaves the decoder (and the gloss head) out
    assert {n.split(".")[0] for n, p in pre.named_parameters() if not p.requires_grad} == {"decoder", "gloss_head"}
    assert any(k.startswith("gloss_head.") for k in pre_sd) and pre.gloss_vocabulary == full.gloss_vocabulary


def test_backtranslation_of_ground_truth_far_above_shuffled_and_noise(runs, corpus):
    model = load_model(runs["all"], expect="slt")
    test = load(corpus, split="test").samples
    rng = np.random.default_rng(0)
    variants = {
        "ground truth": [s.pose for s in test],
        "shuffled": [test[i].pose for i in np.roll(np.arange(len(test)), 1)],
        "noise": [rng.normal(scale=0.3, size=s.pose.shape).astype(np.float32) for s in test],
    }
    scores, gloss_wer = {}, {}
    for name, poses in variants.items():
        bt = back_translate(model, [Sample(id=s.id, pose=p, lang=s.lang) for s, p in zip(test, poses)])
        assert not bt.skipped and len(bt.texts) == len(bt.glosses) == len(test)
        scores[name] = text_scores([(h, s.text, s.lang) for h, s in zip(bt.texts, test)])
        gloss_wer[name] = wer(bt.glosses, [s.glosses for s in test])
    gt = scores["ground truth"]
    assert gt["n"] == len(test) >= 15
    assert gt["bleu4"] > 25
    for other in ("shuffled", "noise"):
        assert gt["bleu4"] > scores[other]["bleu4"] + 20, scores
        assert gt["bleu1"] > scores[other]["bleu1"] + 20, scores
        assert gt["chrf"] > scores[other]["chrf"] + 20, scores
        # the CTC gloss head: the glosses of the ground truth are recognised, not those of others
        assert gloss_wer["ground truth"] < gloss_wer[other] - 30, gloss_wer
    assert gloss_wer["ground truth"] < 50, gloss_wer


def test_contrastive_loss_equals_hand_computed_value():
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # cosine similarities [[1, 1/sqrt2], [0, 1/sqrt2]] / 0.5
    r = math.sqrt(2)
    rows = -math.log(math.exp(2) / (math.exp(2) + math.exp(r))) - math.log(math.exp(r) / (1 + math.exp(r)))
    cols = -math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(0.5)
    expected = (rows + cols) / 4  # -1/(2B) (sum over videos + sum over sentences), B = 2
    assert contrastive_loss(video, text, 0.5).item() == pytest.approx(expected, rel=1e-6)
    # cosine similarity: the lengths of the features do not matter
    assert contrastive_loss(3 * video, 0.1 * text, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_gloss_scores_follow_equations_1_to_3():
    g = torch.Generator().manual_seed(0)
    z, protos = torch.randn(2, 4, 5, generator=g), torch.randn(3, 5, generator=g)
    valid = torch.tensor([[True] * 4, [True, True, True, False]])
    got = pseudo_gloss_scores(z, valid, protos, 0.1, 0.2).numpy()
    for b in range(2):
        t_len = int(valid[b].sum())
        zb = z[b, :t_len].numpy()
        p = np.vstack([protos.numpy(), np.zeros(5)])
        s = np.array([[zi @ pj / (np.linalg.norm(zi) * max(np.linalg.norm(pj), 1e-12)) for pj in p] for zi in zb])
        over_time = np.exp(s / 0.1) / np.exp(s / 0.1).sum(0, keepdims=True)
        over_protos = np.exp(s / 0.2) / np.exp(s / 0.2).sum(1, keepdims=True)
        expected = (over_time * over_protos).sum(0)[:3]
        np.testing.assert_allclose(got[b], expected, rtol=1e-5)
    assert ((got > 0) & (got < 1)).all()  # a time-softmax-weighted mean of probabilities


def test_local_attention_downsampling_and_schedule():
    valid = torch.tensor([[True] * 5 + [False] * 3])
    m = attention_mask(valid, 3)[0, 0]
    assert m[2].tolist() == [False, True, True, True, False, False, False, False]
    assert m[7].tolist() == [False] * 7 + [True]  # a padded position sees only itself
    x = torch.arange(8.0).view(1, 8, 1)
    pooled, pv = downsample(x, valid, 2)
    assert pooled[0, :, 0].tolist() == [0.5, 2.5, 4.0, 0.0] and pv[0].tolist() == [True, True, True, False]
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1) and warmup_cosine(9, 10, 110) == 1.0
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5) and warmup_cosine(110, 10, 110) == pytest.approx(0.0)


def test_resume_continues_exactly(corpus, runs, tmp_path):
    # from --init, so both runs share one tokenizer (training a WordPiece vocabulary twice can
    # order tied tokens differently)
    over = {"stage": "finetune-all", "log_every": 1, "eval_every": 100, "checkpoint_every": 100}
    init = {"init": runs["head"]}
    train("slt", options(corpus, tmp_path / "full", **init), preset="tiny", overrides={**over, "max_steps": 8})
    train("slt", options(corpus, tmp_path / "part", **init), preset="tiny", overrides={**over, "max_steps": 4})
    train("slt", options(corpus, tmp_path / "part", resume=True), preset="tiny", overrides={**over, "max_steps": 8})
    np.testing.assert_allclose(metric(tmp_path / "part", "loss"), metric(tmp_path / "full", "loss"), rtol=1e-5)


def test_targets_and_collate(runs, corpus):
    model = load_model(runs["head"], expect="slt")
    sample = load(corpus, split="train").samples[0]
    dec_in, labels = model.target(sample.text, sample.lang)
    tok = model._text_tokenizer
    assert dec_in[:2] == [tok.lang_id("dgs"), 2] and labels[0] == IGNORE and labels[-1] == 3
    assert dec_in[2:] == labels[1:-1] == tok.encode(sample.text)
    assert model.decode_ids(labels[1:]) == sample.text
    batch = model.collate([model.make_dataset([sample]).items[0]])
    assert batch["pseudo_glosses"].sum() == len(pg_keys(sample.text, "dgs")) > 0


def test_cli_runs_the_stages(corpus, tmp_path):
    runner = CliRunner()
    base = ["train", "slt", "--data", str(corpus), "--preset", "tiny", "--max-steps", "4"]
    r = runner.invoke(app, base + ["-o", str(tmp_path / "pre"), "--stage", "pretrain", "--lambda", "0.5"])
    assert r.exit_code == 0, r.output
    assert load_model(tmp_path / "pre").config.pg_weight == 0.5
    r = runner.invoke(app, base + ["-o", str(tmp_path / "head"), "--stage", "finetune-head",
                                   "--init", str(tmp_path / "pre")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "head" / "model.pt").exists()
    r = runner.invoke(app, base + ["-o", str(tmp_path / "x"), "--stage", "finetune-all", "--init",
                                   str(tmp_path / "pre"), "--lm", "facebook/mbart-large-cc25"])
    assert r.exit_code != 0 and isinstance(r.exception, SlpError) and "--lm" in str(r.exception)
    r = runner.invoke(app, base + ["-o", str(tmp_path / "y"), "--stage", "translate"])
    assert r.exit_code != 0 and "stage must be one of pretrain" in str(r.exception)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_bad_input(corpus, runs, tmp_path):
    samples = load(corpus).samples
    no_text = tmp_path / "no_text.h5"
    slp_cli.save([Sample(id=s.id, pose=s.pose, lang=s.lang, split=s.split) for s in samples], no_text, fps=25,
                 normalized=True)
    with pytest.raises(SlpError, match="has no text"):
        train("slt", options(no_text, tmp_path / "a"), preset="tiny")
    # a language the pre-trained model's tokenizer never saw
    asl = tmp_path / "asl.h5"
    slp_cli.save(normalize_samples(synthesize(["asl"], preset="tiny", seed=2)), asl, fps=25, normalized=True)
    with pytest.raises(SlpError, match="language 'asl' was not in the training data"):
        train("slt", options(asl, tmp_path / "b", init=runs["pre"]), preset="tiny",
              overrides={"stage": "finetune-head"})
    with pytest.raises(SlpError, match="give --init"):
        train("slt", options(corpus, tmp_path / "c"), preset="tiny", overrides={"stage": "finetune-head"})
    assert not any((tmp_path / d).exists() for d in "abc")  # nothing written
    # empty or invisible sequences (the artifact writer refuses the first; the library too)
    cls = get_model_class("slt")
    good = samples[:4]
    for bad, message in ((np.zeros((0, 178, 3), np.float32), "has no frames"),
                         (np.full((5, 178, 3), np.nan, np.float32), "no visible joint")):
        with pytest.raises(SlpError, match=message):
            cls.from_data(cls.make_config("tiny"), good + [Sample(id="bad", pose=bad, text="regen", lang="dgs")])
    with pytest.raises(SlpError, match="unknown language 'xx'"):
        cls.from_data(cls.make_config("tiny"), good + [Sample(id="bad", pose=good[0].pose, text="a", lang="xx")])


def tiny_mbart(folder, texts):
    """A small random mBART and a word-level tokenizer with mBART's language codes, saved the way
    a hub model is (save_pretrained), to be loaded by path."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import MBartConfig, MBartForConditionalGeneration, PreTrainedTokenizerFast
    from transformers.utils import logging

    logging.disable_progress_bar()
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainer=trainers.WordLevelTrainer(
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "de_DE", "en_XX", "zh_CN"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    config = MBartConfig(vocab_size=tok.get_vocab_size(), d_model=32, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                         decoder_ffn_dim=64, max_position_embeddings=256, pad_token_id=1, bos_token_id=0,
                         eos_token_id=2)
    MBartForConditionalGeneration(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return fast


def test_pretrained_lm_with_lora(corpus, tmp_path):
    lm_dir = tmp_path / "mbart"
    tok = tiny_mbart(lm_dir, [s.text for s in load(corpus).samples])
    over = {"max_steps": 8, "eval_every": 8}
    train("slt", options(corpus, tmp_path / "pre"), preset="tiny", overrides={**over, "stage": "pretrain",
                                                                              "lm": str(lm_dir)})
    train("slt", options(corpus, tmp_path / "head", init=tmp_path / "pre"), preset="tiny",
          overrides={**over, "stage": "finetune-head"})
    shutil.rmtree(lm_dir)  # the checkpoint holds the LM, its config and its tokenizer
    pre, head = load_model(tmp_path / "pre", expect="slt"), load_model(tmp_path / "head", expect="slt")
    lora = [n for n, _ in head.named_parameters() if "lora_" in n]
    # r 16 on q_proj and v_proj of the encoder's self-attention and the decoder's self- and cross-attention
    assert len(lora) == 2 * 2 * 3 and head.lm.peft_config["default"].r == 16
    assert head.lm.peft_config["default"].lora_alpha == 32
    assert set(head.lm.peft_config["default"].target_modules) == {"q_proj", "v_proj"}
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    assert trainable == {n for n in lora if ".decoder." in n} | {"mapper.weight", "mapper.bias", "gloss_head.weight",
                                                                 "gloss_head.bias"}
    pre_sd, head_sd = pre.state_dict(), head.state_dict()
    base = [k for k in head_sd if k.startswith("lm.") and "lora_" not in k]
    assert base and all(torch.equal(pre_sd[k], head_sd[k]) for k in base)  # the LM's own weights stay frozen
    enc_b = [k for k in pre_sd if "lora_B" in k and ".encoder." in k]
    dec_b = [k for k in head_sd if "lora_B" in k and ".decoder." in k]
    assert all(pre_sd[k].abs().sum() > 0 for k in enc_b)  # LoRA B starts at 0: pre-training moved it
    assert all(head_sd[k].abs().sum() > 0 for k in dec_b)
    # the decoder starts with mBART's language code; sentences are the LM tokenizer's ids
    assert head.prefix("dgs") == [tok.convert_tokens_to_ids("de_DE")]
    sample = load(corpus, split="test").samples[0]
    dec_in, labels = head.target(sample.text, "dgs")
    assert dec_in[1:] == labels[:-1] == tok(sample.text, add_special_tokens=False)["input_ids"]
    assert labels[-1] == tok.eos_token_id
    assert head.decode_ids(labels) == sample.text
    texts, _ = translate_samples(head, load(corpus, split="test").samples[:3], beam=2)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_stage_all_runs_the_three_stages_and_resumes(corpus, tmp_path):
    out = tmp_path / "slt"
    opts = options(corpus, out)
    over = {"stage": "all", "max_steps": 3, "eval_every": 3, "checkpoint_every": 3}
    summary = train("slt", opts, preset="tiny", overrides=over)
    assert [(r["stage"], r["steps"], r["done_before"]) for r in summary["runs"]] == [
        ("pretrain", 3, False), ("finetune-head", 3, False), ("finetune-all", 3, False)]
    pre, head = out / "stages" / "1-pretrain", out / "stages" / "2-finetune-head"
    assert (pre / "model.pt").exists() and (head / "model.pt").exists() and (out / "model.pt").exists()
    final = load_model(out, expect="slt")
    assert final.config.stage == "finetune-all" and final.data["init_from"] == str(head)
    assert load_model(head).data["init_from"] == str(pre)
    # the last run is redone from the second: a re-run finishes what is missing
    (out / "model.pt").unlink()
    (out / "checkpoint.pt").unlink()
    logs = []
    summary = train("slt", TrainOptions(output=out, data=[corpus], log=logs.append), preset="tiny", overrides=over)
    assert (out / "model.pt").exists() and any("stage pretrain: done" in line for line in logs)
    assert [r["done_before"] for r in summary["runs"]] == [True, True, False]


def test_fine_tuning_keeps_the_weights_of_the_best_dev_bleu(runs, corpus):
    pre, full = load_model(runs["pre"], expect="slt"), load_model(runs["all"], expect="slt")
    assert pre.selection == ("loss", "min") and full.selection == ("bleu4", "max")
    dev_bleu = metric(runs["all"], "bleu4", "dev")
    assert len(dev_bleu) >= 2 and len(set(dev_bleu)) > 1  # one per evaluation
    assert "bleu4" not in {r for r in metric_names(runs["pre"], "dev")}
    # model.pt is the evaluation with the highest dev BLEU-4: greedy decoding of the dev split
    # with it gives that BLEU (the corpus BLEU of slp score, from the summed statistics)
    dev = load(corpus, split="dev").samples
    texts, _ = translate_samples(full, dev, beam=1)
    bleu = text_scores([(h, s.text, s.lang) for h, s in zip(texts, dev)])["bleu4"]
    assert bleu == pytest.approx(max(dev_bleu), abs=0.5), (bleu, dev_bleu)
    # the dev gloss WER of the CTC head is logged too, and it fell
    gloss = metric(runs["all"], "gloss_wer", "dev")
    assert gloss and gloss[-1] < metric(runs["head"], "gloss_wer", "dev")[0]


def metric_names(run_dir, split):
    with open(run_dir / "metrics.csv") as f:
        return {r["name"] for r in csv.DictReader(f) if r["split"] == split}


def test_second_fine_tuning_stage_runs_200_epochs_and_pretraining_batches_are_shuffled(runs, corpus):
    cls = get_model_class("slt")
    default, second = cls.make_config("default"), cls.make_config("finetune-all")
    assert second.max_steps == 2 * default.max_steps == 200 * 444 and second.stage == "finetune-all"
    assert {k: v for k, v in vars(second).items() if k not in ("max_steps", "stage")} == \
        {k: v for k, v in vars(default).items() if k not in ("max_steps", "stage")}
    samples = load(corpus, split="train").samples
    spread = {}
    for run in ("pre", "all"):
        ds = load_model(runs[run], expect="slt").make_dataset(samples)
        sampler = BucketBatchSampler(ds.lengths, 16, seed=0)
        lengths = np.array([s.num_frames for s in samples])
        spread[run] = np.mean([np.ptp(lengths[b]) for b in sampler.global_batches(0)])
    # pre-training: random batches of any lengths; fine-tuning: length-bucketed batches
    assert spread["pre"] > 3 * spread["all"], spread


def test_mbart_source_language_follows_the_sample():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import MBartTokenizerFast

    words = ["<s>", "<pad>", "</s>", "<unk>", "regen", "rain", "de_DE", "en_XX", "zh_CN"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = MBartTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                              unk_token="<unk>", src_lang="en_XX")
    model = types.SimpleNamespace(_text_tokenizer=None, hf_tokenizer=fast)
    ids = fast.convert_tokens_to_ids
    assert SLT.sentence_ids(model, "regen", "dgs") == [ids("regen"), ids("</s>"), ids("de_DE")]
    assert SLT.sentence_ids(model, "rain", "asl") == [ids("rain"), ids("</s>"), ids("en_XX")]
    assert fast.src_lang == "en_XX"  # the tokenizer's own setting is left as it was


class _TwoTowers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.video, self.text = torch.nn.Linear(4, 3), torch.nn.Linear(5, 3)

    def forward(self, video, text):  # as SLT.pretrain_losses: gathered features, the global loss
        return contrastive_loss(gather_with_grad(self.video(video)), gather_with_grad(self.text(text)), 0.5)


def _contrastive_worker(rank, world, port, video_in, text_in, out):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    net = torch.nn.parallel.DistributedDataParallel(_TwoTowers())
    share = slice(rank, None, world)  # the loop's sampler gives each process an interleaved share
    loss = net(video_in[share], text_in[share])
    loss.backward()
    torch.save({"loss": loss.detach(), "grads": [p.grad for p in net.parameters()]}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_contrastive_loss_under_ddp_equals_one_process_on_the_global_batch(tmp_path):
    g = torch.Generator().manual_seed(3)
    video_in, text_in = torch.randn(8, 4, generator=g), torch.randn(8, 5, generator=g)
    out = str(tmp_path / "c")
    # spawned, not forked: a fork of a process whose OpenMP pool has run can hang in its first op
    torch.multiprocessing.start_processes(_contrastive_worker, nprocs=2, start_method="spawn",
                                          args=(2, 29800 + os.getpid() % 1000, video_in, text_in, out))
    torch.manual_seed(0)
    single = _TwoTowers()
    loss = single(video_in, text_in)
    loss.backward()
    grads = [p.grad for p in single.parameters()]
    for rank in range(2):
        got = torch.load(f"{out}.{rank}")
        assert got["loss"].item() == pytest.approx(loss.item(), rel=1e-5)  # 8 pairs, not 4
        for a, b in zip(got["grads"], grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert gather_with_grad(video_in) is video_in  # not distributed: the tensor itself


def test_logits_stay_fp32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    video, text = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    z, protos = torch.randn(2, 5, 16, generator=g), torch.randn(4, 16, generator=g)
    valid = torch.ones(2, 5, dtype=torch.bool)
    ref_c, ref_p = contrastive_loss(video, text, 0.07), pseudo_gloss_scores(z, valid, protos, 0.1, 0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        c, p = contrastive_loss(video, text, 0.07), pseudo_gloss_scores(z, valid, protos, 0.1, 0.1)
        bf16 = (video.bfloat16() @ text.bfloat16().T)  # what autocast does to a matmul
    assert bf16.dtype == torch.bfloat16 and c.dtype == p.dtype == torch.float32
    torch.testing.assert_close(c, ref_c, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(p, ref_p, rtol=1e-6, atol=1e-6)


def test_ctc_loss_and_greedy_decoding_by_hand():
    # 4 steps, classes blank/A/B: the path A A - B collapses to [A, B]
    probs = torch.tensor([[[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]])
    valid = torch.ones(1, 4, dtype=torch.bool)
    assert ctc_greedy(probs.log(), valid) == [[1, 2]]
    # the last step is padding: the best of the 3 real steps is A A -, i.e. [A]
    assert ctc_greedy(probs.log(), torch.tensor([[True, True, True, False]])) == [[1]]
    # CTC of [A, B] over 4 steps: every alignment (collapsing to A B) summed, / 2 glosses
    p = probs[0]
    paths = [(a, b, c, d) for a in range(3) for b in range(3) for c in range(3) for d in range(3)]

    def collapse(path):
        out, prev = [], 0
        for c in path:
            if c != prev and c != 0:
                out.append(c)
            prev = c
        return out

    total = sum(math.prod(p[t, c].item() for t, c in enumerate(path)) for path in paths if collapse(path) == [1, 2])
    targets, lengths = torch.tensor([[1, 2], [0, 0]]), torch.tensor([2, 0])
    two = torch.cat([probs, probs]).log()  # the second sample has no glosses: no CTC term
    got = ctc_gloss_loss(two, torch.ones(2, 4, dtype=torch.bool), targets, lengths)
    assert got.item() == pytest.approx(-math.log(total) / 2, rel=1e-5)
    assert ctc_gloss_loss(two, torch.ones(2, 4, dtype=torch.bool), targets, torch.tensor([0, 0])).item() == 0.0


def test_beam_search_reads_the_device_once_per_step(monkeypatch):
    """No per-token (or per-sentence) host sync: one packed copy per decoding step at most."""
    from slp_cli.models import DecodingStep
    from slp_cli.translate import beam_search

    g = torch.Generator().manual_seed(0)
    table = torch.rand(6, 6, generator=g).log_softmax(-1)
    step = DecodingStep(lambda ids: table[ids[:, -1]])
    prefix = torch.tensor([[5], [4], [5]])
    expected = beam_search(step, prefix, 0, 7, beam=3)
    copies, calls = [], [0]
    real_cpu = torch.Tensor.cpu

    def counting_cpu(self, *a, **k):
        copies.append(tuple(self.shape))
        return real_cpu(self, *a, **k)

    def counting_step(ids):
        calls[0] += 1
        return table[ids[:, -1]]

    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    monkeypatch.setattr(torch.Tensor, "item", lambda self: pytest.fail("Tensor.item() in beam search"))
    assert beam_search(DecodingStep(counting_step), prefix, 0, 7, beam=3) == expected
    assert len(copies) <= calls[0] + 1  # the prefix once, then one per step


def test_translate_writes_the_recognised_glosses(runs, corpus, tmp_path):
    from slp_cli.translate import run

    out = tmp_path / "bt.h5"
    summary = run(runs["all"], corpus, out, split="test", beam=1)
    assert summary["glosses"] and summary["translated"] == summary["samples"]
    model = load_model(runs["all"], expect="slt")
    written = load(out).samples
    ref = {s.id: s for s in load(corpus, split="test").samples}
    for s in written:
        found = s.report["recognised_glosses"]
        assert isinstance(found, list) and set(found) <= set(model.gloss_vocabulary)
        assert s.glosses == ref[s.id].glosses  # the reference glosses stay as they were
    assert wer([s.report["recognised_glosses"] for s in written], [s.glosses for s in written]) < 50
