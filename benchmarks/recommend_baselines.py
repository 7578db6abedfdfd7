"""Megalith's recommender (the config `megalith init` writes) against `implicit`'s ALS and BPR
and an item-kNN, on the same leave-last-out split and the same 99 sampled negatives.

Datasets, all built offline on this machine:
  - planted: synthetic interactions with planted user / item factors and Zipf popularity,
    sized like the target public dataset (~100k interactions, 1,000 users, 1,700 items);
    the planted scores themselves are printed as the ceiling ("oracle");
  - dpkg: Debian packages as users and the packages they depend on as items
    (/var/lib/dpkg/status), packages with >= 5 dependencies;
  - python_imports: Python modules (site-packages and the standard library) as users and the
    modules they import as items, the line of the import as its time;
  - speed: the seconds of a full-ranking evaluation of 1,000 users x 2,000 items;
  - FILE: any interactions table `megalith init` recognises (e.g. a public ratings file).
Baselines get a small grid each and keep the best point *on the test split itself*, which can
only flatter them; Megalith's config is fixed as `init` writes it. Train time is wall-clock
on this machine (say which, and how busy); the ratio to ALS is printed from the same run.

    python benchmarks/recommend_baselines.py [speed|planted|dpkg|python_imports|FILE ...]
        [--epochs N] [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit asks for it; before numpy loads

import argparse
import json
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sparse
import torch

from megalith.config import validate_config
from megalith.recommend.evaluate import model_scorers, popularity_scorers, rank_scores
from megalith.recommend.init import recommender_config
from megalith.recommend.interactions import read_interactions
from megalith.recommend.settings import RecommendConfig
from megalith.recommend.split import TRAIN
from megalith.recommend.store import RecommendState
from megalith.recommend.synthetic import oracle_scores, planted_interactions
from megalith.recommend.train import build_recommender, fit, held_out_negatives, prepare_state

Scorers = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[..., torch.Tensor]]


def matrix_scorers(scores: np.ndarray) -> Scorers:
    """Scorers reading a dense (users, items) score matrix."""
    table = torch.as_tensor(scores, dtype=torch.float64)
    return (lambda users: table[users], lambda users, items: table[users[:, None], items])


def train_matrix(state: RecommendState) -> sparse.csr_matrix:
    users, items = state.pairs(TRAIN)
    shape = (len(state.user_ids), state.n_items)
    values = np.ones(len(users), np.float32)
    return sparse.csr_matrix((values, (users, items)), shape=shape).tocsr()


def fit_als(matrix: sparse.csr_matrix, factors: int, regularization: float, alpha: float) -> Any:
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors,
        regularization=regularization,
        alpha=alpha,
        iterations=15,
        random_state=0,
        num_threads=1,
    )
    model.fit(matrix, show_progress=False)
    return model.user_factors @ model.item_factors.T


def fit_bpr(matrix: sparse.csr_matrix, factors: int, lr: float, regularization: float) -> Any:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(
        factors=factors,
        learning_rate=lr,
        regularization=regularization,
        iterations=100,
        random_state=0,
        num_threads=1,
    )
    model.fit(matrix, show_progress=False)
    return model.user_factors @ model.item_factors.T


def fit_item_knn(matrix: sparse.csr_matrix, neighbours: int) -> Any:
    from implicit.nearest_neighbours import CosineRecommender

    model = CosineRecommender(K=neighbours, num_threads=1)
    model.fit(matrix, show_progress=False)
    return np.asarray((matrix @ model.similarity).todense())


GRIDS: dict[str, tuple[Callable[..., Any], list[dict[str, Any]]]] = {
    "als": (
        fit_als,
        [
            {"factors": f, "regularization": r, "alpha": a}
            for f in (32, 64, 128)
            for r in (0.01, 0.1, 1.0)
            for a in (1.0, 10.0)
        ],
    ),
    "bpr": (
        fit_bpr,
        [
            {"factors": f, "lr": lr, "regularization": 0.01}
            for f in (32, 64, 128)
            for lr in (0.01, 0.05)
        ],
    ),
    "item_knn": (fit_item_knn, [{"neighbours": k} for k in (10, 20, 50, 100, 200, 500)]),
}


def best_of_grid(name: str, state: RecommendState, negatives: Any, quick: bool) -> dict[str, Any]:
    """The grid point with the best sampled HR@10 on test, with its scores and fit time."""
    fit_fn, grid = GRIDS[name]
    matrix = train_matrix(state)
    best: dict[str, Any] | None = None
    for params in grid[:1] if quick else grid:
        started = time.perf_counter()
        scores = fit_fn(matrix, **params)
        seconds = time.perf_counter() - started
        metrics = rank_scores(matrix_scorers(scores), state, negatives, k=10)
        if best is None or metrics["sampled_hr@10"] > best["sampled_hr@10"]:
            best = metrics | {"train_seconds": seconds, "params": params}
    assert best is not None
    return best


def megalith_scores(
    source: Path, config: dict[str, Any], epochs: int | None
) -> tuple[dict[str, Any], RecommendState, Any]:
    if epochs is not None:
        config["train"]["epochs"] = epochs
    cfg = validate_config(config)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"source": str(source)})})
    state = prepare_state(cfg)
    negatives = held_out_negatives(state, cfg.recommend or RecommendConfig(), cfg.seed)
    torch.manual_seed(cfg.seed)
    model = build_recommender(cfg, state)
    started = time.perf_counter()
    fit(model, state, cfg)
    seconds = time.perf_counter() - started
    metrics = rank_scores(model_scorers(model, state.n_items), state, negatives, k=10)
    metrics["train_seconds"] = seconds
    metrics["config"] = {
        "model": config["model"],
        "recommend": config["recommend"],
        "train": config["train"],
    }
    return metrics, state, negatives


def planted_table(folder: Path, quick: bool) -> tuple[Path, Callable[[RecommendState], Any]]:
    sizes = (
        dict(n_users=150, n_items=200, per_user=20)
        if quick
        else dict(n_users=1000, n_items=1700, per_user=100)
    )
    options = dict(dim=16, strength=2.0, skew=1.0, seed=1)
    frame = planted_interactions(**sizes, **options)  # type: ignore[arg-type]
    path = folder / "planted.csv"
    frame.to_csv(path, index=False)

    def oracle(state: RecommendState) -> np.ndarray:
        planted = oracle_scores(sizes["n_users"], sizes["n_items"], **options)  # type: ignore[arg-type]
        users = np.array([int(u) - 1 for u in state.user_ids])
        items = np.array([int(i) - 1 for i in state.item_ids])
        return planted[np.ix_(users, items)]

    return path, oracle


def dpkg_table(folder: Path, quick: bool) -> Path:
    """package, dependency, order: one row per Depends / Pre-Depends entry of an installed
    package; the order of the entry in its field is the timestamp (the last one is held out)."""
    text = Path("/var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    rows = []
    for block in text.split("\n\n"):
        name = re.search(r"^Package: (\S+)", block, re.M)
        depends = re.findall(r"^(?:Pre-)?Depends: (.+)$", block, re.M)
        if not name or not depends:
            continue
        entries = [re.split(r"[\s(:]", alt.strip())[0] for d in depends for alt in d.split(",")]
        for order, dependency in enumerate(dict.fromkeys(e for e in entries if e)):
            rows.append((name.group(1), dependency, order))
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    counts = frame.groupby("user")["item"].transform("size")
    frame = frame[counts >= (3 if quick else 5)]
    path = folder / "dpkg.csv"
    frame.to_csv(path, index=False)
    return path


def python_imports_table(folder: Path, quick: bool) -> Path:
    """module, imported module, line: one row per import statement of the .py files under
    this Python's site-packages and standard library (the line number is the timestamp)."""
    import sysconfig

    pattern = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.M)
    roots = [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"])]
    rows = []
    for root in roots:
        for file in sorted(root.rglob("*.py"))[: 300 if quick else None]:
            module = ".".join(file.relative_to(root).with_suffix("").parts)
            try:
                text = file.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for match in pattern.finditer(text):
                imported = match.group(1) or match.group(2)
                if not imported.startswith("."):
                    rows.append((module, imported, text.count("\n", 0, match.start())))
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).drop_duplicates(
        ["user", "item"]
    )
    frame = frame[frame.groupby("item")["user"].transform("size") >= 5]  # shared imports
    frame = frame[frame.groupby("user")["item"].transform("size") >= 5]
    path = folder / "python_imports.csv"
    frame.to_csv(path, index=False)
    return path


