"""`megalith merge RUN OUT`: a fine-tuned pretrained run saved as a Hugging Face model directory
that transformers loads without Megalith (a LoRA adapter merged into the base weights)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from torch import nn

from megalith.errors import RunError, cannot_write
from megalith.models.pretrained import ARCHITECTURE_DIR, PretrainedModel, quiet_transformers
from megalith.models.remote_code import strip_custom_code
from megalith.paths import resolved
from megalith.runs import RunDir


def merge_pretrained_run(
    model: nn.Module,
    run_path: Path,
    labels: Sequence[object] | None,
    folder: Path,
    *,
    overwrite: bool = False,
    console: Console | None = None,
) -> Path:
    """Save the model of the run at `run_path` (model.arch pretrained) into `folder`:
    safetensors weights, config (a classifier's `labels` in id2label / label2id) and tokenizer;
    references to custom code (`auto_map`) are left out, with a notice on `console` (stderr).

    Raises:
        RunError: the run is not a pretrained model, `folder` is the run directory or one of
            its folders, or a non-empty folder (without `overwrite`).
    """
    if not isinstance(model, PretrainedModel):
        raise RunError(
            f"{run_path} was not trained with model.arch pretrained; merge writes the model of "
            "a pretrained run"
        )
    if resolved(folder) == resolved(run_path) or RunDir(run_path).owns(folder):
        raise RunError(
            f"{folder} is the run directory {run_path} or one of its own folders; "
            "merge into a new folder"
        )
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise RunError(f"{folder} is not empty; choose a new folder, or pass --overwrite")
    net = model.merged()
    if model.task == "classify" and labels:
        net.config.id2label = {i: str(label) for i, label in enumerate(labels)}
        net.config.label2id = {str(label): i for i, label in enumerate(labels)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        net.save_pretrained(str(folder))
        saved = quiet_transformers().AutoTokenizer.from_pretrained(run_path / ARCHITECTURE_DIR)
        saved.save_pretrained(str(folder))
        notices = strip_custom_code(folder)
    except OSError as error:
        raise cannot_write(folder, error) from error
    for notice in notices:
        (console or Console(stderr=True)).print(f"[yellow]note[/]: {notice}")
    return folder
