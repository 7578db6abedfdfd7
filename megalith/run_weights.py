"""A run's weights read back: safetensors only, checked against the model before a tensor is
read; and a pretrained run's model rebuilt from its own architecture or its base model."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from megalith.data.preprocess import Preprocessor
from megalith.errors import ConfigError, RunError
from megalith.models import PretrainedConfig
from megalith.models.pretrained import ARCHITECTURE_DIR, PretrainedModel, build_pretrained
from megalith.runs import StoredTensor, check_weights_fit, read_safetensors_header

_T = TypeVar("_T")

# weights saved under an older name -> the name the model has now
_OLD_NAMES = {"fusion.cls": "fusion.cls.token"}  # the transformer combiner's [CLS] token


def _renamed(weights: dict[str, _T]) -> dict[str, _T]:
    return {_OLD_NAMES.get(name, name): value for name, value in weights.items()}


def load_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights from a safetensors file, refusing anything else and any non-finite value.

    The header's names, dtypes and shapes are compared with the model before any tensor is
    read, so a file declaring tensors larger than the model's costs no memory.

    Raises:
        RunError: not a safetensors file, weights that do not fit the model, NaN or Inf.
    """
    header: dict[str, torch.Tensor | StoredTensor] = dict(read_safetensors_header(path))
    check_weights_fit(_renamed(header), model, path)
    try:
        weights = _renamed(load_file(path))
    except (SafetensorError, OSError) as error:
        raise RunError(
            f"{path} is not a readable safetensors file ({error}); "
            "Megalith only loads safetensors and never unpickles"
        ) from None
    check_weights_fit(weights, model, path)
    bad = [
        name for name, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        raise RunError(f"{path} holds NaN or Inf values in {', '.join(bad[:3])}; retrain or resume")
    return weights


def build_pretrained_run(
    config: PretrainedConfig, preprocessor: Preprocessor, run: Path
) -> PretrainedModel:
    """A full fine-tune from its own RUN/pretrained; a LoRA run on its base model (model.path)."""
    inputs, outputs = preprocessor.input_specs, preprocessor.output_specs
    if config.lora is None:
        saved = run / ARCHITECTURE_DIR
        if not (saved / "config.json").is_file():
            raise RunError(f"{saved}/config.json is missing: the run directory is damaged")
        return build_pretrained(config, inputs, outputs, architecture=saved)
    try:
        return build_pretrained(config, inputs, outputs)
    except ConfigError as error:
        raise RunError(
            f"{run} holds a LoRA adapter for the base model in {config.path}, which cannot be "
            f"loaded ({error}); put the base model back there, or load a merged copy "
            "(megalith merge) with transformers"
        ) from None
