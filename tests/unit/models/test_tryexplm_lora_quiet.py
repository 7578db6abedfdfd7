"""A GPT-2 with LoRA builds and decodes without library warnings: peft's fan_in_fan_out and
is_gradient_checkpointing notes and transformers' `past_key_values` deprecation (peft's forward
hides the base model's `cache` argument) were printed by every train, generate and explain."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from pretrained_models import save_tiny_gpt2

from megalith.data.specs import OutputSpec
from megalith.models import LoRAConfig, PretrainedConfig, build_model


def test_a_lora_gpt2_builds_and_decodes_quietly(tmp_path: Path) -> None:
    folder = save_tiny_gpt2(tmp_path / "gpt2", ["the cat sat on the mat"] * 20)
    output = OutputSpec(name="text", type="text", num_classes=401)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build_model(
            PretrainedConfig(path=str(folder), lora=LoRAConfig(rank=2)), [], [output]
        )
        model.eval()
        with torch.no_grad():
            first, cache = model.decode(torch.tensor([[3, 4, 5]]))  # type: ignore[operator]
            again, _ = model.decode(torch.tensor([[6]]), cache)  # type: ignore[operator]
    whole, _ = model.decode(torch.tensor([[3, 4, 5, 6]]))  # type: ignore[operator]
    torch.testing.assert_close(again[:, -1], whole[:, -1], atol=1e-5, rtol=0)  # the cache held
    assert first.shape[:2] == (1, 3)
