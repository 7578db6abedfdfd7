"""Model families, each registered under its `model.arch` name, and the config union over them.

Adding a family: write `megalith/models/<family>.py` with its config class (an `arch` Literal)
and a `@register_model("<arch>")` builder, import the config here and add it to `ModelConfig`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# importing each family module runs its @register_model
from megalith.models.asr import ASRConfig
from megalith.models.cnn import CNNConfig
from megalith.models.crnn import CRNNConfig
from megalith.models.gpt import GPTConfig
from megalith.models.mlp import MLPConfig
from megalith.models.pretrained import LoRAConfig, PretrainedConfig
from megalith.models.recommenders import MFConfig, NCFConfig, TwoTowerConfig
from megalith.models.registry import build_model, known_archs
from megalith.models.resnet import ResNetConfig
from megalith.models.seq2seq import Seq2SeqConfig
from megalith.models.vit import ViTConfig

ModelConfig = Annotated[
    MLPConfig
    | CNNConfig
    | CRNNConfig
    | ResNetConfig
    | ViTConfig
    | GPTConfig
    | Seq2SeqConfig
    | PretrainedConfig
    | MFConfig
    | NCFConfig
    | TwoTowerConfig
    | ASRConfig,
    Field(discriminator="arch"),
]
"""The `model:` section of a config; `arch` picks the family."""

__all__ = [
    "ASRConfig",
    "CNNConfig",
    "CRNNConfig",
    "GPTConfig",
    "LoRAConfig",
    "MFConfig",
    "MLPConfig",
    "ModelConfig",
    "NCFConfig",
    "PretrainedConfig",
    "ResNetConfig",
    "Seq2SeqConfig",
    "TwoTowerConfig",
    "ViTConfig",
    "build_model",
    "known_archs",
]
