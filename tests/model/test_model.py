"""Model blocks, loss, optimiser groups, schedule and tokenizer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from webclip.model.clip import CLIP
from webclip.model.config import load_preset
from webclip.model.loss import clip_loss
from webclip.model.tokenizer import decode, encode_batch, train_tokenizer
from webclip.model.train import lr_at, param_groups


def test_shapes_for_both_towers() -> None:
    for preset in ("demo", "tiny-rn"):
        cfg = load_preset(preset)
        cfg.vocab_size = 100
        model = CLIP(cfg).eval()
        img = model.encode_image(torch.randn(2, 3, cfg.image_size, cfg.image_size))
        txt = model.encode_text(torch.tensor([[1, 5, 6, 2] + [0] * (cfg.context_length - 4)] * 3))
        assert img.shape == (2, cfg.embed_dim) and txt.shape == (3, cfg.embed_dim)
        assert torch.allclose(img.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_text_tower_is_causal() -> None:
    cfg = load_preset("demo")
    cfg.vocab_size = 50
    model = CLIP(cfg).eval()
    a = torch.tensor([[1, 5, 2, 7, 8] + [0] * (cfg.context_length - 5)])
    b = torch.tensor([[1, 5, 2, 9, 9] + [0] * (cfg.context_length - 5)])  # differs only after <eot>
    assert torch.allclose(model.encode_text(a), model.encode_text(b), atol=1e-6)


def test_loss_matches_direct_formula_and_temperature_clamps() -> None:
    torch.manual_seed(0)
    i, t = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(10.0)
    logits = scale * i @ t.T
    expected = 0
    for k in range(4):
        expected += -torch.log_softmax(logits[k], 0)[k] - torch.log_softmax(logits[:, k], 0)[k]
    assert torch.allclose(clip_loss(i, t, scale), expected / 8, atol=1e-5)
    cfg = load_preset("demo")
    model = CLIP(cfg)
    assert math.isclose(model.logit_scale.exp().item(), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model(torch.randn(1, 3, 32, 32), torch.tensor([[1, 2] + [0] * (cfg.context_length - 2)]))[2].item() <= 100.0 + 1e-3


def test_weight_decay_groups_and_schedule() -> None:
    model = CLIP(load_preset("demo"))
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 and "embedding" not in names[id(p)] for p in decay["params"])
    assert any("logit_scale" in names[id(p)] for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0
    assert math.isclose(lr_at(0, 1.0, 10, 100), 0.1) and math.isclose(lr_at(9, 1.0, 10, 100), 1.0)
    assert math.isclose(lr_at(55, 1.0, 10, 100), 0.5, abs_tol=1e-9) and lr_at(100, 1.0, 10, 100) < 1e-9


def test_tokenizer_round_trip() -> None:
    tok = train_tokenizer(["a red star", "ein roter Stern", "une étoile", "猫と星"] * 20, 300)
    ids = encode_batch(tok, ["a red star", "une étoile"], 16)
    assert ids.shape == (2, 16) and ids[0, 0] == 1 and (ids[0] == 2).sum() == 1
    assert decode(tok, ids[0]) == "a red star" and decode(tok, ids[1]) == "une étoile"