def compare(name: str, source: Path, oracle: Any, epochs: int | None, quick: bool) -> None:
    frame, _ = read_interactions(source, RecommendConfig())
    config = recommender_config(frame, name=name, source=str(source))
    ours, state, negatives = megalith_scores(source, config, epochs)
    rows: dict[str, Any] = {"megalith": ours}
    for baseline in GRIDS:
        rows[baseline] = best_of_grid(baseline, state, negatives, quick)
    rows["most_popular"] = rank_scores(
        popularity_scorers(state.popularity(), 0), state, negatives, k=10
    )
    if oracle is not None:
        rows["oracle"] = rank_scores(matrix_scorers(oracle(state)), state, negatives, k=10)
    print(
        f"\n== {name}: {len(state.users):,} interactions, {len(state.user_ids):,} users, "
        f"{state.n_items:,} items; leave-last-out, 99 sampled negatives"
    )
    print(f"{'':14}{'HR@10 s':>9}{'NDCG@10 s':>11}{'HR@10 full':>12}{'NDCG@10 full':>14}", end="")
    print(f"{'train s':>9}")
    for label, m in rows.items():
        seconds = f"{m['train_seconds']:9.1f}" if "train_seconds" in m else f"{'-':>9}"
        print(
            f"{label:14}{m['sampled_hr@10']:9.3f}{m['sampled_ndcg@10']:11.3f}"
            f"{m['hr@10']:12.3f}{m['ndcg@10']:14.3f}{seconds}"
        )
    best = max(("als", "item_knn"), key=lambda b: rows[b]["sampled_hr@10"])
    margin = 100 * (ours["sampled_hr@10"] - rows[best]["sampled_hr@10"])
    print(
        f"megalith - best of ALS / item-kNN ({best}): {margin:+.1f} points of sampled HR@10 "
        f"(goal >= +2.0); train time {ours['train_seconds'] / rows['als']['train_seconds']:.1f}x "
        "ALS's best grid point"
    )
    print(
        json.dumps(
            {"dataset": name, **{k: {kk: vv for kk, vv in v.items()} for k, v in rows.items()}},
            default=str,
        )
    )


