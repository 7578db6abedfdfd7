"""Training a recommender: interactions -> split -> model -> sampled-negative loop -> ranking
evaluation -> run directory. `megalith.pipeline.train` hands any config with a `recommend:`
section here; the run directory is the ordinary one plus the files of `megalith.recommend.store`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from megalith.config import Config, config_to_yaml
from megalith.data.preprocess import Preprocessor
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import DataError, cannot_write
from megalith.models import build_model
from megalith.models.recommenders import Recommender, TwoTower
from megalith.paths import remove_path
from megalith.recommend.evaluate import evaluate_recommender, model_scorers
from megalith.recommend.interactions import encode_interactions, read_interactions
from megalith.recommend.losses import NegativeSampler, implicit_loss
from megalith.recommend.metrics import full_ranking, sample_eval_negatives
from megalith.recommend.report import write_recommender_report
from megalith.recommend.resume import (
    EpochCheckpoints,
    check_same_interactions,
    check_same_side_rows,
    keep_epochs,
)
from megalith.recommend.settings import RecommendConfig
from megalith.recommend.side import (
    Side,
    SideTable,
    check_side_settings,
    fit_side_features,
    join_vocabulary,
    read_side_table,
)
from megalith.recommend.split import TEST, VAL, split_interactions
from megalith.recommend.store import RecommendState, load_negatives, save_negatives
from megalith.runs import RunDir, save_weights_atomically
from megalith.runtime.recommender import is_recommender_bundle
from megalith.training.checkpoint import load_latest_checkpoint
from megalith.training.optim import build_optimizer

SCORE_OUTPUT = "score"
DEFAULT_BATCH_SIZE = 1024


def recommender_specs(
    n_users: int, n_items: int, config: RecommendConfig
) -> tuple[list[InputSpec], list[OutputSpec]]:
    """The specs a recommender is built from: `user` and `item` ids, one `score` output."""
    inputs = [InputSpec("user", "category", n_users), InputSpec("item", "category", n_items)]
    kind = "number" if config.feedback == "explicit" else "binary"
    return inputs, [OutputSpec(SCORE_OUTPUT, kind, 0 if kind == "number" else 2)]


def build_recommender(cfg: Config, state: RecommendState) -> Recommender:
    assert cfg.recommend is not None
    inputs, outputs = recommender_specs(len(state.user_ids), state.n_items, cfg.recommend)
    for side, features in state.sides.items():
        inputs += features.specs(side)
    model = build_model(cfg.model, inputs, outputs)
    assert isinstance(model, Recommender)
    for side, features in state.sides.items():
        if features.arrays:  # training; a loaded run's rows come with its weights
            assert isinstance(model, TwoTower)
            arrays = {name: torch.as_tensor(array) for name, array in features.arrays.items()}
            model.set_side_rows(side, arrays, torch.as_tensor(state.has_history(side)))
    return model


def _side_tables(cfg: Config) -> dict[Side, SideTable]:
    """The side tables the config names, read and checked (ids unique and present)."""
    config = cfg.recommend
    assert config is not None
    tables: dict[Side, SideTable] = {}
    sides: list[tuple[Side, str | None, list[Any], str]] = [
        ("user", cfg.data.users, config.user_features, config.user),
        ("item", cfg.data.items, config.item_features, config.item),
    ]
    for side, path, features, column in sides:
        check_side_settings(cfg.model.arch, path, features, side)
        if path is not None:
            tables[side] = read_side_table(path, column, side)
    return tables


def prepare_state(cfg: Config, console: Console | None = None) -> RecommendState:
    """Read, encode and split the interactions of `cfg.data.source` (an absolute path), and
    fit the side tables' features (`data.users`, `data.items`) on the train users / items.

    Raises:
        DataError: a table cannot be read, lacks a named column, a side table repeats an id or
            lacks one of the interactions', or nothing is held out.
        ConfigError: side tables and their feature lists do not match, or the model is not a
            two_tower.
    """
    config = cfg.recommend
    assert config is not None
    frame, origin = read_interactions(cfg.data.source, config)
    data = encode_interactions(frame, config, origin)
    tables = _side_tables(cfg)
    for side, table in tables.items():
        data = join_vocabulary(data, table, side, config.user if side == "user" else config.item)
    split = split_interactions(data, config, cfg.seed)
    mean, std = 0.0, 1.0
    if config.feedback == "explicit" and data.ratings is not None:
        train_ratings = data.ratings[split == 0]
        mean, std = float(train_ratings.mean()), float(train_ratings.std() or 1.0)
    if console is not None:
        console.print(
            f"{origin}: {len(data):,} interactions, {len(data.user_ids):,} users, "
            f"{len(data.item_ids):,} items; split {config.split}: "
            f"{int((split == 0).sum()):,} train / {int((split == VAL).sum()):,} val / "
            f"{int((split == TEST).sum()):,} test"
        )
    state = RecommendState(
        data.user_ids, data.item_ids, data.users, data.items, split, mean, std, data.ratings
    )
    for side, table in tables.items():
        features = config.user_features if side == "user" else config.item_features
        vocabulary = state.user_ids if side == "user" else state.item_ids
        fit_on = np.flatnonzero(state.has_history(side))
        state.sides[side] = fit_side_features(table, features, vocabulary, fit_on, side)
    return state


def fit(
    model: Recommender,
    state: RecommendState,
    cfg: Config,
    log: Any = None,
    checkpoints: EpochCheckpoints | None = None,
) -> dict[str, Any]:
    """Train `model` on the train interactions; returns epochs, steps and seconds.

    `log(record)` receives one dict per epoch (train/loss, and val metrics with recommend.val);
    `checkpoints` saves every epoch and, when resuming, starts from the last one saved.
    """
    config = cfg.recommend
    assert config is not None
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    train = state.split == 0
    users = torch.as_tensor(state.users[train])
    items = torch.as_tensor(state.items[train])
    ratings = torch.as_tensor(
        state.ratings[train] if state.ratings is not None else np.zeros(int(train.sum()))
    )
    counts = torch.as_tensor(state.popularity())
    log_q = torch.log((counts + 1) / (counts + 1).sum()).float()
    sampler = NegativeSampler(counts, config.sampler, generator)
    threads = torch.get_num_threads()
    # a step is a few small kernels: a second thread only adds synchronisation (3 epochs of a
    # small MF took 0.6 s on one thread and 12 s on two, on 2 busy cores)
    torch.set_num_threads(1)
    try:
        return _epochs(model, state, cfg, (users, items, ratings), sampler, log_q, log, checkpoints)
    finally:
        torch.set_num_threads(threads)


def _epochs(
    model: Recommender,
    state: RecommendState,
    cfg: Config,
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    sampler: NegativeSampler,
    log_q: torch.Tensor,
    log: Any,
    checkpoints: EpochCheckpoints | None,
) -> dict[str, Any]:
    config = cfg.recommend
    assert config is not None
    users, items, ratings = train
    generator = sampler.generator
    optimizer = build_optimizer(model, cfg.train.optimizer, fused=False)
    batch = cfg.train.batch_size if isinstance(cfg.train.batch_size, int) else DEFAULT_BATCH_SIZE
    done, steps = checkpoints.restore(model, optimizer, generator) if checkpoints else (0, 0)
    started = time.perf_counter()
    for epoch in range(done, cfg.train.epochs):
        model.train()
        order = torch.randperm(len(users), generator=generator)
        total = 0.0
        for rows in order.split(batch):
            if cfg.train.max_steps is not None and steps >= cfg.train.max_steps:
                break
            if config.feedback == "explicit":
                predicted = model.score(users[rows], items[rows])
                target = (ratings[rows].float() - state.rating_mean) / state.rating_std
                loss = F.mse_loss(predicted, target)
            else:
                loss = implicit_loss(model, users[rows], items[rows], config, sampler, log_q)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            steps += 1
        record: dict[str, Any] = {"epoch": epoch + 1, "step": steps}
        record["train/loss"] = total / max(len(users), 1)
        if config.val and (state.split == VAL).any():
            record |= _val_scores(model, state, config.k)
        if log is not None:
            log(record)
        if checkpoints is not None:
            checkpoints.save(model, optimizer, generator, epoch + 1, steps)
    return {"epochs": cfg.train.epochs, "steps": steps, "seconds": time.perf_counter() - started}


def _val_scores(model: Recommender, state: RecommendState, k: int) -> dict[str, float]:
    users, items = state.held_out(VAL)
    scorers = model_scorers(model, state.n_items)
    full = full_ranking(scorers[0], state.seen_before(VAL), (users, items), state.n_items, k)
    return {f"val/{name}": value for name, value in full.items() if name != "users"}


def held_out_negatives(
    state: RecommendState, config: RecommendConfig, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sampled protocol's candidates for test: each held-out item and `eval_negatives`
    items its user never interacted with, drawn once with `seed`. A user who interacted with
    every item has nothing to rank against and is left out of this protocol.

    Raises:
        DataError: no user with a test item has train interactions (all are cold), or every
            such user interacted with every item.
    """
    users, positives = state.held_out(TEST)
    if not len(users):
        raise DataError(
            f"split {config.split}: no user with a test interaction has one in train (cold "
            "users are left out), so nothing can be evaluated; with split: time, users must "
            "be active before and after the time_cut; split cold_users needs a two_tower with "
            "recommend.user_features"
        )
    pairs = np.unique(state.users * state.n_items + state.items)
    distinct = np.bincount(pairs // state.n_items, minlength=len(state.user_ids))
    room = distinct[users] < state.n_items
    if not room.any():
        raise DataError(
            f"every user with a test item interacted with all {state.n_items} items: the "
            "sampled protocol has no negatives to rank against; add items or users"
        )
    users, positives = users[room], positives[room]
    negatives = sample_eval_negatives(
        users, (state.users, state.items), state.n_items, config.eval_negatives, seed
    )
    return users, positives, negatives


def train_recommender(
    cfg: Config, run_dir: RunDir, overwrite: bool, console: Console, resuming: bool = False
) -> tuple[Recommender, RecommendState]:
    """The whole job; returns the trained model and its state (the caller wraps them in a Run).
    With `resuming`, training continues from the run's last epoch checkpoint (the same data,
    split and negatives), ending where an uninterrupted run would.

    Bad data and bad settings are refused before the run directory is touched.
    """
    config = cfg.recommend
    assert config is not None
    state = prepare_state(cfg, console)
    torch.manual_seed(cfg.seed)
    model = build_recommender(cfg, state)
    checkpoints = EpochCheckpoints(run_dir.checkpoints, cfg, resume=resuming)
    if resuming:
        check_same_interactions(state, run_dir.path)
        negatives = load_negatives(run_dir.path)
        latest = load_latest_checkpoint(run_dir.checkpoints)
        if latest is not None:
            check_same_side_rows(model, latest.model, run_dir.path)
        keep_epochs(run_dir.metrics, latest.state["loop"]["position"]["epoch"] if latest else 0)
        if is_recommender_bundle(run_dir.path / "bundle"):
            remove_path(run_dir.path / "bundle")  # it would serve the old model
    else:
        negatives = held_out_negatives(state, config, cfg.seed)
        _start_run_dir(run_dir, overwrite, state, negatives)
    run_dir.write_text(run_dir.config, config_to_yaml(cfg))
    console.print(
        f"[bold]{cfg.name}[/]: model {cfg.model.arch} with "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, loss {config.training_loss} "
        f"-> {run_dir.path}"
    )
    training = fit(model, state, cfg, _epoch_logger(run_dir.metrics, console), checkpoints)
    save_weights_atomically(model, run_dir.weights)
    scores = score_run(model, state, negatives, cfg)
    scores["training"] = training | {"parameters": sum(p.numel() for p in model.parameters())}
    run_dir.write_json(run_dir.eval, scores)
    write_recommender_report(run_dir, cfg, scores)
    _print_scores(console, scores)
    return model, state


def _start_run_dir(
    run_dir: RunDir,
    overwrite: bool,
    state: RecommendState,
    negatives: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    run_dir.create(overwrite=overwrite)
    # an overwritten run's epochs would be appended to, and its bundle would serve the old model
    run_dir.metrics.unlink(missing_ok=True)
    remove_path(run_dir.checkpoints)
    if is_recommender_bundle(run_dir.path / "bundle"):
        remove_path(run_dir.path / "bundle")
    Preprocessor([], []).save(run_dir.preprocessor)
    state.save(run_dir)
    save_negatives(run_dir, *negatives)


def score_run(
    model: Recommender,
    state: RecommendState,
    negatives: tuple[np.ndarray, np.ndarray, np.ndarray],
    cfg: Config,
) -> dict[str, Any]:
    """eval.json without `training`: the model and the baselines on test; RMSE / MAE of
    the predicted ratings too for explicit feedback."""
    config = cfg.recommend
    assert config is not None
    scores = evaluate_recommender(model, state, negatives, config.k, cfg.seed)
    scores["test"] = {"loss": candidate_loss(model, negatives)} | scores["test"]
    if config.feedback == "explicit" and state.ratings is not None:
        scores["test"] |= rating_errors(model, state)
    return scores


def candidate_loss(
    model: Recommender, negatives: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> float:
    """Binary cross-entropy of the held-out items (label 1) and their saved negatives
    (label 0), averaged over all candidates: the test counterpart of the training loss."""
    users, positives, sampled = (torch.as_tensor(a, dtype=torch.long) for a in negatives)
    candidates = torch.cat([positives[:, None], sampled], dim=1)
    labels = torch.zeros(candidates.shape)
    labels[:, 0] = 1.0
    with torch.no_grad():
        scores = model.eval().score_matrix_pairs(users, candidates).float()
    return float(F.binary_cross_entropy_with_logits(scores, labels))


def rating_errors(model: Recommender, state: RecommendState) -> dict[str, float]:
    test = state.split == TEST
    with torch.no_grad():
        predicted = model.eval().score(
            torch.as_tensor(state.users[test]), torch.as_tensor(state.items[test])
        )
    predicted = predicted.double() * state.rating_std + state.rating_mean
    assert state.ratings is not None
    error = predicted - torch.as_tensor(state.ratings[test]).double()
    return {"rmse": float(error.pow(2).mean().sqrt()), "mae": float(error.abs().mean())}


def _epoch_logger(path: Path, console: Console) -> Any:
    def log(record: dict[str, Any]) -> None:
        try:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as error:
            raise cannot_write(path, error) from error
        shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if "/" in k)
        console.print(f"epoch {record['epoch']}: {shown}")

    return log


def _print_scores(console: Console, scores: dict[str, Any]) -> None:
    from rich.table import Table as RichTable

    references = scores["recommender_baselines"]
    table = RichTable(title="results (test)")
    for column in ("metric", "model", *references):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric, value in scores["test"].items():
        row = [
            f"{references[name][metric]:.4f}" if metric in references[name] else "-"
            for name in references
        ]
        table.add_row(metric, f"{value:.4f}", *row)
    console.print(table)
