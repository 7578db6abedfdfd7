"""What may change when a run is resumed, checked before anything is read or written.

A resumed run continues the same model on the same data with the same optimizer: its checkpoint
only fits that. Only how long to train, how to watch and log it, and where to run it may change
(`megalith train --resume RUN --set train.epochs=50`); anything else is a new run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from megalith.errors import ConfigError

RESUMABLE_KEYS = (
    "name",
    "train.epochs",
    "train.max_steps",
    "train.early_stop",
    "train.eval_batch_size",
    "train.precision",
    "train.compile",
    "train.device",
    "train.threads",
    "train.log_every",
    "train.log",
    "train.checkpoint_every",
    "train.checkpoint_async",
    "train.on_nan",
    "train.max_skipped_steps",
    "train.activation_checkpointing",
    "train.baselines",
    "train.collective_timeout",
)
"""Dotted config keys (and everything under them) that a resume may change."""


def check_resume_changes(stored: dict[str, Any], requested: dict[str, Any], run: Path) -> None:
    """Refuse a resume whose overrides change anything but RESUMABLE_KEYS.

    Args:
        stored: the run's config.yaml as validated JSON (`Config.model_dump(mode="json")`).
        requested: the same config with the resume's `--set` overrides applied.
        run: the run directory, for the message.
    Raises:
        ConfigError: one line naming every refused key, its old and new value, and what to do.
    """
    old, new = _flatten(stored), _flatten(requested)
    changed = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
    refused = [key for key in changed if not _resumable(key)]
    if not refused:
        return
    shown = ", ".join(f"{key} ({_show(old.get(key))} -> {_show(new.get(key))})" for key in refused)
    raise ConfigError(
        f"cannot resume {run} with changed {shown}: its checkpoint fits only the model, data "
        "and optimizer it was trained with; start a new run instead "
        "(megalith train CONFIG --set KEY=VALUE), or on resume change only "
        "train.epochs, train.max_steps, train.early_stop, logging, checkpointing or device keys"
    )


def check_resume_fits(loop: dict[str, Any], requested: dict[str, Any], run: Path) -> None:
    """Refuse a resume whose config differs from the one its checkpoint was trained with
    (a hand-edited config.yaml, or --set), or that asks for fewer epochs or steps than were
    already trained.

    Args:
        loop: the checkpoint's loop state (`Checkpoint.state["loop"]`); checkpoints written
            before configs were recorded in them are compared with config.yaml only.
        requested: the config the resume would train with, as validated JSON.
        run: the run directory, for the message.
    Raises:
        ConfigError: naming the changed keys, or the epochs / steps already trained.
    """
    recorded = loop.get("config")
    if recorded:
        check_resume_changes(recorded, requested, run)
    position, train = loop["position"], requested["train"]
    if train["epochs"] < position["epoch"]:
        raise ConfigError(
            f"cannot resume {run} with train.epochs {train['epochs']}: it has already trained "
            f"{position['epoch']} epochs; give more epochs to train further"
        )
    if train.get("max_steps") is not None and train["max_steps"] < position["step"]:
        raise ConfigError(
            f"cannot resume {run} with train.max_steps {train['max_steps']}: it has already "
            f"taken {position['step']} steps; give more steps to train further"
        )


def _resumable(key: str) -> bool:
    return any(key == allowed or key.startswith(allowed + ".") for allowed in RESUMABLE_KEYS)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON-like tree under its dotted path: {'model.hidden': [64, 64],
    'inputs.0.name': 'x', ...}."""
    items: Iterable[tuple[str, Any]]
    if isinstance(node, dict) and node:
        items = node.items()
    elif isinstance(node, list) and any(isinstance(item, dict | list) for item in node):
        items = ((str(i), value) for i, value in enumerate(node))
    else:  # a number, a string, or a list of them ([64, 64]) shown whole
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _show(value: Any) -> str:
    return "unset" if value is None else repr(value)