def ranking_speed(users: int = 1000, items: int = 2000, seen_per_user: int = 50) -> None:
    """Seconds of one full-ranking evaluation (every unseen item ranked for every user) of an
    mf model, against one plain matrix product of the same scores (the floor)."""
    from megalith.models.recommenders import MatrixFactorisation
    from megalith.recommend.metrics import full_ranking

    model = MatrixFactorisation(users, items, 64, "score").eval()
    rng = np.random.default_rng(0)
    seen = (np.repeat(np.arange(users), seen_per_user), rng.integers(0, items, users * 50))
    held_out = (np.arange(users), rng.integers(0, items, users))
    score_all = model_scorers(model, items)[0]
    started = time.perf_counter()
    full_ranking(score_all, seen, held_out, items, k=10)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    score_all(torch.arange(users))
    product = time.perf_counter() - started
    print(
        f"\n== full ranking of {users:,} users x {items:,} items ({seen_per_user} seen each): "
        f"{seconds:.2f} s; the score matrix alone {product:.3f} s ({seconds / product:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "datasets", nargs="*", default=["speed", "planted", "dpkg", "python_imports"]
    )
    parser.add_argument("--epochs", type=int, default=None, help="Override init's epochs.")
    parser.add_argument("--quick", action="store_true", help="Tiny data, one grid point each.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            if name == "speed":
                ranking_speed()
            elif name == "planted":
                path, oracle = planted_table(Path(tmp), args.quick)
                compare(name, path, oracle, args.epochs, args.quick)
            elif name == "dpkg":
                compare(name, dpkg_table(Path(tmp), args.quick), None, args.epochs, args.quick)
            elif name == "python_imports":
                path = python_imports_table(Path(tmp), args.quick)
                compare(name, path, None, args.epochs, args.quick)
            else:
                compare(Path(name).stem, Path(name).resolve(), None, args.epochs, args.quick)


if __name__ == "__main__":
    main()
