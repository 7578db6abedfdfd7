"""What a recommender run keeps besides its weights: ids, interactions and fixed negatives.

  recommend.json                 user and item ids (index order), rating mean / std
  interactions.safetensors       users, items, split (0 train, 1 val, 2 test) as int64
  eval_negatives.safetensors     users, positives (P,) and negatives (P, C): the sampled
                                 protocol's candidates, drawn once with the run's seed
  user_features.json             with side tables: the fitted encoders of the user / item
  item_features.json             features (their encoded rows are in model.safetensors)
All JSON and safetensors: nothing in a run directory is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from megalith.errors import RunError
from megalith.recommend.side import FEATURES_FILE, Side, SideFeatures, load_side_features
from megalith.recommend.split import TEST, TRAIN, VAL
from megalith.runs import RunDir, save_tensors_atomically

STATE_FILE = "recommend.json"
INTERACTIONS_FILE = "interactions.safetensors"
NEGATIVES_FILE = "eval_negatives.safetensors"


@dataclass
class RecommendState:
    """The ids and interactions of a recommender run, indices as in its model."""

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray
    split: np.ndarray
    rating_mean: float = 0.0
    rating_std: float = 1.0
    ratings: np.ndarray | None = None
    """float32 (N,) ratings while training explicit feedback; not saved."""
    sides: dict[Side, SideFeatures] = field(default_factory=dict)
    """The side features of users / items (user_features.json, item_features.json)."""

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def pairs(self, *splits: int) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) of the interactions in `splits`."""
        keep = np.isin(self.split, splits)
        return self.users[keep], self.items[keep]

    def popularity(self) -> np.ndarray:
        """float64 (n_items,): train interactions per item."""
        items = self.pairs(TRAIN)[1]
        return np.bincount(items, minlength=self.n_items).astype(np.float64)

    def has_history(self, side: Side) -> np.ndarray:
        """bool (users or items,): has train interactions."""
        index = self.pairs(TRAIN)[0 if side == "user" else 1]
        count = len(self.user_ids) if side == "user" else self.n_items
        return np.bincount(index, minlength=count) > 0

    def held_out(self, split: int) -> tuple[np.ndarray, np.ndarray]:
        """The `split` interactions of users who also have train ones; cold users (none in
        train) are left out unless the model reads user features, which answer them."""
        users, items = self.pairs(split)
        if "user" in self.sides:
            return users, items
        warm = self.has_history("user")[users]
        return users[warm], items[warm]

    def seen_before(self, split: int) -> tuple[np.ndarray, np.ndarray]:
        """What is excluded when ranking `split`: train, and val when scoring test."""
        return self.pairs(TRAIN, VAL) if split == TEST else self.pairs(TRAIN)

    def ratings_digest(self) -> str | None:
        """A fingerprint of every interaction's rating (a resume checks it: explicit feedback
        regresses them); None without ratings."""
        if self.ratings is None:
            return None
        data = np.ascontiguousarray(self.ratings, dtype=np.float32).tobytes()
        return hashlib.sha256(data).hexdigest()

    def save(self, run_dir: RunDir) -> None:
        run_dir.write_json(
            run_dir.path / STATE_FILE,
            {
                "user_ids": self.user_ids,
                "item_ids": self.item_ids,
                "rating_mean": self.rating_mean,
                "rating_std": self.rating_std,
                "ratings_sha256": self.ratings_digest(),
            },
        )
        for side, features in self.sides.items():
            features.preprocessor.save(run_dir.path / FEATURES_FILE[side])
        tensors = {"users": self.users, "items": self.items, "split": self.split}
        save_tensors_atomically(
            {k: torch.as_tensor(v, dtype=torch.long) for k, v in tensors.items()},
            run_dir.path / INTERACTIONS_FILE,
        )

    @classmethod
    def load(cls, path: Path) -> RecommendState:
        """Raises RunError naming the file that is missing or damaged."""
        state_path = path / STATE_FILE
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            ids = [state["user_ids"], state["item_ids"]]
            mean, std = float(state["rating_mean"]), float(state["rating_std"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RunError(f"{state_path}: cannot read the recommender's ids ({error})") from None
        users, items, split = read_tensors(path / INTERACTIONS_FILE, ("users", "items", "split"))
        return cls(
            ids[0],
            ids[1],
            users,
            items,
            split,
            rating_mean=mean,
            rating_std=std,
            sides=load_side_features(path),
        )


def read_tensors(path: Path, names: tuple[str, ...]) -> list[np.ndarray]:
    """The named int64 tensors of a safetensors file, as NumPy arrays."""
    try:
        stored = load_file(str(path))
        return [stored[name].numpy() for name in names]
    except (OSError, SafetensorError, KeyError) as error:
        raise RunError(f"{path}: missing or damaged ({error}); train the run again") from None


def save_negatives(
    run_dir: RunDir, users: np.ndarray, positives: np.ndarray, negatives: np.ndarray
) -> None:
    tensors = {"users": users, "positives": positives, "negatives": negatives}
    save_tensors_atomically(
        {k: torch.as_tensor(v, dtype=torch.long).contiguous() for k, v in tensors.items()},
        run_dir.path / NEGATIVES_FILE,
    )


def load_negatives(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users, positives, negatives = read_tensors(
        path / NEGATIVES_FILE, ("users", "positives", "negatives")
    )
    return users, positives, negatives
