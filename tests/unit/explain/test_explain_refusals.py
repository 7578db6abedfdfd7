"""Families explain does not take yet are refused in one line, before any data is read."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from megalith.data.specs import OutputSpec
from megalith.errors import RunError
from megalith.explain import check_supported
from megalith.models.pretrained import PretrainedModel


def test_a_pretrained_language_model_is_refused_naming_what_is_taken() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    net = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    model = PretrainedModel(
        net,
        task="language_model",
        input_name="text",
        output=OutputSpec("text", "text"),
        pad_id=0,
        context=8,
        lora=False,
    )
    config: Any = SimpleNamespace(
        model=SimpleNamespace(arch="pretrained"), outputs=[SimpleNamespace(type="text")]
    )
    run: Any = SimpleNamespace(path=Path("runs/lm"), config=config, model=model)
    with pytest.raises(RunError) as raised:
        check_supported(run)
    assert str(raised.value) == (
        "runs/lm: explaining a pretrained language model is not supported yet; explain takes "
        "mlp, cnn, resnet and pretrained classifier runs (tables, images, text, sequences) and "
        "the gpt and seq2seq runs' tokens and attention maps"
    )
