"""Text encoders: sinusoidal positions, the offline default, and a pretrained encoder loaded by
path (a tiny random BertModel saved with save_pretrained), including an a2v generator on it."""

import math

import numpy as np
import pytest
import torch

import slp_cli
from slp_cli import SlpError
from slp_cli.text.encoders import (OfflineEmbedder, PretrainedEmbedder, TextEncoder, load_pretrained, make_embedder,
                                   sinusoidal)
from slp_cli.text.tokenizer import UNK, TextTokenizer

TEXTS = ["am mittwoch zieht regen heran", "morgen regnet es im süden", "heute gibt es starken regen",
         "der mann kauft heute äpfel"]
LANGS = ["dgs", "dgs", "dgs", "dgs"]


def test_sinusoidal_matches_the_formula():
    pe = sinusoidal(torch.tensor([0, 3, 2.5]), 6)
    assert pe.shape == (3, 6)
    np.testing.assert_allclose(pe[0], [0, 0, 0, 1, 1, 1], atol=1e-7)
    for k in range(3):
        w = 10000 ** (-k / 3)
        assert pe[1, k] == pytest.approx(math.sin(3 * w), abs=1e-6)
        assert pe[1, 3 + k] == pytest.approx(math.cos(3 * w), abs=1e-6)
    assert sinusoidal(torch.arange(4), 7).shape == (4, 7)  # odd sizes are zero-padded


def offline_encoder(d=16):
    tok = TextTokenizer.train(TEXTS, ["dgs"], vocab_size=200)
    return TextEncoder(OfflineEmbedder(tok, 8), ["asl", "dgs"], d, layers=1, heads=2, ffn=32, dropout=0.0).eval()


def test_offline_encoder_ids_padding_and_bad_text():
    enc = offline_encoder()
    prepared = enc.prepare(["regen im süden", "am mittwoch zieht regen heran"], ["dgs", "asl"])
    assert prepared[0]["text"].tolist() == enc.embedder.tokenizer.encode("regen im süden")
    assert [p["lang"] for p in prepared] == [1, 0]
    batch = enc.collate(prepared)
    assert batch["text"].shape == (2, len(prepared[1]["text"])) and batch["text_mask"].sum(1).tolist() == [
        len(p["text"]) for p in prepared]
    with torch.no_grad():
        both, mask = enc(batch)
        alone, _ = enc(enc.collate(prepared[:1]))
    assert both.shape == (2, batch["text"].shape[1], 16)
    # padding is invisible: the short sentence's features are the same alone and in the batch
    torch.testing.assert_close(both[0, :len(prepared[0]["text"])], alone[0], atol=1e-5, rtol=1e-5)
    # the language embedding changes the features of the same text
    with torch.no_grad():
        enc.lang.weight.normal_()
        a, _ = enc(enc.collate(enc.prepare(["regen"], ["dgs"])))
        b, _ = enc(enc.collate(enc.prepare(["regen"], ["asl"])))
    assert not torch.allclose(a, b)

    with pytest.raises(SlpError, match="empty text"):
        enc.prepare(["  "], ["dgs"])
    with pytest.raises(SlpError, match="all \\[UNK\\]"):
        enc.prepare(["☃☃ ☃"], ["dgs"])
    with pytest.raises(SlpError, match="not in this model's training data"):
        enc.prepare(["regen"], ["bsl"])
    # a partly known sentence is used; the word with no known piece is reported
    ids = enc.prepare(["regen ☃ heute"], ["dgs"])[0]["text"]
    assert UNK in ids.tolist() and len(ids) >= 3
    assert enc.unknown_words("regen ☃ heute") == ["☃"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT with its own WordPiece vocabulary, saved by path."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("bert")
    words = sorted({w for t in TEXTS for w in t.split()})
    letters = list("abcdefghijklmnopqrstuvwxyzäöüß")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + letters + ["##" + c for c in letters]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, strip_accents=False)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=48, max_position_embeddings=64))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model.eval(), tok


def test_pretrained_encoder_loads_by_path_and_stays_frozen(tiny_bert):
    path, reference, tok = tiny_bert
    emb = make_embedder(str(path), None, 0)
    assert isinstance(emb, PretrainedEmbedder) and emb.dim == 24
    feats = emb.prepare(["regen im süden", "am mittwoch zieht regen heran"])
    with torch.no_grad():
        want = reference(**tok(["am mittwoch zieht regen heran"], return_tensors="pt")).last_hidden_state[0]
    # the batch's padding does not change the longer (unpadded) and shorter sentence's features
    np.testing.assert_allclose(feats[1], want.numpy(), atol=1e-5)
    with torch.no_grad():
        alone = reference(**tok(["regen im süden"], return_tensors="pt")).last_hidden_state[0]
    np.testing.assert_allclose(feats[0], alone.numpy(), atol=1e-5)
    assert feats[0].shape == (len(tok("regen im süden")["input_ids"]), 24)

    enc = TextEncoder(emb, ["dgs"], 16, layers=1, heads=2, ffn=32)
    assert not any(k.startswith("embedder") for k in enc.state_dict())  # BERT is loaded by name, not copied
    assert all(not p.requires_grad for p in emb.hf_model.parameters())
    out, mask = enc(enc.collate(enc.prepare(["regen heute"], ["dgs"])))
    assert out.shape == (1, int(mask.sum()), 16)
    with pytest.raises(SlpError, match="all unknown"):
        enc.prepare(["☃☃"], ["dgs"])
    assert enc.unknown_words("regen ☃") == ["☃"]


def test_missing_pretrained_encoder_is_one_clear_error(tmp_path):
    with pytest.raises(SlpError, match="cannot load this directory"):
        load_pretrained(str(tmp_path))  # exists, holds no model
    with pytest.raises(SlpError, match="text encoder"):
        load_pretrained(str(tmp_path / "no-such-model"))


def test_a2v_trains_and_reloads_with_a_pretrained_encoder(tiny_bert, tmp_path):
    from slp_cli.data.synth import synthesize
    from slp_cli.models import load_model
    from slp_cli.normalize import normalize_samples
    from slp_cli.training import TrainOptions, train

    path, _, _ = tiny_bert
    corpus = slp_cli.save(normalize_samples(synthesize(langs=["dgs"], preset="tiny", seed=1)),
                          tmp_path / "c.h5", fps=25, normalized=True)
    opts = dict(data=[corpus])
    train("vae", TrainOptions(output=tmp_path / "vae", **opts), preset="tiny", overrides={"max_steps": 5})
    train("a2v", TrainOptions(output=tmp_path / "gen", inputs={"tokenizer": tmp_path / "vae"}, **opts),
          preset="tiny", overrides={"max_steps": 4, "text_encoder": str(path)})
    gen = load_model(tmp_path / "gen", expect="a2v")
    assert gen.text_encoder.is_pretrained and "text_tokenizer" not in gen.data
    poses = [o.pose for o in gen.sign(["heute regen"], ["dgs"], gen.make_options({"frames": 7}))]
    assert poses[0].shape == (7, 178, 3) and np.isfinite(poses[0]).all()
