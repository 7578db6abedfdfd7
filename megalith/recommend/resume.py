"""Exact resume of a recommender run: a checkpoint after every epoch (weights, optimizer, the
sampling generator and the random states), and training continued from the last one so that
the result equals an uninterrupted run's.

The checkpoints are the ordinary ones (megalith.training.checkpoint: safetensors and JSON,
written atomically, the last two kept) under RUN/checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from megalith.config import Config
from megalith.errors import RunError
from megalith.recommend.store import STATE_FILE, RecommendState
from megalith.training.checkpoint import (
    load_latest_checkpoint,
    optimizer_state_dict,
    restore_rng,
    save_checkpoint,
)
from megalith.training.resume import check_resume_fits


@dataclass
class EpochCheckpoints:
    """Where a recommender's epochs are checkpointed, and whether to start from the last one."""

    root: Path
    config: Config
    resume: bool = False

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
    ) -> tuple[int, int]:
        """(epochs done, steps done) of the last checkpoint, its state loaded into `model`,
        `optimizer`, `generator` and the global random generators; (0, 0) when not resuming
        or when the run stopped before its first epoch ended.

        Raises:
            ConfigError: the resume changes more than epochs / steps, or asks for fewer.
        """
        if not self.resume:
            return 0, 0
        checkpoint = load_latest_checkpoint(self.root)
        if checkpoint is None:
            return 0, 0
        loop = checkpoint.state["loop"]
        check_resume_fits(loop, self.config.model_dump(mode="json"), self.root.parent)
        model.load_state_dict(checkpoint.model)
        optimizer.load_state_dict(optimizer_state_dict(checkpoint))
        restore_rng(checkpoint)
        generator.set_state(torch.tensor(loop["generator"], dtype=torch.uint8))
        return int(loop["position"]["epoch"]), int(loop["position"]["step"])

    def save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        epoch: int,
        steps: int,
    ) -> None:
        """Checkpoint the state after `epoch` epochs and `steps` steps."""
        loop = {
            "config": self.config.model_dump(mode="json"),
            "position": {"epoch": epoch, "step": steps},
            "generator": generator.get_state().tolist(),
        }
        # named by epoch: steps stay put once train.max_steps is reached
        save_checkpoint(self.root, epoch, model.state_dict(), optimizer.state_dict(), loop)


def check_same_interactions(state: RecommendState, run_path: Path) -> None:
    """A resumed run must read the interactions (ids and split) it was trained on.

    Raises:
        RunError: the data changed since; naming the run.
    """
    saved = RecommendState.load(run_path)
    same = (
        saved.user_ids == state.user_ids
        and saved.item_ids == state.item_ids
        and all(
            np.array_equal(a, b)
            for a, b in (
                (saved.users, state.users),
                (saved.items, state.items),
                (saved.split, state.split),
            )
        )
    )
    if same:  # the ratings too (runs saved before their fingerprint was kept: not checked)
        recorded = _saved_ratings_digest(run_path)
        same = recorded is None or recorded == state.ratings_digest()
    if not same:
        raise RunError(
            f"cannot resume {run_path}: its interactions (ids, ratings or side tables) changed "
            "since it was trained, so its checkpoint and saved negatives no longer fit; train a "
            "new run"
        )


def _saved_ratings_digest(run_path: Path) -> str | None:
    try:
        saved = json.loads((run_path / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # RecommendState.load has read it already
    digest = saved.get("ratings_sha256") if isinstance(saved, dict) else None
    return digest if isinstance(digest, str) else None


def check_same_side_rows(
    model: torch.nn.Module, saved: dict[str, torch.Tensor], run_path: Path
) -> None:
    """A resumed run must read the side tables' rows it was trained on: the model's buffers
    (each user's / item's encoded features, the rows of users / items with a history) are built
    from the data now, and must equal the checkpoint's (which would silently replace them).

    Raises:
        RunError: a side table's values changed since; naming the run and the buffer.
    """
    kept = model.state_dict()  # persistent buffers only: the others are rebuilt, not saved
    for name, buffer in model.named_buffers():
        if name not in kept:
            continue
        old = saved.get(name)
        if old is None or old.shape != buffer.shape or not torch.equal(old, buffer):
            raise RunError(
                f"cannot resume {run_path}: its side tables changed since it was trained "
                f"(the encoded rows '{name}' differ), so its checkpoint no longer fits them; "
                "restore the tables or train a new run"
            )


def keep_epochs(metrics: Path, epochs: int) -> None:
    """Drop metrics.jsonl records of epochs after `epochs` (they will be trained again).

    Raises:
        RunError: the file cannot be rewritten.
    """
    if not metrics.is_file():
        return
    try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _epoch(line) <= epochs]
        metrics.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    except OSError as error:
        raise RunError(f"cannot rewrite {metrics}: {error}") from error


def _epoch(line: str) -> int:
    try:
        record: Any = json.loads(line)
        return int(record.get("epoch", 0))
    except (ValueError, AttributeError, TypeError):
        return 0
