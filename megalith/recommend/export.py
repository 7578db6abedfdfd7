"""`megalith export` of a recommender run: its user and item vectors as a bundle that
`megalith.runtime.recommender` answers top-k from without PyTorch, checked against the run's
own scores; with faiss installed, an approximate index's recall@100 against the exact top 100."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from megalith.errors import RunError, cannot_write
from megalith.models.recommenders import DotRecommender, Recommender
from megalith.recommend.store import RecommendState
from megalith.runtime.recommender import (
    EMBEDDINGS_FILE,
    IDS_FILE,
    PAIR_SCORER_FILE,
    TASK,
    RecommenderBundle,
    load_recommender_bundle,
)
from megalith.stage_folder import check_output_folder

CHECK_USERS = 256
"""Users whose exported scores are compared with the run's (and whose top 100 measure FAISS)."""


def export_recommender(
    run_path: Path,
    model: Recommender,
    state: RecommendState,
    output: str | Path | None = None,
    *,
    overwrite: bool = False,
    explicit: bool = False,
) -> Path:
    """Write RUN/bundle (or `output`): bundle.json, ids.json, embeddings.safetensors, from the
    run at `run_path` (its model and ids); `explicit`: the scores are standardised ratings,
    and ids.json keeps the rating mean / std so the runtime reports ratings.

    An mf or two_tower run's bundle holds user and item vectors (top-k by one matrix
    product); an ncf run's holds its pair scorer as an ONNX graph (pair_scorer.onnx: user (N,),
    item (N,) -> score (N,)), which the runtime runs on onnxruntime over user x catalogue.

    Raises:
        RunError: `output` holds other files, the exporter fails, or the exported scores
            differ from the run's by more than 1e-4.
    """
    target = Path(output) if output is not None else run_path / "bundle"
    check_output_folder(
        target, overwrite, markers=("bundle.json", EMBEDDINGS_FILE), holds="a bundle", replace="it"
    )
    tmp = target.with_name(target.name + ".tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _fill_bundle(tmp, run_path, model.eval(), state, explicit)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise cannot_write(target, error) from error
    except RunError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    load_recommender_bundle(target)  # it reads back
    return target


def _fill_bundle(
    folder: Path, run_path: Path, model: Recommender, state: RecommendState, explicit: bool
) -> None:
    """Write the bundle's files into `folder`, checked against the model's own scores."""
    from safetensors.numpy import save_file

    arrays: dict[str, np.ndarray] = {
        "popularity": state.popularity(),
        "seen_users": state.users.astype(np.int64),
        "seen_items": state.items.astype(np.int64),
    }
    if isinstance(model, DotRecommender):
        users, items = torch.arange(len(state.user_ids)), torch.arange(state.n_items)
        with torch.no_grad():
            arrays["user_vectors"] = model.user_vectors(users).float().numpy()
            arrays["item_vectors"] = model.item_vectors(items).float().numpy()
            arrays["item_bias"] = model.item_bias(items).float().numpy()
    else:  # ncf: each pair goes through the MLP, so the pair scorer is exported as a graph
        _export_pair_scorer(model, folder / PAIR_SCORER_FILE)
    if "user" in state.sides:  # users answered from their features alone
        arrays["cold_users"] = (~state.has_history("user")).astype(np.int64)
    ids: dict[str, Any] = {"user_ids": state.user_ids, "item_ids": state.item_ids}
    if explicit:
        ids |= {"rating_mean": state.rating_mean, "rating_std": state.rating_std}
    bundle = RecommenderBundle(folder, arrays, ids)
    difference = _largest_difference(model, bundle)
    if difference > 1e-4:
        raise RunError(f"{run_path}: exported scores differ from the run's by {difference:.2e}")
    description: dict[str, Any] = {
        "task": TASK,
        "arch": type(model).__name__,
        "users": len(state.user_ids),
        "items": state.n_items,
        "checked_max_abs_difference": difference,
    }
    recall = faiss_recall_at_100(bundle)
    if recall is not None:
        description["faiss_recall@100"] = recall
    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    save_file(contiguous, str(folder / EMBEDDINGS_FILE))
    (folder / IDS_FILE).write_text(json.dumps(ids), encoding="utf-8")
    (folder / "bundle.json").write_text(json.dumps(description, indent=2), encoding="utf-8")


class _PairScorer(torch.nn.Module):
    """forward(users (N,), items (N,)) -> scores (N,): what the ncf graph computes."""

    def __init__(self, model: Recommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.model.score(users, items)


def _export_pair_scorer(model: Recommender, path: Path) -> None:
    from megalith.export.graph import trace_to_onnx

    pairs = torch.export.Dim("pairs")
    example = (torch.tensor([0, 1, 0]), torch.tensor([1, 0, 0]))
    shapes = {"users": {0: pairs}, "items": {0: pairs}}
    trace_to_onnx(_PairScorer(model).eval(), example, (["user", "item"], ["score"]), shapes, path)


def _largest_difference(model: Recommender, bundle: RecommenderBundle) -> float:
    users = np.arange(min(CHECK_USERS, len(bundle.user_ids)))
    with torch.no_grad():
        expected = model.score_matrix(
            torch.as_tensor(users), torch.arange(len(bundle.item_ids))
        ).numpy()
    return float(np.abs(bundle.scores(users) - expected).max())


def faiss_recall_at_100(bundle: RecommenderBundle) -> float | None:
    """The share of the exact top 100 (of up to 256 users) that the HNSW index also returns;
    None without faiss."""
    try:
        bundle.use_faiss()
    except RunError:
        return None
    users = np.arange(min(CHECK_USERS, len(bundle.user_ids)))
    k = min(100, len(bundle.item_ids))
    approximate = bundle.top_k(users, k)[1]
    bundle.use_exact()
    exact = bundle.top_k(users, k)[1]
    found = sum(
        len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approximate, exact, strict=True)
    )
    return found / (len(users) * k)
