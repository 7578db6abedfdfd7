"""Families explain does not take yet are refused in one line, before any data is read; a
pretrained language model is taken (tests/integration/test_explain_pretrained_lm.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from megalith.data.specs import OutputSpec
from megalith.errors import RunError
from megalith.explain import check_supported
from megalith.explain.sanity import randomised_copy
from megalith.models.pretrained import PretrainedModel


def _tiny_gpt2_model() -> PretrainedModel:
    from transformers import GPT2Config, GPT2LMHeadModel

    net = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    return PretrainedModel(
        net,
        task="language_model",
        input_name="text",
        output=OutputSpec("text", "text"),
        pad_id=0,
        context=8,
        lora=False,
    )


def test_a_pretrained_language_model_is_taken_and_other_families_refused() -> None:
    config: Any = SimpleNamespace(
        model=SimpleNamespace(arch="pretrained"), outputs=[SimpleNamespace(type="text")]
    )
    check_supported(SimpleNamespace(path=Path("runs/lm"), config=config, model=_tiny_gpt2_model()))  # type: ignore[arg-type]
    other: Any = SimpleNamespace(
        path=Path("runs/asr"),
        config=SimpleNamespace(model=SimpleNamespace(arch="asr")),
        model=nn.Linear(2, 2),
    )
    with pytest.raises(RunError) as raised:
        check_supported(other)
    assert str(raised.value) == (
        "runs/asr: explaining a model.arch asr run is not supported yet; explain takes mlp, cnn, "
        "resnet and pretrained classifier runs (tables, images, text, sequences) and the gpt, "
        "pretrained language model and seq2seq runs' tokens and attention maps"
    )


def test_randomising_a_hugging_face_model_re_initialises_its_own_layers() -> None:
    # GPT-2's attention and MLP are transformers' Conv1D, which has no reset_parameters: the
    # model's own _init_weights must re-draw them, or the randomisation check keeps them
    model = _tiny_gpt2_model()
    weights = dict(model.named_parameters())
    fresh = dict(randomised_copy(model).named_parameters())
    for name in ("net.transformer.h.0.attn.c_attn.weight", "net.transformer.h.0.mlp.c_fc.weight"):
        assert not torch.equal(weights[name], fresh[name]), name
    assert torch.equal(
        weights["net.transformer.h.0.attn.c_attn.weight"],
        model.net.transformer.h[0].attn.c_attn.weight,
    )  # type: ignore[union-attr,index]
