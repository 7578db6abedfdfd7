"""Top-k from an exported recommender bundle, without PyTorch: an exact matrix product of user
and item vectors (numpy), or an approximate FAISS index (`pip install faiss-cpu`).

    from megalith.runtime.recommender import load_recommender_bundle
    bundle = load_recommender_bundle("runs/movies/bundle")
    bundle.recommend(["1", "2"], k=10)        # user, rank, item, score, known_user

The bundle (written by `megalith export` of a recommender run) holds bundle.json, ids.json and
embeddings.safetensors: for mf and two_tower user_vectors (U, D), item_vectors (I, D), item_bias
(I,) (an ncf bundle has pair_scorer.onnx instead, run on onnxruntime),
popularity (I,), the known interactions seen_users / seen_items (N,) and, with user features,
cold_users (U,) (1: answered from features alone); ids.json the user and
item ids and, for explicit feedback, rating_mean / rating_std (scores come out as ratings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.errors import DataError, RunError

EMBEDDINGS_FILE = "embeddings.safetensors"
IDS_FILE = "ids.json"
PAIR_SCORER_FILE = "pair_scorer.onnx"
"""ncf: the graph scoring (user, item) pairs, run with onnxruntime."""
TASK = "recommend"
RECOMMEND_COLUMNS = ["user", "rank", "item", "score", "known_user", "cold_start"]
"""The table `recommend` answers, from a run or a bundle."""


def user_names(users: Sequence[str | int] | str | int) -> list[str]:
    """The ids of `users` as text; one id alone (`"12"` or `12`) is one user, not its
    characters.

    Raises:
        DataError: no user id is given.
    """
    names = [str(users)] if isinstance(users, str | int) else [str(user) for user in users]
    if not names:
        raise DataError("recommend: give at least one user id")
    return names


class RecommenderBundle:
    """Scores every item for a user as `user_vector . item_vectors + item_bias`."""

    def __init__(self, path: Path, arrays: dict[str, np.ndarray], ids: dict[str, Any]):
        self.path = path
        self.user_ids, self.item_ids = ids["user_ids"], ids["item_ids"]
        self._pairs: Any = None  # ncf: an onnxruntime session scoring (user, item) pairs
        if "user_vectors" in arrays:
            self.user_vectors = arrays["user_vectors"].astype(np.float32)  # (U, D)
            self.item_vectors = arrays["item_vectors"].astype(np.float32)  # (I, D)
            self.item_bias = arrays["item_bias"].astype(np.float32)  # (I,)
        else:
            self._pairs = _pair_session(path / PAIR_SCORER_FILE)
        self.popularity = arrays["popularity"].astype(np.float64)  # (I,)
        # (U,) 1: a user without train interactions whose vector comes from their features
        self.cold_users = arrays.get("cold_users", np.zeros(len(self.user_ids), np.int64))
        # explicit feedback: scores are standardised ratings, reported as rating * std + mean
        self.rating_std = float(ids.get("rating_std", 1.0))
        self.rating_mean = float(ids.get("rating_mean", 0.0))
        self._user_index = {user: i for i, user in enumerate(self.user_ids)}
        order = np.argsort(arrays["seen_users"], kind="stable")
        self._seen_items = arrays["seen_items"][order]
        self._seen_starts = np.searchsorted(
            arrays["seen_users"][order], np.arange(len(self.user_ids) + 1)
        )
        self._index: Any = None

    @property
    def backend(self) -> str:
        """What computes the scores: numpy (vectors) or onnxruntime (an ncf pair scorer)."""
        return "numpy" if self._pairs is None else "onnxruntime"

    def scores(self, users: np.ndarray) -> np.ndarray:
        """float32 (B, I): every item's score for user indices (B,): one matrix product, or
        (ncf) the pair scorer over every (user, item), about a million pairs at a time."""
        if self._pairs is None:
            return self.user_vectors[users] @ self.item_vectors.T + self.item_bias
        items = np.arange(len(self.item_ids), dtype=np.int64)
        rows = max(1, (1 << 20) // max(len(items), 1))
        parts = [np.zeros((0, len(items)), np.float32)]
        for start in range(0, len(users), rows):
            chunk = np.asarray(users[start : start + rows], dtype=np.int64)
            feed = {"user": np.repeat(chunk, len(items)), "item": np.tile(items, len(chunk))}
            (score,) = self._pairs.run(None, feed)
            parts.append(score.astype(np.float32).reshape(len(chunk), len(items)))
        return np.concatenate(parts)

    def seen(self, user: int) -> np.ndarray:
        """Item indices the user interacted with."""
        return self._seen_items[self._seen_starts[user] : self._seen_starts[user + 1]]

    def use_faiss(self, neighbours: int = 32) -> None:
        """Answer from an HNSW index (inner product over [vector, bias] against [vector, 1])
        instead of the exact product. Raises RunError when faiss is not installed."""
        try:
            import faiss
        except ImportError:
            raise RunError("the approximate index needs faiss: pip install faiss-cpu") from None
        if self._pairs is not None:
            raise RunError(f"{self.path}: an ncf bundle has no item vectors to index")
        items = np.hstack([self.item_vectors, self.item_bias[:, None]]).astype(np.float32)
        index = faiss.IndexHNSWFlat(items.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
        index.add(np.ascontiguousarray(items))
        self._index = index

    def use_exact(self) -> None:
        """Back to the exact matrix product (the default)."""
        self._index = None

    def top_k(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, items), each (B, k), best first; exact unless `use_faiss` was called."""
        if self._index is not None:
            queries = np.hstack([self.user_vectors[users], np.ones((len(users), 1), np.float32)])
            found_scores, found = self._index.search(np.ascontiguousarray(queries), k)
            return found_scores, found
        scores = self.scores(users)
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        items = np.take_along_axis(part, order, axis=1)
        return np.take_along_axis(scores, items, axis=1), items

    def recommend(
        self, users: Sequence[str | int] | str | int, k: int = 10, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """The same table as `RecommenderRun.recommend`: user, rank, item, score, known_user,
        cold_start (unknown users get the most popular items; new users with features need the
        run itself, whose user tower reads them).

        Raises:
            DataError: no users, or k < 1.
        """
        names = user_names(users)
        if k < 1:
            raise DataError(f"recommend: k must be >= 1 (got {k})")
        k = min(k, len(self.item_ids))
        rows: list[dict[str, Any]] = []
        known = [self._user_index.get(name) for name in names]
        warm = np.array([i for i in known if i is not None], dtype=np.int64)
        extra = max((len(self.seen(int(u))) for u in warm), default=0) if exclude_seen else 0
        want = min(k + extra, len(self.item_ids))
        found_scores, found = self.top_k(warm, want) if len(warm) else (None, None)
        popular = np.argsort(-self.popularity, kind="stable")[:k]
        row = 0
        for name, index in zip(names, known, strict=True):
            if index is None:
                picks = [(int(i), float(self.popularity[i])) for i in popular]
            else:
                assert found is not None and found_scores is not None
                hidden = set(self.seen(index).tolist()) if exclude_seen else set()
                pairs = zip(found[row], found_scores[row], strict=True)
                picks = [
                    (int(i), float(s) * self.rating_std + self.rating_mean)
                    for i, s in pairs
                    if i >= 0 and i not in hidden
                ][:k]
                row += 1
            for rank, (item, score) in enumerate(picks):
                rows.append(
                    {
                        "user": name,
                        "rank": rank + 1,
                        "item": self.item_ids[item],
                        "score": score,
                        "known_user": index is not None,
                        "cold_start": index is not None and bool(self.cold_users[index]),
                    }
                )
        return pd.DataFrame(rows, columns=RECOMMEND_COLUMNS)


def _pair_session(path: Path) -> Any:
    """An onnxruntime session of an ncf bundle's pair scorer.

    Raises:
        RunError: onnxruntime is not installed, or the graph is missing or damaged.
    """
    try:
        import onnxruntime
    except ImportError:
        raise RunError("an ncf bundle runs on onnxruntime: pip install onnxruntime") from None
    if not path.is_file():
        raise RunError(f"{path}: the ncf bundle's pair scorer is missing; export the run again")
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except (ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.Fail) as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise RunError(f"{path}: onnxruntime cannot load it ({reason}); export again") from None


def is_recommender_bundle(path: str | Path) -> bool:
    """A folder `megalith export` wrote from a recommender run."""
    description = Path(path) / "bundle.json"
    try:
        return json.loads(description.read_text(encoding="utf-8")).get("task") == TASK
    except (OSError, ValueError, AttributeError):
        return False


def load_recommender_bundle(path: str | Path) -> RecommenderBundle:
    """Raises RunError naming the file that is missing or damaged."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(path)
    if not is_recommender_bundle(folder):
        raise RunError(f"{folder} is not a recommender bundle (bundle.json with task recommend)")
    try:
        arrays = load_file(str(folder / EMBEDDINGS_FILE))
        ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
        return RecommenderBundle(folder, arrays, ids)
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        raise RunError(f"{folder}: the bundle is incomplete or damaged ({error})") from None
