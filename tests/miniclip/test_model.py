"""The model's contract: frozen parts stay frozen, shapes, and search vectors."""

import torch

from photosearch.miniclip.config import PRESETS, with_overrides
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.tokenizer import WordTokenizer


def test_frozen_backbone_stays_in_eval_mode_and_unchanged_while_training():
    model = MiniCLIP(PRESETS["tiny"], WordTokenizer.build(["a red circle"], max_len=8))
    before = {k: v.clone() for k, v in model.image_trunk.state_dict().items()}
    model.train()
    assert not model.image_trunk.training and model.image_head.training
    with torch.no_grad():
        first = model.image_features(torch.rand(4, 3, 64, 64))
    model.eval()
    with torch.no_grad():
        again = model.image_features(torch.rand(4, 3, 64, 64) * 0 + 0.5)
    after = model.image_trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "BatchNorm statistics moved"
    assert first.shape == again.shape == (4, model.image_trunk.net.num_features)
    assert not any(p.requires_grad for p in model.image_trunk.parameters())


def test_forward_returns_unit_embeddings_and_temperature():
    model = MiniCLIP(with_overrides(PRESETS["tiny"], text_encoder="bow"), WordTokenizer.build(["a b c"], max_len=8)).eval()
    image_emb, text_emb, scale = model(torch.rand(3, 3, 64, 64), ["a b", "c", "a"])
    assert image_emb.shape == text_emb.shape == (3, model.config.embed_dim)
    assert torch.allclose(image_emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert abs(scale.item() - 1 / 0.07) < 1e-3
    vectors = model.encode_search_texts(["a b"])
    assert vectors.shape == (1, model.search_dim)
