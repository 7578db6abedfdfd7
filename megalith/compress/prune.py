"""Structured pruning of a trained run: cut whole channels / neurons, fine-tune, and write a new,
complete run directory that loads, predicts, exports and serves without the original.

    pruned = prune_run(mg.load("runs/digits-cnn"), Path("runs/digits-cnn-pruned"), amount=0.5)

The pruning itself is Torch-Pruning's (megalith.compress.channels). The new run directory is an
ordinary one (config.yaml, preprocessor.json, model.safetensors, metrics.jsonl, eval.json,
report.html) plus architecture.json, the narrower layers' widths that `Run.load` applies
(megalith.models.widths), and pruning.json, where it came from and what it gained.
"""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from megalith.compress.channels import (
    PRUNABLE_ARCHS,
    count_macs,
    count_parameters,
    import_torch_pruning,
    prunable_layers,
    prune_channels,
)
from megalith.compress.macs_target import ALIGN, prune_to_macs
from megalith.config import Config
from megalith.errors import ConfigError, RunError
from megalith.models.blocks import FeatureModel
from megalith.paths import resolved
from megalith.run import Run
from megalith.run_data import transform_split
from megalith.runs import RunDir
from megalith.stage_folder import check_output_folder

PRUNING_FILE = "pruning.json"
PRUNE_BY = ("macs", "channels")
"""What `amount` is a fraction of: the MACs per row (default) or each layer's channels."""
FINETUNE_EPOCHS_FRACTION = 0.25
"""Fine-tuning runs this fraction of the source run's train.epochs by default (at least 1)."""
FINETUNE_LR_SCALE = 0.1
"""Fine-tuning's learning rate, as a fraction of the source run's: the pruned network starts
close to a good solution, and the full rate would first throw much of it away (Li et al. 2017
retrain pruned networks at a tenth of the original rate; so do Torch-Pruning's benchmarks)."""
_EXAMPLE_ROWS = 8
"""Rows of the train split used to trace the network and count its MACs."""


def prune_run(
    run: Run,
    output_dir: Path,
    *,
    amount: float = 0.5,
    finetune_epochs: int | None = None,
    console: Console | None = None,
    by: str = "macs",
) -> Run:
    """Remove `amount` of the MACs (by="macs", the default) or of each prunable layer's
    channels (by="channels"), fine-tune, write a complete run directory at output_dir, return
    it loaded.

    Prunable are the hidden widths: image backbones' convolution channels, the combiner's dense
    neurons, a text Transformer encoder's feed-forward width (see megalith.compress.channels);
    attention heads, embeddings and output heads keep their sizes. by="macs": every prunable
    layer keeps the same fraction of its channels, rounded to a multiple of 16 (ONNX Runtime's
    blocked convolutions need it to be fast), the fraction chosen so that at least `amount`
    of the MACs per row go (megalith.compress.macs_target). by="channels": each layer loses
    `amount` of its channels (about (1 - a)^2 of the MACs stay where two pruned layers meet).

    Args:
        run: a trained run of model.arch mlp, cnn or resnet.
        output_dir: the new run directory; must not exist yet or be empty.
        amount: the fraction of the MACs per row (or of each layer's channels) removed,
            0 < amount < 1.
        finetune_epochs: epochs of fine-tuning (default: a quarter of the run's train.epochs,
            at least 1), at a tenth of its learning rate, with its own preprocessing.
        console: where progress goes (stderr by default).
        by: "macs" or "channels": what `amount` is a fraction of.
    Returns:
        The pruned, fine-tuned run, loaded from `output_dir`.
    Raises:
        ConfigError: `amount`, `by` or `finetune_epochs` is out of range, or the MACs
            target cannot be reached (before any training or writing).
        RunError: the family cannot be pruned, there is nothing to prune, or `output_dir` is
            the run itself or not empty (before any work); a write fails. When anything fails
            `output_dir` is left as it was (absent, or empty).
        MegalithError: Torch-Pruning is not installed (names the `compress` extra).
    """
    target = Path(output_dir)
    epochs = check_prune_request(run, target, amount, finetune_epochs, by)
    console = console or Console(stderr=True)
    table, splits = run.data_splits()
    rows = splits["train"].head(_EXAMPLE_ROWS)
    example = transform_split(run.config, run.preprocessor, rows, table, "train").inputs
    model = copy.deepcopy(run.model)
    assert isinstance(model, FeatureModel)  # checked by check_prune_request
    before = _measure(model, example)
    scheme = _prune(model, example, amount, by)
    after = _measure(model, example)
    console.print(
        f"pruned {amount:.0%} of the {by} of {run.path}: {before['parameters']:,} -> "
        f"{after['parameters']:,} parameters, {before['macs']:,} -> {after['macs']:,} MACs per "
        f"row; fine-tuning {epochs} epoch(s)"
    )
    pruned = Run(run.path, run.config, run.preprocessor, model)
    config = finetune_config(run.config, epochs)
    from megalith.pipeline import train  # the ordinary training path, started from `pruned`

    existed = target.is_dir()  # and empty: check_prune_request refused anything else
    try:  # trained in place, so its report and messages name it; removed if anything fails
        tuned = train(config, output_dir=target, console=console, start_from=pruned)
        record = _record(run, tuned, amount, epochs, config, before, after)
        record["scheme"] = scheme
        RunDir(target).write_json(target / PRUNING_FILE, record)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        if existed:
            target.mkdir()
        raise
    return Run.load(target)


