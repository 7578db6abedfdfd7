"""What DP-SGD here does not cover, refused before step 0 with the key to change."""

from __future__ import annotations

from collections.abc import Sequence

from megalith.errors import ConfigError
from megalith.training.privacy import PrivacyConfig


def check_private_training(
    privacy: PrivacyConfig | None,
    clip_grad_norm: float | None,
    precision: str,
    compile_model: bool | str,
    output_types: Sequence[str],
    distilled: bool,
    sharded: bool = False,
) -> None:
    """Refuse, before step 0, what DP-SGD here does not cover.

    Raises:
        ConfigError: naming the key to change.
    """
    if privacy is None:
        return
    refusals = {
        "train.clip_grad_norm: with train.privacy, every row's gradient is clipped to "
        "train.privacy.max_grad_norm; remove clip_grad_norm": clip_grad_norm is not None,
        "train.precision: fp16 loss scaling and DP-SGD do not go together; use fp32 or bf16": (
            precision == "fp16"
        ),
        "train.compile: Opacus's per-sample gradient hooks do not compile; set it to false": (
            compile_model is True
        ),
        "outputs: text outputs (token losses) are not trained privately yet; use a category, "
        "binary or number output, or turn train.privacy off": "text" in output_types,
        "teacher: distillation with train.privacy would train on a teacher fitted to the same "
        "private rows; drop the teacher or train.privacy": distilled,
        "train.strategy: fsdp shards the weights, while DP-SGD on several processes runs on "
        "whole weights (Opacus's DDP); use strategy: ddp with train.privacy": sharded,
    }
    for message, refused in refusals.items():
        if refused:
            raise ConfigError(message)
