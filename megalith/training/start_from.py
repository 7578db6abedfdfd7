"""The model a training run starts from: a fresh one built from the config, or (`start_from`)
an existing run's model and preprocessing, e.g. a pruned network being fine-tuned.

A model whose layers are narrower than its config builds them (a pruned one) is written with
its architecture record (megalith.models.widths), so that the run directory loads on its own,
and a resumed run rebuilds the same narrower layers.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from megalith.config import Config
from megalith.data.preprocess import Preprocessor
from megalith.errors import ConfigError
from megalith.models import build_model
from megalith.models.widths import apply_widths, describe_widths
from megalith.runs import RunDir

if TYPE_CHECKING:
    from megalith.run import Run


def starting_preprocessor(cfg: Config, start_from: Run) -> Preprocessor:
    """A copy of `start_from`'s fitted preprocessing (never refitted: the model's weights
    expect its vocabularies and statistics; a copy, as training may choose thresholds).

    Raises:
        ConfigError: `cfg` has other inputs, outputs or model settings than the run it starts
            from, which its model could not serve.
    """
    for key in ("inputs", "outputs", "model"):
        ours = [getattr(cfg, key)] if key == "model" else getattr(cfg, key)
        theirs = (
            [getattr(start_from.config, key)] if key == "model" else getattr(start_from.config, key)
        )
        if [item.model_dump() for item in ours] != [item.model_dump() for item in theirs]:
            raise ConfigError(
                f"{key}: differs from {start_from.path}/config.yaml, whose model training "
                f"starts from; keep that run's {key} (change train.* settings only)"
            )
    return copy.deepcopy(start_from.preprocessor)


def starting_model(
    cfg: Config, preprocessor: Preprocessor, run_dir: RunDir, start_from: Run | None
) -> nn.Module:
    """A copy of `start_from`'s model (architecture and weights); else the config's model,
    with the widths recorded in `run_dir` when it is a pruned run being resumed."""
    if start_from is not None:
        return copy.deepcopy(start_from.model)
    model = build_model(cfg.model, preprocessor.input_specs, preprocessor.output_specs)
    if run_dir.architecture.is_file():
        apply_widths(model, run_dir.architecture)
    return model


def save_architecture_record(
    cfg: Config, preprocessor: Preprocessor, model: nn.Module, run_dir: RunDir
) -> None:
    """Write RUN/architecture.json when `model` has layers narrower than `cfg` builds them."""
    with torch.device("meta"):  # shapes only, no memory
        reference = build_model(cfg.model, preprocessor.input_specs, preprocessor.output_specs)
    record = describe_widths(model, reference)
    if record["modules"]:
        run_dir.write_json(run_dir.architecture, record)
