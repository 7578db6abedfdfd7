"""Side tables and cold start: does a two_tower with user / item features beat an id-only
model on users it has never met, and what do the features cost or bring on known users?

For each dataset, all built offline on this machine:
  - cold: `split: cold_users` (every interaction of 20% of the users held out). The two_tower
    with side features answers those users from their features; an id-only model has nothing
    to go on and answers the most popular items (what `recommend` gives an unknown user),
    so most popular *is* the id-only model's score here. Random is shown as the floor.
  - warm: leave-last-out; the same two_tower with and without side features, both scored on
    the same split and the same 99 saved negatives.
Datasets:
  - planted: the interactions of benchmarks/recommend_baselines.py (1,000 users, 1,700 items,
    planted 16-factor tastes), with the side tables of `planted_side_tables` (noisy clues of
    the planted factors: a user's three strongest tastes and an age; an item's two strongest
    factors as genres, a year and a kind);
  - dpkg: Debian packages (users) and the packages they depend on (items); features of both:
    Section, Priority, Installed-Size and the words of the one-line Description;
  - python_imports: Python modules (users) and the modules they import (items); features:
    the top-level package, the dotted name's parts (a set) and whether it is a test module /
    in the standard library.
Absolute times are wall-clock on this machine (say which, and how busy); ratios are from the
same run.

    python benchmarks/recommend_cold_start.py [planted|dpkg|python_imports ...] [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from recommend_baselines import dpkg_table, python_imports_table

from megalith.config import validate_config
from megalith.recommend.evaluate import (
    model_scorers,
    popularity_scorers,
    random_scorers,
    rank_scores,
)
from megalith.recommend.synthetic import planted_interactions, planted_side_tables
from megalith.recommend.train import build_recommender, fit, held_out_negatives, prepare_state

SET = {"type": "set", "separator": "|"}


def planted(folder: Path, quick: bool) -> dict[str, Any]:
    sizes = dict(n_users=150, n_items=200) if quick else dict(n_users=1000, n_items=1700)
    options = dict(dim=16, strength=2.0, seed=1)
    frame = planted_interactions(**sizes, per_user=20 if quick else 100, skew=1.0, **options)
    users, items = planted_side_tables(**sizes, **options)  # type: ignore[arg-type]
    frame.to_csv(folder / "planted.csv", index=False)
    users.to_csv(folder / "planted_users.csv", index=False)
    items.to_csv(folder / "planted_items.csv", index=False)
    return {
        "data": {
            "source": str(folder / "planted.csv"),
            "users": str(folder / "planted_users.csv"),
            "items": str(folder / "planted_items.csv"),
        },
        "recommend": {
            "timestamp": "timestamp",
            "user_features": [{"name": "likes", **SET}, {"name": "age", "type": "number"}],
            "item_features": [
                {"name": "genres", **SET},
                {"name": "year", "type": "number"},
                {"name": "kind", "type": "category"},
            ],
        },
    }


def _dpkg_features() -> pd.DataFrame:
    """package, section, priority, size, words: one row per installed package."""
    text = Path("/var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    rows = []
    for block in text.split("\n\n"):
        field = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, re.M))
        if "Package" in field:
            words = re.findall(r"[a-z][a-z0-9+-]{2,}", field.get("Description", "").lower())
            rows.append(
                (
                    field["Package"],
                    field.get("Section"),
                    field.get("Priority"),
                    float(field.get("Installed-Size", "nan")),
                    "|".join(dict.fromkeys(words)),
                )
            )
    return pd.DataFrame(rows, columns=["id", "section", "priority", "size", "words"])


def dpkg(folder: Path, quick: bool) -> dict[str, Any]:
    source = dpkg_table(folder, quick)
    frame = pd.read_csv(source, dtype=str)
    known = _dpkg_features().drop_duplicates("id").set_index("id")
    for side in ("user", "item"):  # a dependency may be virtual: a row of empty cells
        ids = pd.Index(frame[side].unique())
        table = known.reindex(ids).rename_axis(side).reset_index()
        table.to_csv(folder / f"dpkg_{side}s.csv", index=False)
    features = [
        {"name": "section", "type": "category"},
        {"name": "priority", "type": "category"},
        {"name": "size", "type": "number", "transform": "log"},
        {"name": "words", **SET, "min_count": 3},
    ]
    return {
        "data": {
            "source": str(source),
            "users": str(folder / "dpkg_users.csv"),
            "items": str(folder / "dpkg_items.csv"),
        },
        "recommend": {
            "timestamp": "timestamp",
            "user_features": features,
            "item_features": features,
        },
    }


def _module_features(ids: pd.Index, side: str) -> pd.DataFrame:
    stdlib = set(sys.stdlib_module_names)
    names = ids.astype(str)
    return pd.DataFrame(
        {
            side: names,
            "package": [name.split(".")[0] for name in names],
            "parts": [name.replace(".", "|") for name in names],
            "test": [int("test" in name) for name in names],
            "stdlib": [int(name.split(".")[0] in stdlib) for name in names],
        }
    )


def python_imports(folder: Path, quick: bool) -> dict[str, Any]:
    source = python_imports_table(folder, quick)
    frame = pd.read_csv(source, dtype=str)
    for side in ("user", "item"):
        table = _module_features(pd.Index(frame[side].unique()), side)
        table.to_csv(folder / f"imports_{side}s.csv", index=False)
    features = [
        {"name": "package", "type": "category", "min_count": 2},
        {"name": "parts", **SET},
        {"name": "test", "type": "binary"},
        {"name": "stdlib", "type": "binary"},
    ]
    return {
        "data": {
            "source": str(source),
            "users": str(folder / "imports_users.csv"),
            "items": str(folder / "imports_items.csv"),
        },
        "recommend": {
            "timestamp": "timestamp",
            "user_features": features,
            "item_features": features,
        },
    }


def train_and_score(
    base: dict[str, Any], split: str, features: bool, epochs: int, id_dropout: float | None = None
) -> dict:
    """One two_tower run (softmax, as init writes it), scored with the baselines."""
    data = dict(base["data"])
    recommend = dict(base["recommend"], split=split, loss="softmax")
    if not features:
        data = {"source": data["source"]}
        recommend = {k: v for k, v in recommend.items() if not k.endswith("_features")}
    config = {
        "data": data,
        "model": {"arch": "two_tower", "dim": 64}
        | ({"id_dropout": id_dropout} if id_dropout is not None else {}),
        "recommend": recommend,
        "train": {
            "epochs": epochs,
            "batch_size": 1024,
            "optimizer": {"name": "adamw", "lr": 0.005, "weight_decay": 0.1},
        },
    }
    cfg = validate_config(config)
    state = prepare_state(cfg)
    negatives = held_out_negatives(state, cfg.recommend, cfg.seed)  # type: ignore[arg-type]
    torch.manual_seed(cfg.seed)
    model = build_recommender(cfg, state)
    started = time.perf_counter()
    fit(model, state, cfg)
    seconds = time.perf_counter() - started
    scores = {"model": rank_scores(model_scorers(model, state.n_items), state, negatives, k=10)}
    scores["model"]["train_seconds"] = seconds
    scores["most_popular"] = rank_scores(
        popularity_scorers(state.popularity(), cfg.seed), state, negatives, k=10
    )
    scores["random"] = rank_scores(random_scorers(state.n_items, cfg.seed), state, negatives, 10)
    return scores


def _line(label: str, m: dict[str, Any]) -> str:
    seconds = f"{m['train_seconds']:9.1f}" if "train_seconds" in m else f"{'-':>9}"
    return (
        f"{label:34}{m['sampled_hr@10']:9.3f}{m['sampled_ndcg@10']:11.3f}"
        f"{m['hr@10']:12.3f}{m['ndcg@10']:14.3f}{int(m['users']):7d}{seconds}"
    )


def compare(name: str, base: dict[str, Any], epochs: int, id_dropout: float | None) -> None:
    cold = train_and_score(base, "cold_users", True, epochs, id_dropout)
    warm_ids = train_and_score(base, "leave_last_out", False, epochs)
    warm_features = train_and_score(base, "leave_last_out", True, epochs, id_dropout)
    print(f"\n== {name}")
    header = f"{'':34}{'HR@10 s':>9}{'NDCG@10 s':>11}{'HR@10 full':>12}{'NDCG@10 full':>14}"
    print(header + f"{'users':>7}{'train s':>9}")
    print("cold users (cold_users split):")
    print(_line("  two_tower + side features", cold["model"]))
    print(_line("  id-only = most popular", cold["most_popular"]))
    print(_line("  random", cold["random"]))
    print("known users (leave_last_out):")
    print(_line("  two_tower + side features", warm_features["model"]))
    print(_line("  two_tower, ids only", warm_ids["model"]))
    print(_line("  most popular", warm_ids["most_popular"]))
    gain = cold["model"]["sampled_hr@10"] - cold["most_popular"]["sampled_hr@10"]
    ratio = cold["model"]["ndcg@10"] / max(cold["most_popular"]["ndcg@10"], 1e-9)
    warm = warm_features["model"]["sampled_hr@10"] - warm_ids["model"]["sampled_hr@10"]
    cost = warm_features["model"]["train_seconds"] / warm_ids["model"]["train_seconds"]
    print(
        f"cold start: features - id-only {100 * gain:+.1f} points of sampled HR@10, "
        f"full NDCG@10 x{ratio:.2f}; known users: features - ids {100 * warm:+.1f} points "
        f"of sampled HR@10, train time x{cost:.2f}"
    )
    summary = {"cold": cold, "warm_ids": warm_ids, "warm_features": warm_features}
    print(json.dumps({"dataset": name, **summary}, default=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", default=["planted", "dpkg", "python_imports"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="Tiny data, 2 epochs.")
    parser.add_argument(
        "--id-dropout", type=float, default=None, help="model.id_dropout (default: the model's)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}"
    )
    builders = {"planted": planted, "dpkg": dpkg, "python_imports": python_imports}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            folder = Path(tmp) / name
            folder.mkdir()
            base = builders[name](folder, args.quick)
            compare(name, base, 2 if args.quick else args.epochs, args.id_dropout)


if __name__ == "__main__":
    main()