def check_prune_request(
    run: Run, target: Path, amount: float, finetune_epochs: int | None, by: str = "macs"
) -> int:
    """Everything prune_run can check before it starts; returns the fine-tuning epochs."""
    if by not in PRUNE_BY:
        raise ConfigError(f"prune by {by!r}: give one of {', '.join(PRUNE_BY)}")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < 1:
        raise ConfigError(
            f"prune amount {amount!r}: give the fraction of the MACs (prune_by: channels: of "
            "each layer's channels) to remove, between 0 and 1 exclusive (0.5 halves the MACs)"
        )
    if finetune_epochs is not None and (
        isinstance(finetune_epochs, bool)
        or not isinstance(finetune_epochs, int)
        or finetune_epochs < 1
    ):
        raise ConfigError(f"finetune epochs {finetune_epochs!r}: give a whole number >= 1")
    arch = run.config.model.arch
    if arch not in PRUNABLE_ARCHS or not isinstance(run.model, FeatureModel):
        raise RunError(
            f"{run.path}: structured pruning handles model.arch {', '.join(PRUNABLE_ARCHS)}; "
            f"this run is model.arch {arch} (distil it into a smaller model instead)"
        )
    if not prunable_layers(run.model):
        raise RunError(
            f"{run.path}: the model has no hidden layer to prune (no convolution, no "
            "model.hidden layer, no Transformer encoder); nothing would get smaller"
        )
    if resolved(target) == resolved(run.path) or RunDir(run.path).owns(target):
        raise RunError(f"{target} is the source run {run.path} or one of its folders")
    check_output_folder(target, False, markers=(PRUNING_FILE,), holds="a pruned run", replace="it")
    import_torch_pruning()
    epochs = math.ceil(run.config.train.epochs * FINETUNE_EPOCHS_FRACTION)
    return finetune_epochs if finetune_epochs is not None else max(1, epochs)


def finetune_config(config: Config, epochs: int) -> Config:
    """The source run's config with `epochs` of training at FINETUNE_LR_SCALE of its rate."""
    train = config.train
    optimizer = train.optimizer.model_copy(update={"lr": train.optimizer.lr * FINETUNE_LR_SCALE})
    tuned = train.model_copy(update={"epochs": epochs, "optimizer": optimizer})
    return Config.model_validate({**config.model_dump(), "train": tuned.model_dump()})


def _prune(
    model: FeatureModel, example: dict[str, torch.Tensor], amount: float, by: str
) -> dict[str, Any]:
    """Prune in place by the chosen scheme; returns its record for pruning.json."""
    if by == "channels":
        prune_channels(model, example, amount)
        return {"by": "channels", "amount": amount, "allocation": "uniform per layer"}
    plan = prune_to_macs(model, example, amount)
    return {
        "by": "macs",
        "amount": amount,
        "allocation": "one keep fraction for every layer, widths rounded to the alignment",
        "keep": round(plan.keep, 4),
        "align": ALIGN,
        "macs_ratio": round(plan.macs_after / plan.macs_before, 4),
        "widths": {name: list(pair) for name, pair in plan.widths.items()},
    }


def _measure(model: torch.nn.Module, example: dict[str, torch.Tensor]) -> dict[str, int]:
    return {"parameters": count_parameters(model), "macs": count_macs(model, example)}


def _record(
    source: Run,
    tuned: Run,
    amount: float,
    epochs: int,
    config: Config,
    before: dict[str, int],
    after: dict[str, int],
) -> dict[str, Any]:
    """pruning.json: the source run, the settings, and the figures before and after."""
    return {
        "source": str(resolved(source.path)),
        "method": "Torch-Pruning MetaPruner, L2 group magnitude importance",
        "amount": amount,
        "finetune": {"epochs": epochs, "lr": config.train.optimizer.lr},
        "parameters": {"before": before["parameters"], "after": after["parameters"]},
        "macs_per_row": {"before": before["macs"], "after": after["macs"]},
        "weights_bytes": {
            "before": RunDir(source.path).weights.stat().st_size,
            "after": RunDir(tuned.path).weights.stat().st_size,
        },
        "test": {"before": source.metrics.get("test", {}), "after": tuned.metrics.get("test", {})},
    }
